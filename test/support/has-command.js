'use strict';
// Whether `name` is a command on PATH. Plain CommonJS: TypeScript tests and the plain-JS tools (test/arm64/runtime.js) share it.
const { spawnSync } = require('node:child_process');

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

module.exports = { hasCommand };
