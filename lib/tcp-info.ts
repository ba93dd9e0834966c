import { binding } from './binding';
import { native, osSocketForRead } from './os-socket';
import type { KeepaliveTarget } from './target';

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN_SENT'
  | 'SYN_RECEIVED'
  | 'ESTABLISHED'
  | 'FIN_WAIT_1'
  | 'FIN_WAIT_2'
  | 'CLOSE_WAIT'
  | 'CLOSING'
  | 'LAST_ACK'
  | 'TIME_WAIT';

/** In the native layer's order (keepalive.h, Windows' TCPSTATE order). */
const STATES: readonly TcpState[] = ['CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2', 'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT'];

/**
 * The kernel's view of a connection (Linux/FreeBSD `TCP_INFO`, macOS `TCP_CONNECTION_INFO`, Windows
 * `SIO_TCP_INFO`). Times in ms; a field this platform does not report is `undefined`.
 */
export interface TcpInfo {
  state: TcpState | undefined;
  /** Smoothed round-trip time, ms (fractional). */
  rtt: number | undefined;
  rttVariance: number | undefined;
  /** Retransmissions of the segment now timing out (the current backoff), reset when it is acknowledged. */
  retransmits: number | undefined;
  /** Segments retransmitted over the connection's life. */
  totalRetransmits: number | undefined;
  /** Keepalive (or zero-window) probes sent and not answered. */
  probes: number | undefined;
  /** Segments sent and not yet acknowledged (on a listener, Linux: connections waiting to be accepted). */
  unacked: number | undefined;
  /** Time since data was last received, ms. */
  lastDataReceived: number | undefined;
  /** Time since data was last sent, ms. */
  lastDataSent: number | undefined;
  /** Time since an acknowledgement was last received, ms. */
  lastAckReceived: number | undefined;
  bytesSent: number | undefined;
  bytesRetransmitted: number | undefined;
  /** Bytes acknowledged by the peer (Linux counts the SYN too). */
  bytesAcked: number | undefined;
  /** The platform's struct, field by field, under its own names (`tcpi_rtt`, `RttUs`, ...), in its own units. */
  raw: Record<string, number>;
}

/**
 * Reads the kernel's state of a connected socket (or a listening server's socket). Same targets and errors as
 * `getKeepalive`; `ERR_KEEPALIVE_UNSUPPORTED` where the system has no such call (Windows before 10 1703, Wine).
 */
export function getTcpInfo(target: KeepaliveTarget): TcpInfo {
  return tcpInfoOf(osSocketForRead(target));
}

/** getTcpInfo for an OS socket already found. */
export function tcpInfoOf(sock: number): TcpInfo {
  const [state, ...rest] = native(() => binding.tcpInfo(sock));
  const raw = rest.pop() as Record<string, number>;
  const [rtt, rttVariance, retransmits, totalRetransmits, probes, unacked, lastDataReceived, lastDataSent, lastAckReceived, bytesSent, bytesRetransmitted, bytesAcked] = (rest as number[]).map(
    (value) => (value < 0 ? undefined : value),
  );
  return {
    state: STATES[state],
    rtt,
    rttVariance,
    retransmits,
    totalRetransmits,
    probes,
    unacked,
    lastDataReceived,
    lastDataSent,
    lastAckReceived,
    bytesSent,
    bytesRetransmitted,
    bytesAcked,
    raw,
  };
}
