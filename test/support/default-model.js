'use strict';
// Random sequences of what drivers, agents and servers do while setDefaultKeepalive changes: defaults A / B /
// off / filtered / null, explicit applies on sockets and on the server, connects (net.connect and new
// Socket().connect), reconnects, bursts, connects pending while the default switches, a driver's setKeepAlive
// before and after connect, connect listeners removed. Each sequence ends by printing what the kernel must hold
// on every live socket, from a model written apart from lib/ (below); property.test.ts reads every socket of
// this process from outside (ss + the pidfd observer) and compares, then writes a line to go on.
// Run inside a fresh network namespace (the kernel's defaults: 7200 s, 75 s, 9 probes, no usertimeout).
// argv: dist/index.js, seed, number of sequences.
const net = require('node:net');
const readline = require('node:readline');

const { applyKeepalive, setDefaultKeepalive } = require(process.argv[2]);
const SEED = Number(process.argv[3]);
const SEQUENCES = Number(process.argv[4]);
const HOST = '127.0.0.1';

/** Don't care: what a runtime's own setKeepAlive writes where it differs from libuv's (Bun). */
const ANY = '*';
const PRISTINE = { so_keepalive: 0, tcp_keepidle: 7200, tcp_keepintvl: 75, tcp_keepcnt: 9, tcp_user_timeout: 0 };
const OPTIONS = {
  A: { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 2, usertimeout: 3000 },
  B: { keepalivetime: 4500, keepaliveinterval: 2000 },
  OFF: { onoff: false },
  X: { keepalivetime: 11000, keepaliveinterval: 3000, keepalivecount: 5 },
  S: { keepalivetime: 13000, keepaliveinterval: 4000, usertimeout: 7000 },
};
const SERVER_DELAY = 33;

// ---- the model: what the kernel holds, from the rules alone ----

/** Omitted fields (and every field when off) are what a new socket holds. */
function resolved(name) {
  const o = OPTIONS[name];
  if (o.onoff === false) return { ...PRISTINE };
  return {
    so_keepalive: 1,
    tcp_keepidle: Math.ceil(o.keepalivetime / 1000),
    tcp_keepintvl: Math.ceil(o.keepaliveinterval / 1000),
    tcp_keepcnt: o.keepalivecount ?? PRISTINE.tcp_keepcnt,
    tcp_user_timeout: o.usertimeout ?? PRISTINE.tcp_user_timeout,
  };
}

/** The runtime's own setKeepAlive: libuv's idle in seconds, 1 s x 10 probes (Bun: not modelled beyond on/off and idle). */
function runtimeKeepAlive(kernel, enable, delay) {
  if (!enable) return { ...kernel, so_keepalive: 0 };
  if (process.versions.bun) return { ...kernel, so_keepalive: 1, tcp_keepidle: ANY, tcp_keepintvl: ANY, tcp_keepcnt: ANY };
  return { ...kernel, so_keepalive: 1, tcp_keepidle: delay, tcp_keepintvl: 1, tcp_keepcnt: 10 };
}

