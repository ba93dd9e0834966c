'use strict';
// Section 1: what one apply costs on a connected socket, side by side in one process with Node's own native
// call (the floor) and with net-keepalive; and what one getKeepalive costs.
const assert = require('node:assert/strict');
const { applyKeepalive, getKeepalive } = require('..');
const { quick, connectedSockets, bestOfRounds, emit, CONFIGS } = require('./support');

const CALLS = quick ? 4_000 : 40_000;
const ROUNDS = quick ? 3 : 9;
const NK_CALLS = quick ? 1_000 : 5_000;

function loadNetKeepalive() {
  if (process.env.BENCH_NET_KEEPALIVE_ERROR) return { error: process.env.BENCH_NET_KEEPALIVE_ERROR };
  if (!process.env.BENCH_NET_KEEPALIVE) return { error: 'not installed' };
  const dir = process.env.BENCH_NET_KEEPALIVE;
  return { module: require(dir), version: require(`${dir}/package.json`).version };
}

/** The internal binding, to split the cost of an apply into its JS and native parts; absent if it moved. */
function loadBinding() {
  try {
    const { binding } = require('../dist/binding');
    return typeof binding?.apply === 'function' && typeof binding?.resolve === 'function' ? binding : undefined;
  } catch {
    return undefined;
  }
}

async function main() {
  const nk = loadNetKeepalive();
  const binding = loadBinding();
  const pair = await connectedSockets(4);
  const [floorSocket, oursSocket, nkSocket, nativeSocket] = pair.clients;
  const floorHandle = floorSocket._handle;
  assert.equal(typeof floorHandle.setKeepAlive, 'function', 'socket._handle.setKeepAlive is missing: Node changed its TCP handle');
  const seconds = CONFIGS.map((c) => c.keepalivetime / 1000);

  const contenders = [
    {
      name: 'floor',
      run(n) {
        for (let i = 0; i < n; i++) floorHandle.setKeepAlive(true, seconds[i & 1]);
      },
    },
    {
      name: 'apply',
      run(n) {
        for (let i = 0; i < n; i++) applyKeepalive(oursSocket, CONFIGS[i & 1]);
      },
    },
    {
      name: 'get',
      run(n) {
        for (let i = 0; i < n; i++) getKeepalive(oursSocket);
      },
    },
  ];
  if (binding && nativeSocket._handle.fd >= 0) {
    const fd = binding.resolve(nativeSocket._handle.fd, undefined, undefined, undefined, undefined);
    contenders.push({
      name: 'native',
      run(n) {
        for (let i = 0; i < n; i++) {
          const c = CONFIGS[i & 1];
          binding.apply(fd, 1, c.keepalivetime, c.keepaliveinterval, c.keepalivecount, -1);
        }
      },
    });
  }
  if (nk.module) {
    const { setKeepAliveInterval, setKeepAliveProbes } = nk.module;
    contenders.push({
      name: 'netKeepalive',
      calls: NK_CALLS,
      run(n) {
        for (let i = 0; i < n; i++) {
          const c = CONFIGS[i & 1];
          nkSocket.setKeepAlive(true, c.keepalivetime);
          setKeepAliveInterval(nkSocket, c.keepaliveinterval);
          setKeepAliveProbes(nkSocket, c.keepalivecount);
        }
      },
    });
  }
  const results = bestOfRounds(contenders, ROUNDS, CALLS);

  // Every contender must have left the last configuration (CONFIGS[1], calls are even) in the kernel.
  const last = CONFIGS[1];
  const expected = { onoff: true, keepalivetime: last.keepalivetime, keepaliveinterval: last.keepaliveinterval, keepalivecount: last.keepalivecount };
  const held = (socket) => {
    const { onoff, keepalivetime, keepaliveinterval, keepalivecount } = getKeepalive(socket);
    return { onoff, keepalivetime, keepaliveinterval, keepalivecount };
  };
  assert.deepEqual(held(oursSocket), expected, 'applyKeepalive did not leave its last configuration in the kernel');
  const floorHeld = held(floorSocket);
  assert.deepEqual([floorHeld.onoff, floorHeld.keepalivetime], [true, last.keepalivetime], "Node's setKeepAlive did not leave its last idle time in the kernel");
  if (results.native) assert.deepEqual(held(nativeSocket), expected, 'binding.apply did not leave its last configuration in the kernel');
  if (nk.module) assert.deepEqual(held(nkSocket), expected, 'net-keepalive did not leave its last configuration in the kernel');

  await pair.close();
  emit({ section: 'apply', calls: CALLS, rounds: ROUNDS, results, netKeepalive: nk.module ? { version: nk.version, calls: NK_CALLS } : { error: nk.error } });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
