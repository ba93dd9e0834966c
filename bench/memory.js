'use strict';
// Section 4: resident memory before and after 10^6 applies on one socket, each measured after full GCs.
// Run with --expose-gc (bench/run.js does).
const { applyKeepalive } = require('..');
const { connectedSockets, emit, CONFIGS } = require('./support');

const APPLIES = 1_000_000;
const WARMUP = 100_000;

async function settle() {
  for (let i = 0; i < 4; i++) {
    global.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage();
}

async function main() {
  if (typeof global.gc !== 'function') throw new Error('bench/memory.js needs node --expose-gc');
  const pair = await connectedSockets(1);
  const [socket] = pair.clients;
  // Warm up first, so that compiled code and the young generation's growth are in the "before" figure.
  for (let i = 0; i < WARMUP; i++) applyKeepalive(socket, CONFIGS[i & 1]);
  const before = await settle();
  const start = process.hrtime.bigint();
  for (let i = 0; i < APPLIES; i++) applyKeepalive(socket, CONFIGS[i & 1]);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const after = await settle();
  await pair.close();
  const mb = (bytes) => bytes / 2 ** 20;
  emit({
    section: 'memory',
    applies: APPLIES,
    ms,
    rssBeforeMB: mb(before.rss),
    rssAfterMB: mb(after.rss),
    rssGrowthMB: mb(after.rss - before.rss),
    heapUsedGrowthMB: mb(after.heapUsed - before.heapUsed),
    externalGrowthMB: mb(after.external - before.external),
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
