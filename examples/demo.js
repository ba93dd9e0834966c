'use strict';
// `npm run demo`: a peer that vanishes without a word (cable pulled, host gone, NAT state dropped),
// noticed within the bound you set, next to a socket that has only Node's own setKeepAlive.
//
// Part 1 runs anywhere. Part 2 needs Linux: it re-runs this file inside a private network namespace
// (`unshare -rn`, where only 127.0.0.1 exists) and drops the connection's packets there with nftables,
// so nothing outside the demo is touched.
const { spawnSync } = require('node:child_process');
const { once } = require('node:events');
const { existsSync } = require('node:fs');
const net = require('node:net');
const { delimiter, join } = require('node:path');
const { applyKeepalive, getKeepalive } = require('..');

const SETTINGS = { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3 };
const NODE_DELAY = 3000;
/** How late detection may come before the demo calls it a failure: timers, a busy machine. */
const LATE_MS = 1500;
const INSIDE = 'TCP_KEEPALIVE_DEMO_INSIDE';
const HOST = '127.0.0.1';

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

function run(command, args, input) {
  const result = spawnSync(command, args, { input, encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`\`${[command, ...args].join(' ')}\` said: ${(result.stderr || `exit ${result.status}`).trim()}`);
}

async function connectedPair(server, port) {
  const client = net.connect(port, HOST);
  const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
  accepted.on('error', () => {});
  return client;
}

/** A local server and two connected clients: ours with applyKeepalive, theirs with Node's setKeepAlive only. */
async function twoSockets() {
  const server = net.createServer().listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address();
  const ours = await connectedPair(server, port);
  applyKeepalive(ours, SETTINGS);
  const theirs = await connectedPair(server, port);
  theirs.setKeepAlive(true, NODE_DELAY);
  return { server, port, ours, theirs };
}

async function showSettings() {
  const { server, ours, theirs } = await twoSockets();
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

/** Why part 2 cannot run here, said plainly; the demo still exits 0, as nothing failed to be detected. */
function cannot(what, why) {
  say(`2. Pulling the cable: not done. I could not ${what}:`);
  say(`   ${why}`);
  say('   Part 1 above is still real: those values are what the kernel holds for the socket.');
  return 0;
}

function reexecIsolated() {
  if (process.platform !== 'linux') return cannot('pull the cable', `it needs Linux network namespaces and nftables, and this is ${process.platform}.`);
  const unshare = which('unshare');
  const ip = which('ip');
  const nft = which('nft');
  if (!unshare) return cannot('create a private network namespace', 'the `unshare` command (util-linux) is not installed.');
  if (!ip) return cannot('bring up 127.0.0.1 inside a private network namespace', 'the `ip` command is not installed (Debian/Ubuntu: apt-get install iproute2).');
  if (!nft) return cannot('drop the connection\'s packets', 'the `nft` command is not installed (Debian/Ubuntu: apt-get install nftables).');
  const attempts = process.getuid?.() === 0 ? [['-rn'], ['-n']] : [['-rn']];
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
  const hint = process.getuid?.() === 0 ? '' : ' Unprivileged user namespaces look disabled here (sysctl user.max_user_namespaces or kernel.unprivileged_userns_clone, or an AppArmor restriction); running as root (sudo npm run demo) avoids that.';
  return cannot('create a private network namespace', `${failures.join('; ')}.${hint}`);
}

async function pullTheCable() {
  const ip = which('ip');
  const nft = which('nft');
  try {
    run(ip, ['link', 'set', 'lo', 'up']);
  } catch (error) {
    return cannot('bring up 127.0.0.1 in the private network namespace', error.message);
  }
  const { server, port, ours, theirs } = await twoSockets();
  const lastPacket = now();
  const bound = boundOf(getKeepalive(ours));
  const nodeBound = boundOf(getKeepalive(theirs));

  try {
    run(nft, ['-f', '-'], [
      'add table inet tcp_keepalive_demo',
      'add chain inet tcp_keepalive_demo input { type filter hook input priority 0; policy accept; }',
      `add rule inet tcp_keepalive_demo input tcp dport ${port} drop`,
      `add rule inet tcp_keepalive_demo input tcp sport ${port} drop`,
      '',
    ].join('\n'));
  } catch (error) {
    ours.destroy();
    theirs.destroy();
    server.close();
    return cannot('drop the connection\'s packets with nftables', error.message);
  }
  const pulled = now();

  say('2. Pulling the cable');
  say(`   Both sockets are connected to a server on ${HOST}:${port} in a private network namespace. Now every`);
  say('   packet of those connections is dropped: no FIN, no reset, no error, just silence, as when a cable');
  say('   is pulled or a NAT forgets the connection. Neither socket has anything to send.');
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
    ok = mine.code === 'ETIMEDOUT' && elapsed <= bound + LATE_MS;
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
  say(`FAILED: the tcp-keepalive socket should have failed with ETIMEDOUT within ${whole(bound)} (+ ${whole(LATE_MS)} slack), ` +
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