const model = {
  default: null, // { name, side }
  server: null, // name of the server's own options
  wantedBy(slot, side) {
    if (slot.own) return slot.own;
    if (side === 'server' && model.server) return model.server;
    const d = model.default;
    return d && (!d.side || d.side === side) ? d.name : null;
  },
  decide(slot, base) {
    const wanted = model.wantedBy(slot, slot.client ? 'client' : 'server');
    slot.ours = wanted && resolved(wanted);
    if (!wanted) slot.kernel = base;
    else if (slot.ours.so_keepalive) slot.kernel = { ...slot.ours, so_keepalive: slot.enabled === false ? 0 : 1 };
    else slot.kernel = slot.enabled === true ? base : { ...slot.ours };
  },
  connected(slot) {
    model.decide(slot, slot.node.enable ? runtimeKeepAlive(PRISTINE, true, slot.node.delay) : { ...PRISTINE });
  },
  accepted(slot, keepAliveServer) {
    slot.node = keepAliveServer ? { enable: true, delay: SERVER_DELAY } : { enable: false, delay: 0 };
    model.decide(slot, keepAliveServer ? runtimeKeepAlive(PRISTINE, true, SERVER_DELAY) : { ...PRISTINE });
  },
  /** Node skips a call that repeats its own last one; ours stay on over an on, and go off with an off. */
  setKeepAlive(slot, enable, delay, connected) {
    const skipped = slot.node.enable === enable && (!enable || slot.node.delay === delay);
    if (!skipped) slot.node = { enable, delay };
    slot.enabled = enable;
    if (!connected) return;
    if (slot.ours?.so_keepalive) slot.kernel = enable ? { ...slot.ours } : { ...slot.kernel, so_keepalive: 0 };
    else if (!skipped) slot.kernel = runtimeKeepAlive(slot.kernel, enable, delay);
  },
  apply(slot, name) {
    slot.own = name;
    slot.ours = resolved(name);
    slot.enabled = undefined;
    slot.kernel = { ...slot.ours };
  },
};

// ---- the driver: random operations, done for real and told to the model ----

let state = SEED >>> 0 || 1;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const chance = (p) => random() < p;

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
let resume = () => {};
readline.createInterface({ input: process.stdin }).on('line', () => resume());
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function setDefault(choice) {
  if (choice === 'null') {
    setDefaultKeepalive(null);
    model.default = null;
    return;
  }
  const [name, side] = choice.split('/');
  setDefaultKeepalive(OPTIONS[name], side ? { filter: (_socket, info) => info.side === side } : {});
  model.default = { name, side };
}
const DEFAULTS = ['A', 'B', 'OFF', 'A/client', 'B/server', 'null'];

