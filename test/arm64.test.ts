import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mustRunInCi } from './support/kernel';
import { run, Run, runOk } from './support/run';
import { OPTIONS } from './support/contract.js';

interface Arm64Runtime {
  ARM64_NODE: string[];
  prebuild: string;
  unavailable(): string | undefined;
  arm64Nodes(): Array<{ version: string; node: string }>;
  arm64Env(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  underQemu(file: string, args: string[]): [string, string[]];
}

const root = join(__dirname, '..');
const load = createRequire(__filename);
const { ARM64_NODE, prebuild, unavailable, arm64Nodes, arm64Env, underQemu } = load('./arm64/runtime.js') as Arm64Runtime;
const { checkFile } = load('../scripts/check-prebuilds.js') as { checkFile(file: string, platform: string, arch: string): string[] };

const notRoot = process.getuid?.() === 0 ? undefined : "the contract suite's kernel observer needs root (pidfd_getfd)";
const skip = unavailable() ?? notRoot;
const majors = ARM64_NODE.map((version) => version.split('.')[0]).join(' and ');

mustRunInCi(`the contract suite on arm64 Node ${majors} under qemu`, skip);

/** This environment for an arm64 child that may load only prebuilds/, strict, uncoloured, without vitest's own variables. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VITEST|TCP_KEEPALIVE_PREBUILD$|NODE_OPTIONS$|NODE_PATH$|QEMU_|FORCE_COLOR$)/.test(key)) env[key] = value;
  }
  return arm64Env({ ...env, PREBUILDS_ONLY: '1', TCP_KEEPALIVE_STRICT: '1', NO_COLOR: '1' });
}

/** Runs `node args…` as arm64 under qemu, in the repository, with childEnv(), without blocking the worker. */
function runArm64(node: string, args: string[], timeout: number): Promise<Run> {
  const [command, argv] = underQemu(node, args);
  return run(command, argv, { cwd: root, env: childEnv(), timeout });
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Run in each arm64 Node: its CPU, which native files it loaded, and what getKeepalive reads back from the kernel. */
const probeScript = `
  const net = require('node:net');
  const { applyKeepalive, getKeepalive } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
  const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', () => {
    const client = net.connect(server.address().port, '127.0.0.1', () => {
      applyKeepalive(client, ${JSON.stringify(OPTIONS)});
      const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
      console.log(JSON.stringify({ arch: process.arch, version: process.versions.node, loaded, values: getKeepalive(client) }));
      client.destroy();
      server.close();
    });
  });`;

describe.skipIf(skip)(`the linux-arm64 prebuild: the contract suite on arm64 Node ${majors} under qemu${skip ? ` (cannot run here: ${skip})` : ''}`, () => {
  let nodes: Array<{ version: string; node: string }>;
  let prebuildHash: string;

  beforeAll(async () => {
    // Cross-builds prebuilds/linux-arm64/ if it is missing or older than the sources (under PREBUILDS_ONLY=1 it
    // builds nothing and fails unless it is there), then fetches what .ci/steps/40-arm64.sh has not.
    await runOk(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--arch=arm64', '--if-stale'], { cwd: root });
    expect(checkFile(prebuild, 'linux', 'arm64')).toEqual([]);
    prebuildHash = sha256(prebuild);
    nodes = arm64Nodes();
  }, 300_000);

  it.each(ARM64_NODE)('Node %s (arm64): loads the arm64 prebuild and passes the contract suite', async (version) => {
    const { node } = nodes.find((entry) => entry.version === version)!;

    const probeRun = await runArm64(node, ['-e', probeScript], 60_000);
    expect(probeRun.status, `${probeRun.error ?? ''}\n${probeRun.stderr}`).toBe(0);
    const probe = JSON.parse(probeRun.stdout);
    expect(probe).toEqual({
      arch: 'arm64',
      version,
      loaded: [prebuild],
      values: OPTIONS,
    });

    // The contract suite itself, run by vitest under this arm64 Node, against the arm64 prebuild only.
    const started = Date.now();
    const run = await runArm64(node, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'test/contract.test.ts'], 360_000);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const output = `${run.stdout}\n${run.stderr}`;
    const summary = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(output);
    const report = `arm64 Node ${version}, exit ${run.status ?? run.signal ?? run.error}:\n${output.split('\n').filter((line) => !/^\s*✓/.test(line)).slice(-60).join('\n')}`;
    expect(summary, report).not.toBeNull();
    const [passed, failed, skipped] = summary!.slice(1).map(Number);
    console.log(`arm64 Node ${version} under qemu: contract suite against ${relative(root, prebuild)}: ${passed} passed, ${failed} failed, ${skipped} skipped (${seconds} s)`);
    expect(run.status, report).toBe(0);
    expect(failed, report).toBe(0);
    expect(skipped, report).toBe(0);
    expect(passed, report).toBeGreaterThan(0);

    expect(sha256(prebuild), 'nothing rebuilt the prebuild').toBe(prebuildHash);
  }, 420_000); // about 25 s of qemu per Node on an idle 2-core machine; several times that beside the rest of npm test
});
