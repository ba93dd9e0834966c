import { spawn } from 'node:child_process';

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeout?: number;
  input?: string;
}

/**
 * Runs `command args…` without blocking this test worker. vitest's worker answers its runner over RPC and
 * reports "Timeout calling onTaskUpdate" (failing the whole run) when its event loop is blocked for 60 s,
 * so anything that may take seconds (a child vitest, npm, tsc, a compiler, the demo) runs through here,
 * never through spawnSync/execFileSync.
 */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      timeout: options.timeout,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let error: Error | undefined;
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e) => (error = e));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on('close', (status, signal) => resolve({ status, signal, error, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** run(), then its stdout; a failed run throws with what it printed. */
export async function runOk(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')}: exit ${result.status ?? result.signal ?? result.error}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}
