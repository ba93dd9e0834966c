'use strict';
// Every way a Node process opens or accepts a TCP connection, with setDefaultKeepalive called once first.
// Run by default.test.ts inside a private network namespace, under Node 20, 22, 24 and 26 (argv[2]: dist).
// Prints { ev: 'observe', connections, ... } and waits for a line on stdin (the test reads every socket of
// this process with its observer meanwhile), then does the same after setDefaultKeepalive(null), then for
// servers the default takes over.
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const tls = require('node:tls');

const { setDefaultKeepalive, applyKeepalive, getKeepalive } = require(process.argv[2]);
const OPTIONS = { keepalivetime: 2000, keepaliveinterval: 1000, keepalivecount: 2, usertimeout: 3000 };
const SECOND = { keepalivetime: 4000, keepaliveinterval: 2000, keepalivecount: 4, usertimeout: 5000 };
const EXPLICIT_SERVER = { keepalivetime: 8000, keepaliveinterval: 3000, keepalivecount: 6, usertimeout: 9000 };
const HOST = '127.0.0.1';
const fixtures = path.join(__dirname, '..', 'fixtures');
const key = fs.readFileSync(path.join(fixtures, 'key.pem'));
const cert = fs.readFileSync(path.join(fixtures, 'cert.pem'));
const clientTls = { ca: cert, servername: 'localhost' };

const warnings = [];
process.removeAllListeners('warning');
process.on('warning', (warning) => warnings.push({ name: warning.name, code: warning.code, message: warning.message }));

const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
let resume = () => {};
readline.createInterface({ input: process.stdin }).on('line', () => resume());
const observe = (message) =>
  new Promise((resolve) => {
    resume = resolve;
    send({ ev: 'observe', ...message });
  });

const listen = (server) => new Promise((resolve) => server.listen(0, HOST, () => resolve(server.address().port)));
const once = (emitter, event) =>
  new Promise((resolve, reject) => {
    emitter.once(event, resolve);
    emitter.once('error', reject);
  });
const ports = (socket) => ({ local: socket.localPort, peer: socket.remotePort });

/** The filter sees every TCP connection once its addresses are known; connections to SKIP are left alone, THROW makes it throw. */
const filtered = [];
let SKIP = -1;
let THROW = -1;
function filter(socket, { side }) {
  const serverPort = side === 'client' ? socket.remotePort : socket.localPort;
  filtered.push({ side, serverPort, known: typeof socket.remoteAddress === 'string' && typeof socket.remotePort === 'number' });
  if (serverPort === THROW) throw new Error('a filter that throws');
  return serverPort !== SKIP;
}

