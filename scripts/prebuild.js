'use strict';
// Builds this machine's N-API prebuild, prebuilds/<platform>-<arch>/tcp-keepalive[.glibc|.musl].node,
// with `prebuildify --napi --strip`. Any further arguments (e.g. --arch=arm64) go to prebuildify.
//
// - It compiles in a scratch copy of the native sources under .cache/prebuild/, so build/ (the development
//   build that tests running at the same time load) is never deleted or replaced; the finished file is moved
//   into prebuilds/ in one rename.
// - It builds against the running Node's own headers (<prefix>/include/node) when they are installed and no
//   nodedir is configured, so node-gyp downloads nothing. The addon uses N-API only, so the Node version of
//   the headers does not matter to the result.
// - Linux builds are tagged glibc or musl, so node-gyp-build never hands a glibc binary to Alpine.
// - On Linux, another CPU (`--arch=arm64` on x64, or the reverse) is cross-built with Debian's cross compiler
//   for that CPU (apt-get install g++-aarch64-linux-gnu / g++-x86-64-linux-gnu): CC, CXX, LINK, AR and the
//   strip prebuildify runs are set here unless already set. Every cross-built file is checked with
//   check-prebuilds.js (ELF machine, libc, glibc symbol versions) before this script reports success.
//
// --if-stale: do nothing when the prebuild exists and is newer than binding.gyp and src-native/.
// PREBUILDS_ONLY=1 (as node-gyp-build reads it): build nothing; fail unless the prebuild exists.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
const ifStale = args.includes('--if-stale');
const passThrough = args.filter((arg) => arg !== '--if-stale');
const archArg = passThrough.find((arg) => arg.startsWith('--arch='));
const arch = archArg ? archArg.slice('--arch='.length) : process.arch;
const outDir = path.join(root, 'prebuilds', `${process.platform}-${arch}`);

/** Debian's cross toolchain prefix per target CPU, for Linux builds on another CPU. */
const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };

function sourceFiles() {
  const dir = path.join(root, 'src-native');
  return [path.join(root, 'binding.gyp'), ...fs.readdirSync(dir).map((name) => path.join(dir, name))];
}

function existingPrebuild() {
  const libc = process.platform === 'linux' ? (fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc') : undefined;
  const name = ['tcp-keepalive', libc, 'node'].filter(Boolean).join('.');
  const file = path.join(outDir, name);
  return fs.existsSync(file) ? file : undefined;
}

function isFresh(file) {
  const built = fs.statSync(file).mtimeMs;
  return sourceFiles().every((source) => fs.statSync(source).mtimeMs <= built);
}

function localHeaders() {
  const prefix = path.dirname(path.dirname(process.execPath));
  try {
    const header = fs.readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const part = (name) => new RegExp(`#define ${name} (\\d+)`).exec(header)[1];
    const version = `${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`;
    return version === process.versions.node ? prefix : undefined;
  } catch {
    return undefined;
  }
}

/** The compiler variables for a Linux cross build to `arch`, or {} when building for this machine's own CPU. */
function crossEnv() {
  if (arch === process.arch || process.platform !== 'linux') return {};
  const prefix = CROSS[arch];
  if (!prefix) throw new Error(`no cross toolchain known for linux-${arch} (known: ${Object.keys(CROSS).join(', ')})`);
  const tools = { CC: 'gcc', CXX: 'g++', LINK: 'g++', AR: 'ar', PREBUILD_STRIP_BIN: 'strip' };
  const env = {};
  for (const [name, tool] of Object.entries(tools)) {
    if (process.env[name]) continue;
    const command = `${prefix}-${tool}`;
    if (spawnSync(command, ['--version'], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`${command} not found: install Debian's g++-${prefix.replace(/_/g, '-')} (or set ${name})`);
    }
    env[name] = command;
  }
  return env;
}

function build() {
  const cache = path.join(root, '.cache', 'prebuild');
  fs.mkdirSync(cache, { recursive: true });
  const stage = fs.mkdtempSync(path.join(cache, 'stage-'));
  try {
    for (const file of ['package.json', 'binding.gyp', 'src-native']) {
      fs.cpSync(path.join(root, file), path.join(stage, file), { recursive: true });
    }
    const cross = crossEnv();
    const env = { ...process.env, ...cross };
    if (!env.npm_config_nodedir) {
      const nodedir = localHeaders();
      if (nodedir) env.npm_config_nodedir = nodedir;
    }
    const prebuildify = require.resolve('prebuildify/bin.js', { paths: [root] });
    const command = [
      prebuildify,
      '--napi',
      '--strip',
      ...(process.platform === 'linux' ? ['--tag-libc'] : []),
      `--target=node@${process.versions.node}`,
      `--cwd=${stage}`,
      `--out=${root}`,
      ...passThrough,
    ];
    const notes = [
      ...(env.npm_config_nodedir ? [`nodedir ${env.npm_config_nodedir}`] : []),
      ...Object.entries(cross).map(([name, value]) => `${name}=${value}`),
    ];
    console.log(`prebuild: prebuildify ${command.slice(1).join(' ')}${notes.length ? ` (${notes.join(', ')})` : ''}`);
    const result = spawnSync(process.execPath, command, { cwd: stage, env, stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`prebuildify failed with ${result.error ?? `exit code ${result.status}`}`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function main() {
  const existing = existingPrebuild();
  if (process.env.PREBUILDS_ONLY) {
    if (!existing) throw new Error(`PREBUILDS_ONLY is set and there is no prebuild in ${path.relative(root, outDir)}`);
    console.log(`prebuild: PREBUILDS_ONLY is set, using ${path.relative(root, existing)} as it is`);
    return;
  }
  if (ifStale && existing && isFresh(existing)) {
    console.log(`prebuild: ${path.relative(root, existing)} is up to date`);
    return;
  }
  build();
  const built = existingPrebuild();
  if (!built) throw new Error(`prebuildify wrote no prebuild to ${path.relative(root, outDir)}`);
  for (const name of fs.readdirSync(outDir)) {
    console.log(`prebuild: ${path.relative(root, path.join(outDir, name))} ${fs.statSync(path.join(outDir, name)).size} bytes`);
  }
  if (arch !== process.arch) {
    const problems = require('./check-prebuilds.js').checkFile(built, process.platform, arch);
    if (problems.length) {
      fs.rmSync(built);
      throw new Error(`removed the cross-built ${path.relative(root, built)}, which would not load everywhere it claims to:\n  ${problems.join('\n  ')}`);
    }
  }
}

try {
  main();
} catch (error) {
  console.error(`prebuild: ${error.message}`);
  process.exitCode = 1;
}
