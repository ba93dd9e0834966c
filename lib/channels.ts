import * as diagnosticsChannel from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { UNSET } from './binding';
import { KeepaliveValues, platform, Settings } from './options';

/** `{ socket, side, source, values }`: settings were written to a connection (or it inherited them from its listening socket). */
export const CONFIGURE_CHANNEL = 'tcp-keepalive:configure';
/** `{ socket, side, reason }`: the default left a connection alone (`'filter'`, `'not-tcp'`, `'explicit'`). */
export const SKIP_CHANNEL = 'tcp-keepalive:skip';
/** `{ socket, side, source, error }`: writing settings failed (the default's warnings included). */
export const ERROR_CHANNEL = 'tcp-keepalive:error';
/** `{ socket, side, source, values, error, idleMs, unacked }`: a connection with our settings ended with ETIMEDOUT. */
export const DEAD_CHANNEL = 'tcp-keepalive:dead';

export type Side = 'client' | 'server';
export type Source = 'socket' | 'server' | 'default';
export type SkipReason = 'filter' | 'not-tcp' | 'explicit';

export interface KeepaliveConfigureMessage {
  socket: Socket;
  side: Side;
  source: Source;
  values: KeepaliveValues;
}

export interface KeepaliveSkipMessage {
  socket: Socket;
  side: Side;
  reason: SkipReason;
}

export interface KeepaliveErrorMessage {
  socket: Socket;
  side: Side;
  source: Source;
  error: unknown;
}

export interface KeepaliveDeadMessage {
  socket: Socket;
  side: Side;
  source: Source;
  values: KeepaliveValues;
  error: Error;
  /** The peer's address, read before the socket closed. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** ms since the peer last acknowledged anything; undefined where the system does not say. */
  idleMs: number | undefined;
  /** Bytes sent and never acknowledged: 0, keepalive found the connection idle; more, data was in flight. */
  unacked: number | undefined;
}

export const configureChannel = diagnosticsChannel.channel(CONFIGURE_CHANNEL);
export const skipChannel = diagnosticsChannel.channel(SKIP_CHANNEL);
export const errorChannel = diagnosticsChannel.channel(ERROR_CHANNEL);
export const deadChannel = diagnosticsChannel.channel(DEAD_CHANNEL);

const up = (ms: number, unit: number): number | undefined => (ms === UNSET ? undefined : Math.ceil(ms / unit) * unit);

/** What getKeepalive reads after `s` was written (`on` false: written, then switched off). */
export function valuesOf(s: Settings, on = s.onoff): KeepaliveValues {
  return {
    onoff: on,
    keepalivetime: up(s.keepalivetime, platform.unit),
    keepaliveinterval: up(s.keepaliveinterval, platform.unit),
    keepalivecount: s.keepalivecount === UNSET ? undefined : s.keepalivecount,
    usertimeout: up(s.usertimeout, platform.usertimeoutUnit),
  };
}

export function publishConfigure(socket: Socket, side: Side, source: Source, settings: Settings, on: boolean): void {
  if (configureChannel.hasSubscribers) configureChannel.publish({ socket, side, source, values: valuesOf(settings, on) } satisfies KeepaliveConfigureMessage);
}

export function publishSkip(socket: Socket, side: Side, reason: SkipReason): void {
  if (skipChannel.hasSubscribers) skipChannel.publish({ socket, side, reason } satisfies KeepaliveSkipMessage);
}

export function publishError(socket: Socket, side: Side, source: Source, error: unknown): void {
  if (errorChannel.hasSubscribers) errorChannel.publish({ socket, side, source, error } satisfies KeepaliveErrorMessage);
}
