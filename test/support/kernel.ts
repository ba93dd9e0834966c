import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { hasCommand } from './has-command.js';

export interface KernelOptions {
  so_keepalive: number;
  tcp_keepidle: number;
  tcp_keepintvl: number;
  tcp_keepcnt: number;
  tcp_user_timeout: number;
}


const isLinuxRoot = process.platform === 'linux' && process.getuid?.() === 0;

function buildObserver(): string | undefined {
  if (!isLinuxRoot || !hasCommand('cc')) return undefined;
  const source = join(__dirname, 'sockopt-observer.c');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const binary = join(tmpdir(), `tcp-keepalive-observer-${hash}`);
  if (!existsSync(binary)) {
    const partial = `${binary}.${process.pid}`;
    execFileSync('cc', ['-O2', '-o', partial, source]);
    renameSync(partial, binary);
  }
  return binary;
}

const observer = buildObserver();

/** Why the kernel observer cannot run here, or undefined when it can. */
export const observerUnavailable = observer ? undefined : 'needs Linux, root (pidfd_getfd) and a C compiler';

export const ssUnavailable = process.platform === 'linux' && hasCommand('ss') ? undefined : 'needs Linux and ss (iproute2)';

export function fdOf(target: Socket | Server): number {
  let handle = (target as unknown as { _handle: { fd?: number; _parent?: unknown } })._handle;
  while (handle && handle._parent) handle = handle._parent as typeof handle;
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0) throw new Error('no descriptor');
  return handle.fd;
}

/** The socket's options as another process sees them through a duplicate of the descriptor. */
export function kernelOptions(target: Socket | Server): KernelOptions {
  return kernelOptionsOf(process.pid, fdOf(target));
}

/** The options of descriptor `fd` of process `pid` (any process, e.g. a driver's, found with `ss -tnp`). */
export function kernelOptionsOf(pid: number, fd: number): KernelOptions {
  if (!observer) throw new Error(`kernel observer unavailable: ${observerUnavailable}`);
  const out = execFileSync(observer, [String(pid), String(fd)], { encoding: 'utf8' });
  return JSON.parse(out) as KernelOptions;
}

/** Seconds left on the keepalive timer that `ss -tnoi` shows for the connection with this local port, or undefined. */
export function ssKeepaliveTimer(localPort: number): number | undefined {
  const out = execFileSync('ss', ['-tnoiH', 'state', 'established', `( sport = :${localPort} )`], { encoding: 'utf8' });
  const match = /timer:\(keepalive,([^,]+),\d+\)/.exec(out);
  return match ? parseSsDuration(match[1]) : undefined;
}

/** ss 6.1 prints 1min29sec, 12sec, 628ms for 0.628 s, but 4.944ms for 4.944 s (a fraction means seconds). */
export function parseSsDuration(text: string): number {
  const match = /^(?:(\d+)min)?(?:(\d+(?:\.\d+)?)sec)?(?:(\d+)(?:\.(\d+))?ms)?$/.exec(text);
  if (!match) throw new Error(`unexpected ss timer: ${text}`);
  const [, min, sec, msWhole, msFraction] = match;
  const ms = msWhole === undefined ? 0 : msFraction === undefined ? Number(msWhole) / 1000 : Number(`${msWhole}.${msFraction}`);
  return Number(min ?? 0) * 60 + Number(sec ?? 0) + ms;
}

/**
 * True where every suite must run (`.ci/run` sets TCP_KEEPALIVE_STRICT=1 on this Debian machine, as root).
 * CI=true alone does not imply it: hosted runners set CI=true on macOS and Windows, where the Linux-only
 * observers cannot run.
 */
export const strict = process.env.TCP_KEEPALIVE_STRICT === '1';

/**
 * Registers a test that fails when a suite that must run under strict mode was skipped, so a missing
 * privilege or package cannot turn into a green run that tested nothing.
 */
export function mustRunInCi(suite: string, unavailable: string | undefined): void {
  it(`${suite} can run here (required when TCP_KEEPALIVE_STRICT=1)`, () => {
    if (unavailable !== undefined && strict) throw new Error(`${suite} was skipped under TCP_KEEPALIVE_STRICT=1: ${unavailable}`);
  });
}
