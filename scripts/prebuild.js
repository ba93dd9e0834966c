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

function build() {
  const cache = path.join(root, '.cache', 'prebuild');
  fs.mkdirSync(cache, { recursive: true });
  const stage = fs.mkdtempSync(path.join(cache, 'stage-'));
  try {
    for (const file of ['package.json', 'binding.gyp', 'src-native']) {
      fs.cpSync(path.join(root, file), path.join(stage, file), { recursive: true });
    }
    const env = { ...process.env };
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
    console.log(`prebuild: prebuildify ${command.slice(1).join(' ')}${env.npm_config_nodedir ? ` (nodedir ${env.npm_config_nodedir})` : ''}`);
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
  if (!built && arch === process.arch) throw new Error(`prebuildify wrote no prebuild to ${path.relative(root, outDir)}`);
  for (const name of fs.readdirSync(outDir)) {
    console.log(`prebuild: ${path.relative(root, path.join(outDir, name))} ${fs.statSync(path.join(outDir, name)).size} bytes`);
  }
}

try {
  main();
} catch (error) {
  console.error(`prebuild: ${error.message}`);
  process.exitCode = 1;
}
