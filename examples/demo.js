'use strict';
// `npm run demo`: a peer that vanishes without a word (cable pulled, host gone, NAT state dropped),
// noticed within the bound you set, next to a socket that has only Node's own setKeepAlive.
//
// Part 1 runs anywhere. Part 2 needs Linux and iproute2: it re-runs this file inside a private network
// namespace (`unshare -rn`, root or not), so nothing outside the demo is touched, and there drops the
// connections' packets with the first of nft, iptables or iproute2 policy routing that works.
const { spawnSync } = require('node:child_process');
const { once } = require('node:events');
const { existsSync, rmSync } = require('node:fs');
const net = require('node:net');
const { tmpdir } = require('node:os');
const { delimiter, join } = require('node:path');
const { applyKeepalive, getKeepalive } = require('..');

const SETTINGS = { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 };
const NODE_DELAY = 3000;
/** How late detection may come before the demo calls it a failure: timers, a busy machine. */
const LATE_MS = 1500;
/** Kernel timers fire late, never early: an error well before the bound was not keepalive's doing. */
const EARLY_RATIO = 0.9;
const INSIDE = 'TCP_KEEPALIVE_DEMO_INSIDE';
/** Part 1, on any OS: macOS has only 127.0.0.1 on its loopback. */
const HOST = '127.0.0.1';
/** Part 2, in the namespace: the server on its own address, so routing can make it vanish. */
const SERVER = '127.0.0.2';
const CLIENT = '127.0.0.1';
/** Under `.ci/run` a demo that could not pull the cable is a failure, not an explanation. */
const strict = process.env.TCP_KEEPALIVE_STRICT === '1';

const tty = process.stdout.isTTY === true;
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sec = (ms) => `${(ms / 1000).toFixed(2)} s`;
const whole = (ms) => `${ms / 1000} s`;

let progressShown = false;

function say(line = '') {
  if (progressShown) process.stdout.write('\r\x1b[2K');
  progressShown = false;
  console.log(line);
}

function boundOf(values) {
  return values.keepalivetime + values.keepaliveinterval * values.keepalivecount;
}

function describeHeld(values) {
  const user = values.usertimeout ? `, user timeout ${values.usertimeout} ms` : '';
  return `keepalive ${values.onoff ? 'on' : 'off'}, idle ${values.keepalivetime} ms, then ${values.keepalivecount} probes ${values.keepaliveinterval} ms apart${user}`;
}

/** An executable on PATH or in the sbin directories a non-root PATH often lacks. */
function which(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.map((dir) => join(dir, name)).find((path) => path.startsWith('/') && existsSync(path));
}

function run(command, args, input, env = process.env) {
  const result = spawnSync(command, args, { input, env, encoding: 'utf8' });
  // A command that exits before reading its input (EPIPE) failed by its exit status, not by the pipe.
  if (result.error && !(result.error.code === 'EPIPE' && result.status !== null)) throw result.error;
  if (result.status !== 0) throw new Error(`\`${[command, ...args].join(' ')}\` said: ${(result.stderr || `exit ${result.status}`).trim()}`);
}

/**
 * The ways to pull the cable inside the namespace, in order. Each silently drops every packet of both
 * connections, in both directions; the first whose command is here and works is used.
 */
const CUTTERS = [
  {
    command: 'nft',
    name: 'nftables',
    how: (port) => `an nft rule on the input hook drops every packet to or from port ${port}`,
    cut: (nft, port) =>
      run(nft, ['-f', '-'], [
        'add table inet tcp_keepalive_demo',
        'add chain inet tcp_keepalive_demo input { type filter hook input priority 0; policy accept; }',
        `add rule inet tcp_keepalive_demo input tcp dport ${port} drop`,
        `add rule inet tcp_keepalive_demo input tcp sport ${port} drop`,
        '',
      ].join('\n')),
  },
  {
    command: 'iptables',
    name: 'iptables',
    how: (port) => `two iptables INPUT rules drop every packet to or from port ${port}`,
    cut: (iptables, port) => {
      // The namespace is ours alone, so is the lock; /run/xtables.lock is not writable without root.
      const lock = join(tmpdir(), `tcp-keepalive-demo-${process.pid}.xtables.lock`);
      const env = { ...process.env, XTABLES_LOCKFILE: lock };
      try {
        for (const direction of ['--dport', '--sport']) run(iptables, ['-w', '-A', 'INPUT', '-p', 'tcp', direction, String(port), '-j', 'DROP'], undefined, env);
      } finally {
        rmSync(lock, { force: true });
      }
    },
  },
  {
    command: 'ip',
    name: 'iproute2 policy routing',
    how: () => `blackhole routes for ${SERVER} and ${CLIENT}, consulted before the local table`,
    cut: (ip) =>
      run(ip, ['-batch', '-'], [
        `route add blackhole ${SERVER} table 10`,
        `route add blackhole ${CLIENT} table 10`,
        `rule add pref 10 to ${SERVER} table 10`,
        `rule add pref 10 to ${CLIENT} table 10`,
        'rule add pref 100 table local',
        'rule del pref 0',
        '',
      ].join('\n')),
  },
];

