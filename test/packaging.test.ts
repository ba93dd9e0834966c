import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, Run } from './support/run';

const root = join(__dirname, '..');
const prebuildsOnly = Boolean(process.env.PREBUILDS_ONLY);
const tuple = `${process.platform}-${process.arch}`;
const MAX_TARBALL = 400 * 1024;

/** What a fresh checkout holds that `npm pack` needs; node_modules is linked in, prebuilds/ copied, dist/ built by pack itself. */
const CHECKOUT = ['package.json', 'tsconfig.json', 'binding.gyp', 'lib', 'scripts', 'src-native', 'docs', 'README.md', 'LICENSE'];

interface PackResult {
  filename: string;
  size: number;
  files: Array<{ path: string; size: number }>;
}

/** This environment without npm's per-run variables (which would point a child npm at this project) or vitest's. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|VITEST|INIT_CWD$|NODE_OPTIONS$|PREBUILDS_ONLY$|TCP_KEEPALIVE_PREBUILD$)/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

function check(result: Run, what: string): string {
  const output = `${result.stdout ?? ''}\n${result.stderr ?? ''}`;
  if (result.status !== 0) throw new Error(`${what} failed (${result.error ?? `exit ${result.status ?? result.signal}`}):\n${output.slice(-4000)}`);
  return output;
}

function findOnPath(name: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return realpathSync(join(dir, name));
  }
  throw new Error(`${name} is not on PATH`);
}

const work = mkdtempSync(join(tmpdir(), 'tcp-keepalive-packaging-'));
const checkout = join(work, 'checkout');
const consumer = join(work, 'consumer');
const bin = join(work, 'bin');
const installed = join(consumer, 'node_modules', 'tcp-keepalive');
let pack: PackResult;
let tarball: string;
let installOutput: string;

/** A PATH with node, npm, npx and sh (npm runs scripts with it) and nothing else: no compiler, make or Python. */
const noCompilers = (): NodeJS.ProcessEnv => cleanEnv({ PATH: bin });

async function consumerNode(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(check(await run(join(bin, 'node'), [file], { cwd: consumer, env: noCompilers() }), `node ${file}`).trim());
}

const socketScript = (load: string, tail: string): string => `${load}
const server = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1', () => {
    applyKeepalive(client, { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 });
    console.log(JSON.stringify({
      loaded: Object.keys(require.cache).filter((file) => file.endsWith('.node')),
      resolved: require('node-gyp-build').resolve(path.dirname(require.resolve('tcp-keepalive/package.json'))),
      values: getKeepalive(client),
      ${tail}
    }));
    client.destroy();
    server.close();
  });
});
`;

const expectedValues = { onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 };

