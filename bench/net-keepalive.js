'use strict';
// net-keepalive, the package we compare against, installed into a scratch folder of its own: never a
// dependency of tcp-keepalive, never in its node_modules or package.json.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const SPEC = 'net-keepalive@4';
const { scratch } = require('./support');
const moduleDir = path.join(scratch, 'node_modules', 'net-keepalive');

function versionOf(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
}

/** The environment for a nested npm without the npm_* variables of an enclosing `npm run`, which point at our package. */
function cleanEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key)) env[key] = value;
  return env;
}

/**
 * Installs net-keepalive 4.x into the scratch folder unless it is there, and checks that it loads.
 * Returns `{ dir, version }`, or `{ error }` saying why it cannot be measured here.
 */
function prepare() {
  if (!fs.existsSync(path.join(moduleDir, 'package.json'))) {
    fs.mkdirSync(scratch, { recursive: true });
    // A package.json of its own makes the scratch folder the project npm installs into, not the package around it.
    fs.writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'tcp-keepalive-bench-scratch', private: true }) + '\n');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const res = spawnSync(npm, ['install', '--prefix', scratch, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', SPEC], {
      cwd: scratch,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (res.error || res.status !== 0) {
      const why = res.error ? res.error.message : (res.stderr || res.stdout).trim().split('\n').slice(-3).join(' | ');
      return { error: `npm install ${SPEC} failed: ${why}` };
    }
  }
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(moduleDir)})`], { encoding: 'utf8', timeout: 60_000 });
  if (probe.status !== 0) {
    const why = (probe.stderr || '').trim().split('\n').find((l) => /Error/.test(l)) || `exit ${probe.status}`;
    return { error: `net-keepalive ${versionOf(moduleDir)} does not load here: ${why}` };
  }
  return { dir: moduleDir, version: versionOf(moduleDir) };
}

module.exports = { prepare, SPEC };
