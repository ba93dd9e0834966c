'use strict';
// Checks the binaries in prebuilds/ (or the folder given) before they ship: each file's format and CPU
// match the <platform>-<arch> folder it sits in, Linux files are linked against the libc their name claims,
// and glibc builds need no symbol newer than glibc 2.28 / libstdc++ 3.4.25 (RHEL 8, Debian 10, Ubuntu 20.04).
//
//   node scripts/check-prebuilds.js [dir]             every prebuild present must be sound
//   node scripts/check-prebuilds.js --release [dir]   and the full release set must be there
const fs = require('node:fs');
const path = require('node:path');

const RELEASE = [
  'linux-x64/tcp-keepalive.glibc.node',
  'linux-x64/tcp-keepalive.musl.node',
  'linux-arm64/tcp-keepalive.glibc.node',
  'darwin-x64/tcp-keepalive.node',
  'darwin-arm64/tcp-keepalive.node',
  'win32-x64/tcp-keepalive.node',
  'win32-arm64/tcp-keepalive.node',
];

const MAX_GLIBC = [2, 28];
const MAX_GLIBCXX = [3, 4, 25];

const ELF_MACHINE = { x64: 62, arm64: 183 };
const MACHO_CPU = { x64: 0x01000007, arm64: 0x0100000c };
const PE_MACHINE = { x64: 0x8664, arm64: 0xaa64 };

function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  }
  return 0;
}

function highest(text, prefix) {
  let best;
  for (const match of text.matchAll(new RegExp(`${prefix}_(\\d+(?:\\.\\d+)+)`, 'g'))) {
    const version = match[1].split('.').map(Number);
    if (!best || compare(version, best) > 0) best = version;
  }
  return best;
}

/** Problems with one prebuild, [] when it is sound. */
function checkFile(file, platform, arch) {
  const data = fs.readFileSync(file);
  const name = path.basename(file);
  const problems = [];
  if (platform === 'linux') {
    if (data.readUInt32BE(0) !== 0x7f454c46 || data[4] !== 2 || data[5] !== 1) return [`${name}: not a 64-bit little-endian ELF file`];
    if (data.readUInt16LE(18) !== ELF_MACHINE[arch]) problems.push(`${name}: ELF machine ${data.readUInt16LE(18)}, not ${arch}`);
    const text = data.toString('latin1');
    const libc = name.split('.').find((tag) => tag === 'glibc' || tag === 'musl');
    const musl = /libc\.musl-[\w]+\.so\.1/.test(text);
    if (!libc) problems.push(`${name}: Linux prebuilds must be tagged glibc or musl`);
    if (libc === 'musl' && !musl) problems.push(`${name}: tagged musl but not linked against musl's libc`);
    if (libc === 'glibc') {
      if (musl || !text.includes('libc.so.6')) problems.push(`${name}: tagged glibc but not linked against libc.so.6`);
      const glibc = highest(text, 'GLIBC');
      if (glibc && compare(glibc, MAX_GLIBC) > 0) problems.push(`${name}: needs GLIBC_${glibc.join('.')}, newer than ${MAX_GLIBC.join('.')}`);
      const glibcxx = highest(text, 'GLIBCXX');
      if (glibcxx && compare(glibcxx, MAX_GLIBCXX) > 0) problems.push(`${name}: needs GLIBCXX_${glibcxx.join('.')}, newer than ${MAX_GLIBCXX.join('.')}`);
    }
  } else if (platform === 'darwin') {
    if (data.readUInt32LE(0) !== 0xfeedfacf) return [`${name}: not a 64-bit Mach-O file`];
    if (data.readUInt32LE(4) !== MACHO_CPU[arch]) problems.push(`${name}: Mach-O CPU 0x${data.readUInt32LE(4).toString(16)}, not ${arch}`);
  } else if (platform === 'win32') {
    const pe = data.length > 64 ? data.readUInt32LE(60) : 0;
    if (data.toString('latin1', 0, 2) !== 'MZ' || data.length < pe + 6 || data.readUInt32BE(pe) !== 0x50450000) return [`${name}: not a PE file`];
    if (data.readUInt16LE(pe + 4) !== PE_MACHINE[arch]) problems.push(`${name}: PE machine 0x${data.readUInt16LE(pe + 4).toString(16)}, not ${arch}`);
  } else {
    problems.push(`${name}: no check for platform ${platform}`);
  }
  return problems;
}

/** Problems with the prebuilds in dir, [] when every one is sound (and, with release, the set is complete). */
function checkPrebuilds(dir, { release = false } = {}) {
  const problems = [];
  const found = [];
  const tuples = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  for (const tuple of tuples) {
    const [platform, arch] = tuple.split('-');
    if (!(arch in ELF_MACHINE)) {
      problems.push(`${tuple}: unknown architecture`);
      continue;
    }
    for (const name of fs.readdirSync(path.join(dir, tuple))) {
      if (!name.endsWith('.node')) continue;
      found.push(`${tuple}/${name}`);
      problems.push(...checkFile(path.join(dir, tuple, name), platform, arch).map((problem) => `${tuple}/${problem}`));
    }
  }
  if (found.length === 0) problems.push(`no prebuilds in ${dir}`);
  if (release) {
    for (const wanted of RELEASE) if (!found.includes(wanted)) problems.push(`${wanted}: missing`);
  }
  return { found, problems };
}

module.exports = { RELEASE, checkFile, checkPrebuilds };

if (require.main === module) {
  const args = process.argv.slice(2);
  const release = args.includes('--release');
  const dir = path.resolve(args.find((arg) => !arg.startsWith('--')) ?? path.join(__dirname, '..', 'prebuilds'));
  const { found, problems } = checkPrebuilds(dir, { release });
  for (const file of found) console.log(`check-prebuilds: ${file} ${fs.statSync(path.join(dir, file)).size} bytes`);
  for (const problem of problems) console.error(`check-prebuilds: ${problem}`);
  process.exitCode = problems.length ? 1 : 0;
}
