'use strict';
// Moved to test/support/node-versions.js (test-environment tooling lives with the tests). This forwarder remains
// only for test/arm64/runtime.js, which is being merged into the one contract in another branch; delete it once
// that file requires ../support/node-versions.js.
module.exports = require('../test/support/node-versions.js');