async function until(condition, what) {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runSequence(index) {
  const keepAliveServer = chance(0.3);
  const server = net.createServer(keepAliveServer ? { keepAlive: true, keepAliveInitialDelay: SERVER_DELAY * 1000 } : {});
  const accepted = [];
  server.on('connection', (socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
  });
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  const port = server.address().port;
  const slots = [];
  const log = [`server keepAlive ${keepAliveServer}`];

  const acceptFor = async (client) => {
    await until(() => accepted.some((s) => s.remotePort === client.socket.localPort), 'the accepted end');
    const socket = accepted.splice(accepted.findIndex((s) => s.remotePort === client.socket.localPort), 1)[0];
    const slot = { socket, client: false, own: null, ours: null, enabled: undefined, node: { enable: false, delay: 0 }, kernel: null, peer: client };
    model.accepted(slot, keepAliveServer);
    client.peer = slot;
    slots.push(slot);
  };

  /** connect() (or reconnect), with what can happen while it is pending, then both ends decided. */
  const connect = async (slot, how) => {
    const { socket } = slot;
    if (how.own) applyKeepalive(socket, OPTIONS[how.own]); // before connect()
    if (how.own) model.apply(slot, how.own);
    if (how.plain) socket.connect(port, HOST);
    if (how.keepAlive) {
      socket.setKeepAlive(how.keepAlive[0], how.keepAlive[1] * 1000);
      model.setKeepAlive(slot, how.keepAlive[0], how.keepAlive[1], false);
    }
    if (how.removeListeners) socket.removeAllListeners('connect');
    if (how.switchTo) setDefault(how.switchTo);
    await until(() => !socket.connecting && typeof socket.remotePort === 'number', 'connect');
    model.connected(slot);
    await acceptFor(slot);
  };

  const pendingHow = () => ({
    keepAlive: chance(0.35) ? [chance(0.75), 1 + Math.floor(random() * 90)] : null,
    removeListeners: chance(0.2),
    switchTo: chance(0.3) ? pick(DEFAULTS) : null,
  });

  const ops = 4 + Math.floor(random() * 8);
  for (let n = 0; n < ops; n++) {
    const live = slots.filter((s) => !s.socket.destroyed);
    const roll = random();
    if (roll < 0.2) {
      const choice = pick(DEFAULTS);
      setDefault(choice);
      log.push(`setDefaultKeepalive ${choice}`);
    } else if (roll < 0.45 || live.length === 0) {
      const plain = chance(0.5);
      const socket = plain ? new net.Socket() : null;
      const how = { ...pendingHow(), own: chance(0.15) ? 'X' : null, plain };
      const slot = { socket, client: true, own: null, ours: null, enabled: undefined, node: { enable: false, delay: 0 }, kernel: null };
      if (!plain) {
        // net.connect(): connect() runs inside, before anything else can be said
        slot.socket = net.connect(port, HOST);
      }
      slot.socket.on('error', () => {});
      log.push(`open ${JSON.stringify(how)}`);
      slots.push(slot);
      await connect(slot, how);
    } else if (roll < 0.55) {
      const k = 2 + Math.floor(random() * 6);
      const switchTo = chance(0.5) ? pick(DEFAULTS) : null;
      log.push(`burst of ${k}, switch to ${switchTo}`);
      const burst = Array.from({ length: k }, () => {
        const slot = { socket: net.connect(port, HOST), client: true, own: null, ours: null, enabled: undefined, node: { enable: false, delay: 0 }, kernel: null };
        slot.socket.on('error', () => {});
        slots.push(slot);
        return slot;
      });
      if (switchTo) setDefault(switchTo);
      for (const slot of burst) {
        await until(() => !slot.socket.connecting && typeof slot.socket.remotePort === 'number', 'connect');
        model.connected(slot);
      }
      for (const slot of burst) await acceptFor(slot);
    } else if (roll < 0.7) {
      const slot = pick(live);
      const enable = chance(0.7);
      const delay = 1 + Math.floor(random() * 90);
      slot.socket.setKeepAlive(enable, delay * 1000);
      model.setKeepAlive(slot, enable, delay, true);
      log.push(`setKeepAlive(${enable}, ${delay}000) on ${slots.indexOf(slot)}`);
    } else if (roll < 0.8) {
      const slot = pick(live.filter((s) => s.client).concat(live.slice(0, 1)));
      if (!slot.client) continue;
      const how = { ...pendingHow(), plain: true };
      log.push(`reconnect ${slots.indexOf(slot)} ${JSON.stringify(how)}`);
      slot.peer?.socket.destroy();
      slot.socket.destroy();
      await new Promise((resolve) => (slot.socket.closed ? resolve() : slot.socket.once('close', resolve)));
      await connect(slot, how);
    } else if (roll < 0.9) {
      const slot = pick(live);
      const name = pick(['X', 'OFF', 'B']);
      applyKeepalive(slot.socket, OPTIONS[name]);
      model.apply(slot, name);
      log.push(`applyKeepalive(${name}) on ${slots.indexOf(slot)}`);
    } else {
      const name = pick(['S', 'OFF']);
      applyKeepalive(server, OPTIONS[name]);
      model.server = name;
      log.push(`applyKeepalive(server, ${name})`);
    }
  }

  await sleep(20);
  const expected = {};
  for (const slot of slots) {
    if (slot.socket.destroyed) continue;
    expected[`${slot.socket.localPort}>${slot.socket.remotePort}`] = { kernel: slot.kernel, what: `${slot.client ? 'client' : 'accepted'} #${slots.indexOf(slot)}` };
  }
  await new Promise((resolve) => {
    resume = resolve;
    send({ ev: 'observe', pid: process.pid, sequence: index, log, expected });
  });
  for (const slot of slots) slot.socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  setDefault('null');
  model.server = null;
}

(async () => {
  for (let i = 0; i < SEQUENCES; i++) await runSequence(i);
  send({ ev: 'done' });
  process.exit(0);
})().catch((error) => {
  send({ ev: 'failed', error: String((error && error.stack) || error) });
  process.exit(1);
});