/** Drops every packet of the connections on `port` with the first cutter that works. */
function cutWithFirstThatWorks(port) {
  const passed = [];
  for (const cutter of CUTTERS) {
    const path = which(cutter.command);
    if (!path) {
      passed.push(`${cutter.command}: not installed`);
      continue;
    }
    try {
      cutter.cut(path, port);
      return { cutter, passed };
    } catch (error) {
      passed.push(`${cutter.command}: ${error.message}`);
    }
  }
  return { passed };
}

async function connectedPair(server, port, host, localAddress) {
  const client = net.connect({ port, host, localAddress });
  const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
  accepted.on('error', () => {});
  return client;
}

/** A local server and two connected clients: ours with applyKeepalive, theirs with Node's setKeepAlive only. */
async function twoSockets(host, localAddress) {
  const server = net.createServer().listen(0, host);
  await once(server, 'listening');
  const { port } = server.address();
  const ours = await connectedPair(server, port, host, localAddress);
  applyKeepalive(ours, SETTINGS);
  const theirs = await connectedPair(server, port, host, localAddress);
  theirs.setKeepAlive(true, NODE_DELAY);
  return { server, port, ours, theirs };
}

async function showSettings() {
  const { server, ours, theirs } = await twoSockets(HOST);
  const held = getKeepalive(ours);
  const nodeHeld = getKeepalive(theirs);

  say('1. The settings, on a connected socket');
  say(`   applyKeepalive(socket, { keepalivetime: ${SETTINGS.keepalivetime}, keepaliveinterval: ${SETTINGS.keepaliveinterval}, keepalivecount: ${SETTINGS.keepalivecount} })`);
  say(`   the kernel now holds: ${describeHeld(held)}`);
  say(`   so a peer that stops answering is given up after ${whole(held.keepalivetime)} + ${held.keepalivecount} × ${whole(held.keepaliveinterval)} = ${whole(boundOf(held))}.`);
  say();
  say(`   For comparison, Node's own socket.setKeepAlive(true, ${NODE_DELAY}):`);
  say(`   the kernel now holds: ${describeHeld(nodeHeld)}`);
  say(`   so it gives up after ${whole(boundOf(nodeHeld))}; Node (before 26.4) cannot change the interval or the count.`);
  say();
  ours.destroy();
  theirs.destroy();
  server.close();
}

/**
 * Why part 2 cannot run here, said plainly. The demo still exits 0, as nothing failed to be detected,
 * except under TCP_KEEPALIVE_STRICT=1 (CI), where not showing it is a failure.
 */
function cannot(what, why) {
  say(`2. Pulling the cable: not done. I could not ${what}:`);
  say(`   ${why}`);
  say('   Part 1 above is still real: those values are what the kernel holds for the socket.');
  if (!strict) return 0;
  say('FAILED: TCP_KEEPALIVE_STRICT=1 is set, so the cable must be pulled here.');
  return 1;
}

function reexecIsolated() {
  if (process.platform !== 'linux') return cannot('pull the cable', `that needs a Linux network namespace, and this is ${process.platform}.`);
  const unshare = which('unshare');
  if (!unshare) return cannot('create a private network namespace', 'the `unshare` command is not installed (Debian/Ubuntu: apt-get install util-linux).');
  if (!which('ip')) return cannot('bring up the loopback interface of a private network namespace', 'the `ip` command is not installed (Debian/Ubuntu: apt-get install iproute2).');
  const root = process.getuid?.() === 0;
  const attempts = root ? [['-rn'], ['-n']] : [['-rn']];
  const failures = [];
  for (const flags of attempts) {
    const probe = spawnSync(unshare, [...flags, 'true'], { encoding: 'utf8' });
    if (probe.status === 0) {
      const env = { ...process.env, [INSIDE]: '1' };
      const child = spawnSync(unshare, [...flags, process.execPath, ...process.execArgv, __filename], { stdio: 'inherit', env });
      return child.status ?? 1;
    }
    failures.push(`\`unshare ${flags.join(' ')}\` said: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`);
  }
  const hint = root
    ? ' Namespaces look unavailable here (a container not allowed to create them, or sysctl user.max_net_namespaces at 0); run the demo on the host, or in a container started with --privileged.'
    : ' Unprivileged user namespaces look disabled here (sysctl user.max_user_namespaces or kernel.unprivileged_userns_clone, or an AppArmor restriction); running as root (sudo npm run demo) avoids that.';
  return cannot('create a private network namespace', `${failures.join('; ')}.${hint}`);
}

