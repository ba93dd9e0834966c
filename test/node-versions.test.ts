import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { mustRunInCi } from './support/kernel';
import { run, runOk } from './support/run';
import { OPTIONS } from './support/contract.js';

interface NodeVersions {
  PINNED: string[];
  unsupported: string | undefined;
  nodeVersions(majors?: number[]): Array<{ version: string; node: string }>;
}

const root = join(__dirname, '..');
const { PINNED, unsupported, nodeVersions } = createRequire(__filename)(join(__dirname, 'support', 'node-versions.js')) as NodeVersions;
const strict = process.env.TCP_KEEPALIVE_STRICT === '1';

/**
 * Decided before anything is built or fetched. The suites it reruns under each Node read the kernel through
 * the root-only observer and namespaces; as another user most of them skip, so the run would spend half a
 * minute (and, the first time, three Node downloads) to prove little. The fast tier and the contract cover
 * a normal user; .ci/run (root, strict) runs this.
 */
const unavailable = unsupported ?? (process.getuid?.() === 0 ? undefined : 'needs root: the suites it reruns on each Node read the kernel as root; as another user they would mostly skip');
mustRunInCi(`the contract, lifecycle, server and native suites on Node ${PINNED.map((v) => v.split('.')[0]).join(', ')}`, unavailable);

/** The environment of a child that may load only prebuilds/ (node-gyp-build skips build/ under PREBUILDS_ONLY). */
function prebuildOnlyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(VITEST|TCP_KEEPALIVE_PREBUILD$|NODE_OPTIONS$)/.test(key)) env[key] = value;
  }
  return { ...env, PREBUILDS_ONLY: '1' };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Run in each Node: which native files it loaded, and what getKeepalive reads back from the kernel. */
const loadScript = `
  const net = require('node:net');
  const { applyKeepalive, getKeepalive } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
  const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', () => {
    const client = net.connect(server.address().port, '127.0.0.1', () => {
      applyKeepalive(client, ${JSON.stringify(OPTIONS)});
      const loaded = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
      console.log(JSON.stringify({ version: process.versions.node, loaded, values: getKeepalive(client) }));
      client.destroy();
      server.close();
    });
  });`;

/**
 * Node 26.4+ takes setKeepAlive({ enable, initialDelay, interval, count }). A plain socket shows that it
 * really sets interval and count; on ours the settings must survive it (sticky).
 */
const objectFormScript = `
  const net = require('node:net');
  const { applyKeepalive, getKeepalive } = require(${JSON.stringify(join(root, 'dist', 'index.js'))});
  const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', async () => {
    const connect = () => new Promise((resolve, reject) => net.connect(server.address().port, '127.0.0.1').once('connect', function () { resolve(this); }).once('error', reject));
    const plain = await connect();
    plain.setKeepAlive({ enable: true, initialDelay: 60000, interval: 5000, count: 5 });
    const ours = await connect();
    applyKeepalive(ours, { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 });
    ours.setKeepAlive({ enable: true, initialDelay: 60000, interval: 5000, count: 5 });
    console.log(JSON.stringify({ plain: getKeepalive(plain), ours: getKeepalive(ours) }));
    plain.destroy();
    ours.destroy();
    server.close();
  });`;

const SUITES = ['test/contract.test.ts', 'test/lifecycle.test.ts', 'test/servers.test.ts', 'test/native.test.ts'];

function atLeast(version: string, wanted: string): boolean {
  const [a, b] = [version, wanted].map((v) => v.split('.').map(Number));
  return a[0] !== b[0] ? a[0] > b[0] : a[1] !== b[1] ? a[1] > b[1] : a[2] >= b[2];
}

describe.skipIf(unavailable)(`one N-API prebuild, the contract, lifecycle, server and native suites on Node ${PINNED.map((v) => v.split('.')[0]).join(', ')}${unavailable ? ` (cannot run here: ${unavailable})` : ''}`, () => {
  let prebuild: string;
  let prebuildHash: string;

  beforeAll(async () => {
    // Builds prebuilds/<platform>-<arch>/ if it is missing or older than the sources; under PREBUILDS_ONLY=1
    // it builds nothing and fails unless the prebuild is there.
    await runOk(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--if-stale'], { cwd: root });
    prebuild = (await runOk(process.execPath, ['-p', `require('node-gyp-build').resolve(${JSON.stringify(root)})`], {
      cwd: root,
      env: prebuildOnlyEnv(),
    })).trim();
    expect(relative(root, prebuild)).toMatch(new RegExp(`^prebuilds[/\\\\]${process.platform}-${process.arch}[/\\\\]tcp-keepalive\\.`));
    prebuildHash = sha256(prebuild);
  }, 300_000);

  it.each(PINNED.map((version) => Number(version.split('.')[0])))('Node %i: loads the prebuild and passes the contract, lifecycle, server and native suites', async (major) => {
    const [{ version, node }] = nodeVersions([major]);
    const env = prebuildOnlyEnv();

    const probe = JSON.parse(await runOk(node, ['-e', loadScript], { cwd: root, env }));
    expect(probe.version).toBe(version);
    expect(probe.loaded).toEqual([prebuild]);
    expect(probe.values).toEqual(OPTIONS);

    if (atLeast(version, '26.4.0')) {
      const seen = JSON.parse(await runOk(node, ['-e', objectFormScript], { cwd: root, env }));
      expect(seen.plain).toMatchObject({ onoff: true, keepalivetime: 60000, keepaliveinterval: 5000, keepalivecount: 5 });
      expect(seen.ours).toMatchObject({ onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 });
    }

    // The contract suite itself, and the lifecycle, server-topology and native-robustness suites (the Node
    // internals they rely on differ between versions), run by vitest under this Node, against the prebuild only.
    const suites = await run(node, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...SUITES], {
      cwd: root,
      env,
      timeout: 420_000,
    });
    const output = `${suites.stdout}\n${suites.stderr}`;
    const summary = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(output);
    const report = `Node ${version}, exit ${suites.status ?? suites.signal ?? suites.error}:\n${output.split('\n').filter((line) => !/^\s*✓/.test(line)).slice(-60).join('\n')}`;
    expect(summary, report).not.toBeNull();
    const [passed, failed, skipped] = summary!.slice(1).map(Number);
    console.log(`Node ${version}: ${SUITES.join(', ')} against ${relative(root, prebuild)}: ${passed} passed, ${failed} failed, ${skipped} skipped`);
    expect(suites.status, report).toBe(0);
    expect(failed, report).toBe(0);
    expect(passed, report).toBeGreaterThan(0);
    if (strict) expect(skipped, report).toBe(0);

    expect(sha256(prebuild), 'nothing rebuilt the prebuild').toBe(prebuildHash);
  }, 480_000);
});