describe.skipIf(process.platform === 'win32')(`the packed tarball, installed where nothing can compile${process.platform === 'win32' ? ' (POSIX only: it builds a PATH of symlinks)' : ''}`, () => {
  beforeAll(async () => {
    // This machine's prebuild, built once into prebuilds/ (unless it is newer than the sources already; the
    // release and node-versions suites share it) rather than again inside the copy: compiling was most of this
    // suite's time. Under PREBUILDS_ONLY=1 (the release job) it builds nothing and the tarball carries the
    // prebuilds made on every platform.
    if (!prebuildsOnly) check(await run(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--if-stale'], { cwd: root, env: cleanEnv() }), 'prebuild --if-stale');
    // A copy of the checkout, so pack builds dist/ without touching this tree. Timestamps are kept, so the
    // prepack script (prebuild.js --if-stale) finds the prebuild newer than the copied sources and ships it.
    mkdirSync(checkout);
    // Only this platform's prebuild (prebuilds/ may hold cross-built ones), or all of them for a release.
    for (const entry of [...CHECKOUT, prebuildsOnly ? 'prebuilds' : join('prebuilds', tuple)]) {
      if (existsSync(join(root, entry))) cpSync(join(root, entry), join(checkout, entry), { recursive: true, preserveTimestamps: true });
    }
    symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'), 'dir');
    const out = join(work, 'out');
    mkdirSync(out);
    const packed = await run('npm', ['pack', '--json', '--pack-destination', out], {
      cwd: checkout,
      env: cleanEnv(prebuildsOnly ? { PREBUILDS_ONLY: '1' } : {}),
    });
    check(packed, 'npm pack');
    [pack] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as PackResult[];
    tarball = join(out, pack.filename);

    mkdirSync(bin);
    const npmCli = findOnPath('npm');
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(npmCli, join(bin, 'npm'));
    symlinkSync(join(dirname(npmCli), 'npx-cli.js'), join(bin, 'npx'));
    symlinkSync(realpathSync('/bin/sh'), join(bin, 'sh'));

    mkdirSync(consumer);
    // npm runs the install script (node-gyp-build; npm 11 adds a notice that it is not yet in allowScripts),
    // so the test also proves that the script finds the prebuild and compiles nothing.
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    installOutput = check(
      await run(join(bin, 'npm'), ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
        cwd: consumer,
        env: noCompilers(),
      }),
      'npm install of the tarball',
    );
  }, 300_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it(`holds dist, the native sources and the ${tuple} prebuild, nothing else, in at most 400 KiB`, () => {
    const paths = pack.files.map((file) => file.path).sort();
    console.log(`tarball ${pack.filename}: ${pack.size} bytes packed, ${paths.length} files: ${paths.filter((p) => p.startsWith('prebuilds/')).join(', ')}`);
    expect(pack.size).toBeLessThanOrEqual(MAX_TARBALL);
    expect(paths).toEqual(expect.arrayContaining([
      'package.json',
      'README.md',
      'LICENSE',
      'binding.gyp',
      'dist/index.js',
      'dist/index.mjs',
      'dist/index.d.ts',
      'dist/index.d.mts',
      'dist/binding.js',
      'src-native/addon.cc',
      'src-native/keepalive.h',
      'src-native/keepalive_posix.cc',
      'src-native/keepalive_win.cc',
    ]));
    expect(paths.some((p) => p.startsWith(`prebuilds/${tuple}/`) && p.endsWith('.node'))).toBe(true);
    const allowed = /^(package\.json|README\.md|LICENSE|binding\.gyp|docs\/[\w.-]+\.md|dist\/[\w.-]+\.(js|mjs|d\.ts|d\.mts)|src-native\/[\w.-]+\.(cc|h)|prebuilds\/[\w-]+\/[\w.+-]+\.node)$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
  });

  it('the restricted PATH really has no compiler, make or Python', async () => {
    const found = await run('/bin/sh', ['-c', 'for c in cc c++ gcc g++ clang make python3 python; do command -v "$c"; done; true'], {
      env: noCompilers(),
    });
    expect(found.stdout.trim()).toBe('');
    expect(readdirSync(bin).sort()).toEqual(['node', 'npm', 'npx', 'sh']);
  });

  it('npm install ran the install script, which found the prebuild and built nothing', () => {
    expect(installOutput).toMatch(/tcp-keepalive@[\d.]+ install\n> node-gyp-build/);
    expect(existsSync(join(installed, 'build'))).toBe(false);
    expect(readdirSync(join(installed, 'prebuilds', tuple)).some((name) => name.endsWith('.node'))).toBe(true);
  });

  it('require() loads the prebuilt binary and keepalive lands on a real socket', async () => {
    writeFileSync(join(consumer, 'consumer.cjs'), socketScript(`const net = require('node:net');\nconst path = require('node:path');\nconst { applyKeepalive, getKeepalive } = require('tcp-keepalive');`, `entry: require.resolve('tcp-keepalive'),`));
    const seen = await consumerNode('consumer.cjs');
    const prebuild = seen.resolved as string;
    expect(prebuild.startsWith(join(realpathSync(installed), 'prebuilds', tuple) + '/')).toBe(true);
    expect(seen.loaded).toEqual([prebuild]);
    expect(seen.entry).toBe(join(realpathSync(installed), 'dist', 'index.js'));
    expect(seen.values).toEqual(expectedValues);
  });

  it('import loads the ES module entry, the same instance as require(), and the prebuilt binary', async () => {
    writeFileSync(join(consumer, 'consumer.mjs'), socketScript(
      `import net from 'node:net';\nimport path from 'node:path';\nimport { createRequire } from 'node:module';\nimport { applyKeepalive, getKeepalive } from 'tcp-keepalive';\nconst require = createRequire(import.meta.url);`,
      `entry: import.meta.resolve('tcp-keepalive'), sameInstance: require('tcp-keepalive').applyKeepalive === applyKeepalive,`,
    ));
    const seen = await consumerNode('consumer.mjs');
    expect(seen.entry).toBe(`file://${join(realpathSync(installed), 'dist', 'index.mjs')}`);
    expect(seen.sameInstance).toBe(true);
    expect(seen.loaded).toEqual([seen.resolved]);
    expect((seen.resolved as string).startsWith(join(realpathSync(installed), 'prebuilds', tuple) + '/')).toBe(true);
    expect(seen.values).toEqual(expectedValues);
  });

  it('TypeScript finds the types: import and require under node16, and bundler resolution', async () => {
    const use = `
const options: KeepaliveOptions = { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 };
const socket: net.Socket = applyKeepalive(new net.Socket(), options);
export const idle: number | undefined = getKeepalive(socket).keepalivetime;
// @ts-expect-error milliseconds are numbers, so a string must not type-check
applyKeepalive(socket, { keepalivetime: '3000', keepaliveinterval: 1000 });
`;
    const esm = `import * as net from 'node:net';\nimport { applyKeepalive, getKeepalive, type KeepaliveOptions } from 'tcp-keepalive';\n`;
    writeFileSync(join(consumer, 'esm.mts'), `${esm}// @ts-expect-error the ES module entry has no default export\nimport keepalive from 'tcp-keepalive';\nvoid keepalive;\n${use}`);
    writeFileSync(join(consumer, 'cjs.cts'), `import net = require('node:net');\nimport keepalive = require('tcp-keepalive');\nconst { applyKeepalive, getKeepalive } = keepalive;\ntype KeepaliveOptions = keepalive.KeepaliveOptions;\n${use}`);
    writeFileSync(join(consumer, 'bundler.ts'), `${esm}${use}`);
    const base = { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] };
    writeFileSync(join(consumer, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { ...base, module: 'node16', moduleResolution: 'node16' }, files: ['esm.mts', 'cjs.cts'] }));
    writeFileSync(join(consumer, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...base, module: 'esnext', moduleResolution: 'bundler' }, files: ['bundler.ts'] }));

    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const resolved: Record<string, string> = {};
    for (const config of ['tsconfig.node16.json', 'tsconfig.bundler.json']) {
      const tscRun = await run(join(bin, 'node'), [tsc, '-p', config, '--traceResolution'], { cwd: consumer, env: noCompilers() });
      const trace = `${tscRun.stdout}${tscRun.stderr}`;
      expect(tscRun.status, `tsc -p ${config}:\n${trace.split('\n').filter((line) => /error TS/.test(line)).join('\n')}`).toBe(0);
      let from = '';
      for (const line of trace.split('\n')) {
        const resolving = /^======== Resolving module 'tcp-keepalive' from '(.+)'\. ========$/.exec(line);
        if (resolving) from = resolving[1].split('/').pop()!;
        const done = /^======== Module name 'tcp-keepalive' was successfully resolved to '([^']+)'/.exec(line);
        if (done && from) resolved[from] = done[1].slice(realpathSync(consumer).length + 1);
      }
    }
    expect(resolved).toEqual({
      'esm.mts': 'node_modules/tcp-keepalive/dist/index.d.mts',
      'cjs.cts': 'node_modules/tcp-keepalive/dist/index.d.ts',
      'bundler.ts': 'node_modules/tcp-keepalive/dist/index.d.mts',
    });
  });

  it('with install scripts off (--ignore-scripts) the prebuild still loads at run time', async () => {
    const plain = join(work, 'plain');
    mkdirSync(plain);
    writeFileSync(join(plain, 'package.json'), JSON.stringify({ name: 'plain', version: '1.0.0', private: true }));
    check(await run(join(bin, 'npm'), ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], { cwd: plain, env: noCompilers() }), 'npm install');
    const script = "const { limits } = require('tcp-keepalive'); console.log(JSON.stringify({ limits: typeof limits, loaded: Object.keys(require.cache).filter((f) => f.endsWith('.node')) }))";
    const seen = JSON.parse(check(await run(join(bin, 'node'), ['-e', script], { cwd: plain, env: noCompilers() }), 'node -e'));
    expect(seen.limits).toBe('object');
    expect(seen.loaded).toHaveLength(1);
    expect(seen.loaded[0].startsWith(join(realpathSync(plain), 'node_modules', 'tcp-keepalive', 'prebuilds', tuple) + '/')).toBe(true);
    expect(existsSync(join(plain, 'node_modules', 'tcp-keepalive', 'build'))).toBe(false);
  });
});