async function main() {
  const plain = net.createServer((socket) => socket.on('error', () => {}));
  const secure = tls.createServer({ key, cert }, (socket) => socket.on('error', () => {}));
  const web = http.createServer((req, res) => res.end('ok'));
  const secureWeb = https.createServer({ key, cert }, (req, res) => res.end('ok'));
  const h2 = http2.createSecureServer({ key, cert }, (req, res) => res.end('ok'));
  const skipped = net.createServer((socket) => socket.on('error', () => {}));
  const throwing = net.createServer((socket) => socket.on('error', () => {}));
  const unixPath = path.join(os.tmpdir(), `tcpka-default-${process.pid}.sock`);
  const unix = net.createServer((socket) => socket.pipe(socket));
  for (const server of [web, secureWeb]) server.keepAliveTimeout = 60_000;

  const port = {
    plain: await listen(plain),
    secure: await listen(secure),
    web: await listen(web),
    secureWeb: await listen(secureWeb),
    h2: await listen(h2),
    skipped: await listen(skipped),
    throwing: await listen(throwing),
  };
  await new Promise((resolve) => unix.listen(unixPath, resolve));
  process.on('exit', () => fs.rmSync(unixPath, { force: true }));
  SKIP = port.skipped;
  THROW = port.throwing;

  // Rejected options install nothing.
  let rejected;
  try {
    setDefaultKeepalive({ ...OPTIONS, keepalivecount: 0 });
  } catch (error) {
    rejected = error.code;
  }

  setDefaultKeepalive(OPTIONS, { filter });

  // What the user's own connect / secureConnect listener sees: the default is already there.
  const inListener = {};
  const seenIn = (name) =>
    function () {
      inListener[name] = getKeepalive(this).keepalivetime;
    };
  const listenerSockets = [
    net.connect(port.plain, HOST, seenIn('net.connect(port, host, listener)')),
    new net.Socket().connect(port.plain, HOST, seenIn('new net.Socket().connect(port, host, listener)')),
    tls.connect({ port: port.secure, host: HOST, ...clientTls }, seenIn('tls.connect(options, secureConnect listener)')),
  ];
  await Promise.all(listenerSockets.map((socket) => once(socket, socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect')));

  const c = {};
  c['net.connect'] = net.connect(port.plain, HOST);
  c['new net.Socket().connect'] = new net.Socket().connect(port.plain, HOST);
  c['net.createConnection'] = net.createConnection({ port: port.plain, host: HOST });
  c['tls.connect'] = tls.connect({ port: port.secure, host: HOST, ...clientTls });
  const raw = net.connect(port.secure, HOST);
  c['tls.connect over a connected socket'] = tls.connect({ socket: raw, ...clientTls });
  c['applyKeepalive before connect() (explicit wins)'] = applyKeepalive(new net.Socket(), { keepalivetime: 5000, keepaliveinterval: 5000 }).connect(port.plain, HOST);
  c['applyKeepalive while connecting (explicit wins)'] = applyKeepalive(net.connect(port.plain, HOST), { keepalivetime: 6000, keepaliveinterval: 6000 });
  c['filter returns false'] = net.connect(port.skipped, HOST);
  c['filter throws (warning, socket works)'] = net.connect(port.throwing, HOST);
  c['filter throws, again (one warning)'] = net.connect(port.throwing, HOST);
  await Promise.all(Object.values(c).map((socket) => once(socket, socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect')));
  const late = net.connect(port.plain, HOST);
  await once(late, 'connect');
  c['applyKeepalive after connect (explicit wins)'] = applyKeepalive(late, { keepalivetime: 7000, keepaliveinterval: 7000 });
  const driver = net.connect(port.plain, HOST);
  await once(driver, 'connect');
  driver.setKeepAlive(true, 60_000);
  c["a driver's setKeepAlive(true, 60000) afterwards (sticky)"] = driver;

  const reused = new net.Socket();
  reused.connect(port.plain, HOST);
  await once(reused, 'connect');
  reused.destroy();
  await once(reused, 'close');
  reused.connect(port.plain, HOST);
  await once(reused, 'connect');
  c['the same net.Socket connected again after close'] = reused;

  const agentSocket = (mod, p, options = {}) =>
    new Promise((resolve, reject) => {
      const agent = new mod.Agent({ keepAlive: true });
      const req = mod.get({ host: HOST, port: p, agent, ...options }, (res) => {
        res.resume();
        res.on('end', () => resolve(req.socket));
      });
      req.on('error', reject);
    });
  c['http.get (http.Agent keepAlive)'] = await agentSocket(http, port.web);
  c['https.get (https.Agent keepAlive)'] = await agentSocket(https, port.secureWeb, clientTls);
  const session = http2.connect(`https://localhost:${port.h2}`, { ...clientTls, host: HOST, lookup: (h, o, cb) => (o && o.all ? cb(null, [{ address: HOST, family: 4 }]) : cb(null, HOST, 4)) });
  session.on('error', () => {});
  await new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/' });
    req.on('error', reject);
    req.resume();
    req.on('end', resolve);
    req.end();
  });
  c['http2.connect'] = session.socket;
  let fetched = 'no global fetch';
  if (typeof fetch === 'function') {
    const res = await fetch(`http://${HOST}:${port.web}/`);
    fetched = await res.text();
  }

  const unixClient = net.connect(unixPath);
  await once(unixClient, 'connect');
  unixClient.write('ping');
  const echoed = String(await once(unixClient, 'data'));

  const connections = Object.fromEntries(Object.entries(c).map(([name, socket]) => [name, ports(socket)]));
  await observe({ pid: process.pid, port, connections, filtered, warnings, rejected, unix: echoed, fetched, inListener });

  // null stops the default for connections made afterwards; the ones it configured keep their settings.
  setDefaultKeepalive(null);
  const after = net.connect(port.plain, HOST);
  await once(after, 'connect');
  const tlsAfter = tls.connect({ port: port.secure, host: HOST, ...clientTls });
  await once(tlsAfter, 'secureConnect');
  const stillWorks = await new Promise((resolve) => {
    const socket = c['filter throws (warning, socket works)'];
    socket.write('x', (error) => resolve(!error && !socket.destroyed));
  });
  await observe({
    connections: { 'net.connect after setDefaultKeepalive(null)': ports(after), 'tls.connect after setDefaultKeepalive(null)': ports(tlsAfter), 'net.connect (configured before null)': ports(c['net.connect']) },
    stillWorks,
  });

  // Without a filter the default takes a server over at its first connection, as applyKeepalive(server) would:
  // its later connections hold the settings before its `connection` listeners run, a new default reaches
  // them, null hands the server back (its listening socket too), and an explicit applyKeepalive(server) wins.
  const inConnection = {};
  const seen = (name) => (socket) => {
    socket.on('error', () => {});
    inConnection[name] = getKeepalive(socket).keepalivetime;
  };
  const adopted = net.createServer(seen('adopted'));
  const secureAdopted = tls.createServer({ key, cert }, (socket) => socket.on('error', () => {}));
  const explicitServer = net.createServer((socket) => socket.on('error', () => {}));
  const burstServer = net.createServer((socket) => socket.on('error', () => {}));
  const relisten = net.createServer((socket) => socket.on('error', () => {}));
  const adoptedPort = {
    adopted: await listen(adopted),
    secureAdopted: await listen(secureAdopted),
    explicitServer: await listen(explicitServer),
    burstServer: await listen(burstServer),
    relisten: await listen(relisten),
  };
  const connectTo = async (p, secure) => {
    const socket = secure ? tls.connect({ port: p, host: HOST, ...clientTls }) : net.connect(p, HOST);
    await once(socket, secure ? 'secureConnect' : 'connect');
    await new Promise((resolve) => setTimeout(resolve, 20)); // the server side has emitted it
    return socket;
  };
  const d = {};
  const expectOf = {};
  const add = (name, socket, expected) => {
    d[name] = socket;
    expectOf[name] = expected;
  };
  /** Closes the re-listen server (once its one connection, `name`, is gone) and has it listen again. */
  const relistenDropping = async (name) => {
    const closed = new Promise((resolve) => relisten.close(resolve));
    d[name].destroy();
    delete d[name];
    delete expectOf[name];
    await closed;
    adoptedPort.relisten = await listen(relisten);
  };
  setDefaultKeepalive(OPTIONS);
  for (let i = 1; i <= 3; i++) add(`adopted server, connection ${i}`, await connectTo(adoptedPort.adopted), 'default');
  for (let i = 1; i <= 2; i++) add(`adopted TLS server, connection ${i}`, await connectTo(adoptedPort.secureAdopted, true), 'default');
  // 20 at once at a server not yet taken over: those queued behind the first are taken care of too.
  const burst = Array.from({ length: 20 }, () => net.connect(adoptedPort.burstServer, HOST));
  await Promise.all(burst.map((socket) => once(socket, 'connect')));
  await new Promise((resolve) => setTimeout(resolve, 50));
  burst.forEach((socket, i) => add(`burst of 20, connection ${i + 1}`, socket, 'default'));
  add('explicit server, first connection (default)', await connectTo(adoptedPort.explicitServer), 'default');
  applyKeepalive(explicitServer, EXPLICIT_SERVER);
  add('explicit server after applyKeepalive(server)', await connectTo(adoptedPort.explicitServer), 'explicit');
  add('re-listen server, before close', await connectTo(adoptedPort.relisten), 'default');

  setDefaultKeepalive(SECOND);
  add('adopted server after a new default', await connectTo(adoptedPort.adopted), 'second');
  add('adopted TLS server after a new default', await connectTo(adoptedPort.secureAdopted, true), 'second');
  const inListenerSecond = inConnection.adopted;
  await relistenDropping('re-listen server, before close');
  add('re-listen server, listening again under the new default', await connectTo(adoptedPort.relisten), 'second');

  setDefaultKeepalive(null);
  add('adopted server after null', await connectTo(adoptedPort.adopted), 'untouched');
  add('adopted TLS server after null', await connectTo(adoptedPort.secureAdopted, true), 'untouched');
  add('burst server after null', await connectTo(adoptedPort.burstServer), 'untouched');
  add('explicit server after null (explicit stays)', await connectTo(adoptedPort.explicitServer), 'explicit');
  await relistenDropping('re-listen server, listening again under the new default');
  add('re-listen server, listening again after null', await connectTo(adoptedPort.relisten), 'untouched');

  // A default set again takes the servers it handed back over again.
  setDefaultKeepalive(OPTIONS);
  for (let i = 1; i <= 3; i++) add(`adopted server, default set again, connection ${i}`, await connectTo(adoptedPort.adopted), 'default');
  add('adopted TLS server, default set again', await connectTo(adoptedPort.secureAdopted, true), 'default');
  add('re-listen server, default set again', await connectTo(adoptedPort.relisten), 'default');

  await observe({
    connections: Object.fromEntries(Object.entries(d).map(([name, socket]) => [name, ports(socket)])),
    expected: expectOf,
    inListener: { second: inListenerSecond, afterNull: inConnection.adopted },
  });
  process.exit(0);
}

main().catch((error) => {
  send({ ev: 'failed', error: String((error && error.stack) || error) });
  process.exit(1);
});
