'use strict';
// Writes the ES-module entry and its types next to the CommonJS build, so `import` and `require` share one instance.
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const cjs = require(path.join(dist, 'index.js'));
const names = Object.keys(cjs).filter((name) => name !== '__esModule');

fs.writeFileSync(
  path.join(dist, 'index.mjs'),
  `import cjs from './index.js';\n\nexport const { ${names.join(', ')} } = cjs;\n`,
);
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './index.js';\n");

// tcp-keepalive/register: the ES-module entry runs the CommonJS one, so both load the package once.
fs.writeFileSync(path.join(dist, 'register.mjs'), "import './register.js';\n");
fs.writeFileSync(path.join(dist, 'register.d.mts'), 'export {};\n');