async function pullTheCable() {
  try {
    run(which('ip'), ['link', 'set', 'lo', 'up']);
  } catch (error) {
    return cannot('bring up the loopback interface of the private network namespace', error.message);
  }
  const { server, port, ours, theirs } = await twoSockets(SERVER, CLIENT);
  const lastPacket = now();
  const bound = boundOf(getKeepalive(ours));
  const nodeBound = boundOf(getKeepalive(theirs));

  const { cutter, passed } = cutWithFirstThatWorks(port);
  if (!cutter) {
    ours.destroy();
    theirs.destroy();
    server.close();
    return cannot('drop the connections\' packets', `${passed.join('; ')}. Installing nftables (Debian/Ubuntu: apt-get install nftables) gives me a way.`);
  }
  const pulled = now();

  say(`2. Pulling the cable, with ${cutter.name}`);
  say(`   Both sockets are connected to a server on ${SERVER}:${port} in a private network namespace. Now every`);
  say('   packet of those connections is dropped: no FIN, no reset, no error, just silence, as when a cable');
  say('   is pulled or a NAT forgets the connection. Neither socket has anything to send.');
  say(`   How: ${cutter.how(port)}.`);
  if (passed.length > 0) say(`   (Tried first: ${passed.join('; ')}.)`);
  say();

  const ended = new Map();
  const watch = (socket, name) => {
    socket.on('error', (error) => ended.set(name, { code: error.code, t: now() }));
    socket.on('close', () => ended.has(name) || ended.set(name, { code: 'closed', t: now() }));
  };
  watch(ours, 'ours');
  watch(theirs, 'theirs');
  const state = (name) => (ended.has(name) ? ended.get(name).code : 'open');
  const progress = tty
    ? setInterval(() => {
        process.stdout.write(`\r\x1b[2K   ${sec(now() - pulled).padStart(8)}  tcp-keepalive (bound ${whole(bound)}): ${state('ours')}   setKeepAlive only (${whole(nodeBound)}): ${state('theirs')}`);
        progressShown = true;
      }, 100)
    : undefined;
  const waitFor = async (name, deadline) => {
    while (!ended.has(name) && now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return ended.get(name);
  };

  say(`   ${sec(0).padStart(8)}  cable pulled (${sec(pulled - lastPacket)} after the last packet)`);
  const mine = await waitFor('ours', lastPacket + bound + LATE_MS + 1000);
  let ok = false;
  if (mine) {
    const elapsed = mine.t - lastPacket;
    ok = mine.code === 'ETIMEDOUT' && elapsed >= bound * EARLY_RATIO && elapsed <= bound + LATE_MS;
    say(`   ${sec(mine.t - pulled).padStart(8)}  tcp-keepalive socket: 'error' ${mine.code}, the peer is declared dead (bound ${whole(bound)})`);
  } else {
    say(`   ${sec(now() - pulled).padStart(8)}  tcp-keepalive socket: still open, past its bound of ${whole(bound)}`);
  }
  say(`   ${''.padStart(8)}  setKeepAlive-only socket: ${ended.has('theirs') ? `'error' ${state('theirs')}` : 'still open: as far as Node knows, the peer is alive'}`);

  const node = await waitFor('theirs', lastPacket + nodeBound + LATE_MS + 1000);
  if (node) say(`   ${sec(node.t - pulled).padStart(8)}  setKeepAlive-only socket: 'error' ${node.code}, at last (its bound: ${whole(nodeBound)})`);
  else say(`   ${sec(now() - pulled).padStart(8)}  setKeepAlive-only socket: still open, past its bound of ${whole(nodeBound)}`);
  if (progress) clearInterval(progress);
  ours.destroy();
  theirs.destroy();
  server.close();

  say();
  if (ok) {
    say(`Result: tcp-keepalive noticed the dead peer after ${sec(mine.t - lastPacket)} of silence (bound ${whole(bound)});`);
    say(`Node's setKeepAlive alone ${node ? `took ${sec(node.t - lastPacket)}` : `had not noticed after ${sec(now() - lastPacket)}`}, and without any keepalive the socket would wait forever.`);
    say('With data in flight keepalive never fires: set usertimeout for that case (see the README).');
    return 0;
  }
  say(`FAILED: the tcp-keepalive socket should have failed with ETIMEDOUT after ${whole(bound)} (+ ${whole(LATE_MS)} slack), ` +
    `${mine ? `but it got ${mine.code} after ${sec(mine.t - lastPacket)}` : 'but it did not fail at all'}.`);
  return 1;
}

async function main() {
  if (process.env[INSIDE] === '1') return pullTheCable();
  say('tcp-keepalive demo: noticing a peer that vanished without a word');
  say();
  await showSettings();
  return reexecIsolated();
}

main().then(
  (code) => process.exit(code),
  (error) => {
    say(`demo failed: ${error.stack ?? error}`);
    process.exit(1);
  },
);
