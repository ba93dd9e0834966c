'use strict';

// The contract of tcp-keepalive, once: every case as data (a target, what is done to it, what the kernel must then
// hold or which error code comes back), and `runContract`, which turns the cases into tests for whichever runner
// loads this file, the way serialport's bindings-cpp runs one `testBinding(name, Binding)` against each binding.
// Plain CommonJS with only node: builtins, so Node 20-26, node.exe under Wine, arm64 Node, Bun and Deno load it
// as it is. The runners (test/contract.test.ts, test/portable/contract.js, test/runtimes/contract.mjs) differ only
// in how they register a test and how they read the kernel back. docs/contract-cases.md maps the cases.

const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { Duplex } = require('node:stream');
const tls = require('node:tls');

/** The options most cases apply, and what Linux then holds (TCP_KEEPIDLE/INTVL in s, TCP_USER_TIMEOUT in ms). */
const OPTIONS = Object.freeze({ onoff: true, keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 3, usertimeout: 6000 });
const IN_KERNEL = Object.freeze({ so_keepalive: 1, tcp_keepidle: 3, tcp_keepintvl: 1, tcp_keepcnt: 3, tcp_user_timeout: 6000 });

/**
 * What each platform does with the options, as the tests see it. `usertimeoutUnit`: the ms the OS keeps a
 * usertimeout in (seconds but on Linux). `secondsEitherWay`: real Windows keeps ms and reads whole seconds back.
 * `unsupported`: options and calls the platform refuses with a coded error (Wine 10: no TCP_MAXRT, no SIO_TCP_INFO).
 * Wine 10 also rounds SIO_KEEPALIVE_VALS' ms to the nearest second (`secondsEitherWay`).
 */
const PLATFORMS = {
  linux: { usertimeoutUnit: 1, secondsEitherWay: false, unsupported: [] },
  darwin: { usertimeoutUnit: 1000, secondsEitherWay: false, unsupported: [] },
  win32: { usertimeoutUnit: 1000, secondsEitherWay: true, unsupported: [] },
  wine: { usertimeoutUnit: 1000, secondsEitherWay: true, unsupported: ['usertimeout', 'getTcpInfo'] },
};

/** getKeepalive's answer in the kernel's own names and units, so every read-back compares the same way. */
function viewOf(values) {
  return {
    so_keepalive: values.onoff ? 1 : 0,
    tcp_keepidle: values.keepalivetime === undefined ? undefined : values.keepalivetime / 1000,
    tcp_keepintvl: values.keepaliveinterval === undefined ? undefined : values.keepaliveinterval / 1000,
    tcp_keepcnt: values.keepalivecount,
    tcp_user_timeout: values.usertimeout,
  };
}

/**
 * What the kernel must hold after `options`, given `fresh` (what a new socket holds): times rounded up to whole
 * seconds, an omitted keepalivecount or usertimeout is the new socket's (Linux 9 and 0), and onoff false is
 * keepalive off with every other field at the new socket's.
 */
function expectedView(options, fresh, platform) {
  if (options.onoff === false || options.onoff === 0) return { ...fresh, so_keepalive: 0 };
  const unit = PLATFORMS[platform].usertimeoutUnit;
  return {
    so_keepalive: 1,
    tcp_keepidle: Math.ceil(options.keepalivetime / 1000),
    tcp_keepintvl: Math.ceil(options.keepaliveinterval / 1000),
    tcp_keepcnt: options.keepalivecount === undefined ? fresh.tcp_keepcnt : options.keepalivecount,
    tcp_user_timeout: options.usertimeout === undefined ? fresh.tcp_user_timeout : Math.ceil(options.usertimeout / unit) * unit,
  };
}

/** The fields where `got` differs from `want`, as text; a field `want` leaves undefined is not compared. */
function differences(got, want, platform, exact = platform === 'linux') {
  const out = [];
  for (const [field, value] of Object.entries(want)) {
    if (value === undefined) continue;
    const seen = got[field];
    if (seen === undefined && !exact) continue; // a field this platform cannot read back
    const seconds = field === 'tcp_keepidle' || field === 'tcp_keepintvl';
    if (seen === value || (seconds && PLATFORMS[platform].secondsEitherWay && Math.abs(seen - value) <= 1)) continue;
    out.push(`${field} ${seen}, expected ${value}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The cases. target: what is built (see TARGETS); steps: what is done to it, in order (['apply', options],
// ['apply-peer', options], ['setKeepAlive', enable, ms], ['getKeepalive'], ['getTcpInfo'], ['destroy'], ['connect']);
// then: steps on each observed socket (a server's accepted ones); expect:
//   { options }    the kernel holds what these options give (expectedView), read back through every observer
//   { kernel }     the kernel holds at least these fields (what Node alone does, not ours)
//   { code, type } the last step throws this code (TypeError/RangeError/Error), and the socket holds what it held
//   { event }      the socket emits `error` with this code and is destroyed before any user `connect` listener
//   { none: true } the last step returns without an error
// only: the platforms it belongs to ('linux', 'darwin', 'win32' = Windows or Wine, 'wine'); everywhere if absent.
// about: 'usertimeout' for the cases that test it; elsewhere a platform that refuses usertimeout runs without it.

const OFF = { onoff: false };
const NODE_ALONE = { kernel: { so_keepalive: 1, tcp_keepidle: 60 } };
const SO_KEEPALIVE_OFF = { kernel: { so_keepalive: 0 } }; // Node's setKeepAlive(false): SO_KEEPALIVE alone

const apply = (options) => ['apply', options];
const sticky = (options) => [apply(options), ['setKeepAlive', true, 60000]];

const ROUNDING = [[1500, 2], [200, 1], [1, 1], [1000, 1], [1001, 2], [4500, 5], [32767000, 32767]];

const KERNEL_CASES = [
  { group: 'client socket', name: 'a connected net.Socket: every option, and getKeepalive reads the same back', target: 'client', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'client socket', name: 'a new socket holds keepalive off', target: 'client', steps: [], expect: { options: OFF } },
  { group: 'keepalivecount', name: 'a connected net.Socket without count or usertimeout: the new socket\'s for those', target: 'client', steps: [apply({ keepalivetime: 7000, keepaliveinterval: 2000 })], expect: { options: { keepalivetime: 7000, keepaliveinterval: 2000 } } },
  ...ROUNDING.map(([ms, s]) => ({
    group: 'client socket',
    name: `rounds ${ms} ms up to ${s} s`,
    target: 'client',
    steps: [apply({ keepalivetime: ms, keepaliveinterval: ms })],
    expect: { options: { keepalivetime: ms, keepaliveinterval: ms } },
    only: ms === 32767000 ? ['linux', 'darwin', 'wine'] : undefined, // Windows keeps ms: 32767000 is not rounded there
  })),
  { group: 'keepalivecount', name: 'an absent keepalivecount or usertimeout is what a new socket holds, whatever this one held before', target: 'client', steps: [apply(OPTIONS), ['setKeepAlive', true, 60000], apply({ keepalivetime: 10000, keepaliveinterval: 2000 })], expect: { options: { keepalivetime: 10000, keepaliveinterval: 2000 } } },
  // deadAfter 10 s maps to 5 s idle and 5 probes 1 s apart, with usertimeout 9.5 s on Linux (rounded up to 10 s
  // where the OS keeps seconds); where the OS has no usertimeout (Wine) it is refused, never a weaker bound.
  { group: 'deadAfter', name: 'deadAfter 10 s on a connected socket: the mapped idle, interval, count and usertimeout', target: 'client', steps: [apply({ deadAfter: 10000 })], expect: { options: { keepalivetime: 5000, keepaliveinterval: 1000, keepalivecount: 5, usertimeout: 9500 } }, about: 'usertimeout' },
  { group: 'deadAfter', name: 'deadAfter 10 s on a server: every accepted socket', target: 'server', steps: [apply({ deadAfter: 10000 })], expect: { options: { keepalivetime: 5000, keepaliveinterval: 1000, keepalivecount: 5, usertimeout: 9500 } }, about: 'usertimeout' },
  { group: 'usertimeout', name: 'usertimeout 0 restores the system default', target: 'client', steps: [apply(OPTIONS), apply({ ...OPTIONS, usertimeout: 0 })], expect: { options: { ...OPTIONS, usertimeout: 0 } }, about: 'usertimeout' },
  { group: 'usertimeout', name: 'usertimeout alone, with a count: held by the OS', target: 'client', steps: [apply({ keepalivetime: 7000, keepaliveinterval: 1000, keepalivecount: 4, usertimeout: 4500 })], expect: { options: { keepalivetime: 7000, keepaliveinterval: 1000, keepalivecount: 4, usertimeout: 4500 } }, about: 'usertimeout' },
  { group: 'client socket', name: 'onoff false turns keepalive off, every other field at what a new socket holds (other fields ignored)', target: 'client', steps: [apply(OPTIONS), apply({ onoff: false, keepalivetime: 'ignored' })], expect: { options: OFF } },
  { group: 'client socket', name: 'onoff 1 turns it on again, onoff 0 off', target: 'client', steps: [apply(OPTIONS), apply({ onoff: false }), apply({ ...OPTIONS, onoff: 1 }), apply({ onoff: 0 })], expect: { options: OFF } },
  { group: 'client socket', name: 'onoff 1 turns it on', target: 'client', steps: [apply({ onoff: false }), apply({ ...OPTIONS, onoff: 1 })], expect: { options: OPTIONS } },
  { group: 'client socket', name: 'the accepted side of a connection', target: 'accepted', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'client socket', name: 'a client\'s settings stay off its peer', target: 'accepted', steps: [['apply-peer', OPTIONS]], expect: { options: OFF } },
  { group: 'client socket', name: 'an IPv6 loopback client (::1)', target: 'client-ipv6', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },

  { group: 'still connecting', name: 'still connecting (by IP): in force before the user connect listeners run', target: 'connecting', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'still connecting', name: 'still connecting (a hostname still resolving)', target: 'resolving', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'still connecting', name: 'a new net.Socket connected later, the user connect listener added first', target: 'unconnected', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'still connecting', name: 'applying twice while connecting: the last settings', target: 'connecting', steps: [apply(OPTIONS), apply({ ...OPTIONS, keepalivetime: 7000 })], expect: { options: { ...OPTIONS, keepalivetime: 7000 } } },
  { group: 'still connecting', name: 'setKeepAlive(false) before connect is honoured', target: 'connecting', steps: [apply(OPTIONS), ['setKeepAlive', false]], expect: SO_KEEPALIVE_OFF },

  { group: 'TLS', name: 'a tls.TLSSocket, connected: set on its TCP socket', target: 'tls-client', steps: [apply({ keepalivetime: 6000, keepaliveinterval: 2000, keepalivecount: 4 })], expect: { options: { keepalivetime: 6000, keepaliveinterval: 2000, keepalivecount: 4 } } },
  { group: 'TLS', name: 'a tls.TLSSocket still handshaking', target: 'tls-connecting', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },

  { group: 'server', name: 'net.Server applied before listen: every accepted socket, before the connection listeners', target: 'server', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'server', name: 'net.Server applied while listening', target: 'server-listening', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'server', name: 'net.Server: three connections, each accepted socket', target: 'server-3', steps: [apply({ keepalivetime: 9000, keepaliveinterval: 1000, keepalivecount: 5 })], expect: { options: { keepalivetime: 9000, keepaliveinterval: 1000, keepalivecount: 5 } } },
  { group: 'usertimeout', name: 'net.Server with usertimeout', target: 'server', steps: [apply({ keepalivetime: 9000, keepaliveinterval: 1000, keepalivecount: 5, usertimeout: 6000 })], expect: { options: { keepalivetime: 9000, keepaliveinterval: 1000, keepalivecount: 5, usertimeout: 6000 } }, about: 'usertimeout' },
  { group: 'server', name: 'a server with Node\'s own keepAlive option (Node\'s call on the accepted handle comes first): ours', target: 'server-node-keepalive', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'server', name: 'applying to a server again changes later connections', target: 'server', steps: [apply(OPTIONS), apply({ ...OPTIONS, keepalivecount: 5 })], expect: { options: { ...OPTIONS, keepalivecount: 5 } } },
  { group: 'server', name: 'a dual-stack server on :: and an IPv4 client (::ffff:127.0.0.1)', target: 'server-dual-stack', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'server', name: 'a server on ::1', target: 'server-ipv6', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'server', name: 'http.Server: the socket a request arrived on', target: 'http-server', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'TLS', name: 'https.Server: the TLS socket a request arrived on', target: 'https-server', steps: [apply(OPTIONS)], expect: { options: OPTIONS } },
  { group: 'TLS', name: 'tls.Server: every accepted TLSSocket', target: 'tls-server', steps: [apply({ keepalivetime: 11000, keepaliveinterval: 1000 })], expect: { options: { keepalivetime: 11000, keepaliveinterval: 1000 } } },

  { group: 'sticky', name: 'sticky: setKeepAlive(true, 60000) by other code keeps our idle time, interval and count', target: 'client', steps: [...sticky(OPTIONS), ['setKeepAlive', true, 60000]], expect: { options: OPTIONS } },
  { group: 'sticky', name: 'sticky: setKeepAlive(false) turns keepalive off', target: 'client', steps: [apply(OPTIONS), ['setKeepAlive', false]], expect: SO_KEEPALIVE_OFF },
  { group: 'sticky', name: 'sticky: setKeepAlive(true) after setKeepAlive(false) brings ours back', target: 'client', steps: [apply(OPTIONS), ['setKeepAlive', false], ['setKeepAlive', true, 5000]], expect: { options: OPTIONS } },
  { group: 'sticky', name: 'sticky: setKeepAlive(true) after setKeepAlive(false) before connect brings ours back', target: 'connecting', steps: [apply(OPTIONS), ['setKeepAlive', false], ['connect'], ['setKeepAlive', true, 60000]], expect: { options: OPTIONS } },
  { group: 'sticky', name: 'sticky: an accepted TLSSocket of a tls.Server', target: 'tls-server', steps: [apply(OPTIONS)], then: [['setKeepAlive', true, 90000]], expect: { options: OPTIONS } },
  { group: 'sticky', name: 'sticky: a client TLSSocket', target: 'tls-client', steps: sticky(OPTIONS), expect: { options: OPTIONS } },
  { group: 'sticky', name: 'Node\'s own setKeepAlive(true, 60000), without us', target: 'client', steps: [['setKeepAlive', true, 60000]], expect: NODE_ALONE },
  { group: 'sticky', name: 'after onoff false by us, setKeepAlive(true, 60000) behaves as Node alone would', target: 'client', steps: [apply(OPTIONS), apply(OFF), ['setKeepAlive', true, 60000]], expect: NODE_ALONE },

  { group: 'setDefaultKeepalive', name: 'a net.connect client gets the default', target: 'default-connect', steps: [], defaults: OPTIONS, expect: { options: OPTIONS } },
  { group: 'setDefaultKeepalive', name: 'a new net.Socket().connect() client gets the default', target: 'default-socket', steps: [], defaults: OPTIONS, expect: { options: OPTIONS } },
];

/** Bad options: [name, options, code, what the message must say]. Applied to a connected socket, which must keep what it held. */
const BAD_OPTIONS = [
  ['options missing', undefined, 'ERR_INVALID_ARG_TYPE', /"options"/],
  ['options null', null, 'ERR_INVALID_ARG_TYPE', /"options"/],
  ['options a number', 5, 'ERR_INVALID_ARG_TYPE', /"options"/],
  ['options an array', [], 'ERR_INVALID_ARG_TYPE', /"options"/],
  ['a string time', { keepalivetime: '3000', keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivetime/],
  ['keepalivetime missing', { keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivetime.*required/],
  ['keepaliveinterval missing', { keepalivetime: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.keepaliveinterval/],
  ['onoff a string', { onoff: 'yes', keepalivetime: 1000, keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.onoff/],
  ['onoff 2', { onoff: 2, keepalivetime: 1000, keepaliveinterval: 1000 }, 'ERR_INVALID_ARG_TYPE', /options\.onoff/],
  ['a bigint count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: BigInt(3) }, 'ERR_INVALID_ARG_TYPE', /options\.keepalivecount/],
  ['an unknown option', { keepalivetime: 1000, keepaliveinterval: 1000, keepAliveCount: 3 }, 'ERR_INVALID_ARG_VALUE', /options\.keepAliveCount/],
  ['NaN', { keepalivetime: NaN, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
  ['Infinity', { keepalivetime: 1000, keepaliveinterval: Infinity }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval/],
  ['-Infinity', { keepalivetime: -Infinity, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
  ['zero time', { keepalivetime: 0, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivetime/],
  ['negative interval', { keepalivetime: 1000, keepaliveinterval: -1 }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval/],
  ['fractional ms', { keepalivetime: 1000.5, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /integer/],
  ['fractional count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 2.5 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount/],
  ['zero count', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 0 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount/],
  ['negative usertimeout', { keepalivetime: 1000, keepaliveinterval: 1000, usertimeout: -5 }, 'ERR_OUT_OF_RANGE', /options\.usertimeout/],
  ['idle above 32767 s', { keepalivetime: 32767001, keepaliveinterval: 1000 }, 'ERR_OUT_OF_RANGE', /32767 s on linux/, ['linux']],
  ['interval above 32767 s', { keepalivetime: 1000, keepaliveinterval: 40000000 }, 'ERR_OUT_OF_RANGE', /options\.keepaliveinterval.*32767/, ['linux']],
  ['count above 127', { keepalivetime: 1000, keepaliveinterval: 1000, keepalivecount: 128 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount.*<= 127/, ['linux']],
  ['count 1000', { keepalivetime: 3000, keepaliveinterval: 1000, keepalivecount: 1000 }, 'ERR_OUT_OF_RANGE', /options\.keepalivecount/, ['linux', 'win32']],
];

/** Things that are not a target at all: applyKeepalive and getKeepalive throw ERR_INVALID_ARG_TYPE. */
const BAD_TARGETS = [
  ['a plain object', () => ({})],
  ['null', () => null],
  ['a string', () => '127.0.0.1:80'],
  ['a number (a descriptor)', () => 3],
  ['a Duplex stream', () => new Duplex()],
];

const ERROR_CASES = [
  ...BAD_OPTIONS.map(([name, options, code, message, only]) => ({ name: `bad options: ${name}`, target: 'client', steps: [apply(OPTIONS), apply(options)], expect: { code, type: code === 'ERR_OUT_OF_RANGE' ? 'RangeError' : 'TypeError', message }, only })),
  ...BAD_TARGETS.flatMap(([name, make]) => [
    { name: `not a target, ${name}: applyKeepalive`, target: make, steps: [apply(OPTIONS)], expect: { code: 'ERR_INVALID_ARG_TYPE', type: 'TypeError' } },
    { name: `not a target, ${name}: getKeepalive`, target: make, steps: [['getKeepalive']], expect: { code: 'ERR_INVALID_ARG_TYPE', type: 'TypeError' } },
  ]),
  { name: 'a rejected server call installs nothing', target: 'server-idle', steps: [apply({ keepalivetime: 0, keepaliveinterval: 1 })], expect: { code: 'ERR_OUT_OF_RANGE', type: 'RangeError' } },
  { name: 'getKeepalive on a server not listening', target: 'server-idle', steps: [['getKeepalive']], expect: { code: 'ERR_KEEPALIVE_NOT_CONNECTED' } },
  { name: 'getKeepalive on a listening server reads the listening socket', target: 'server-listening', steps: [apply(OPTIONS), ['getKeepalive']], expect: { none: true }, only: ['linux'] },
  { name: 'getKeepalive while connecting', target: 'connecting', steps: [['getKeepalive']], expect: { code: 'ERR_KEEPALIVE_NOT_CONNECTED' } },
  { name: 'getTcpInfo while connecting', target: 'connecting', steps: [['getTcpInfo']], expect: { code: 'ERR_KEEPALIVE_NOT_CONNECTED' } },
  { name: 'a destroyed socket: applyKeepalive after a first apply', target: 'client', steps: [apply(OPTIONS), ['destroy'], apply(OPTIONS)], expect: { code: 'ERR_SOCKET_CLOSED' } },
  { name: 'a destroyed socket: applyKeepalive, never applied before', target: 'accepted', steps: [['destroy'], apply(OPTIONS)], expect: { code: 'ERR_SOCKET_CLOSED' } },
  { name: 'a destroyed socket: getKeepalive', target: 'client', steps: [['destroy'], ['getKeepalive']], expect: { code: 'ERR_SOCKET_CLOSED' } },
  { name: 'a destroyed socket: getTcpInfo', target: 'client', steps: [['destroy'], ['getTcpInfo']], expect: { code: 'ERR_SOCKET_CLOSED' } },
  { name: 'a TLS socket over a stream that is not TCP', target: 'tls-over-duplex', steps: [apply(OPTIONS)], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain socket (a named pipe on Windows): applyKeepalive', target: 'pipe-client', steps: [apply(OPTIONS)], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain socket: getKeepalive', target: 'pipe-client', steps: [['getKeepalive']], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain socket: getTcpInfo', target: 'pipe-client', steps: [['getTcpInfo']], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain socket still connecting: refused at the call', target: 'pipe-connecting', steps: [apply(OPTIONS)], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain server: applyKeepalive', target: 'pipe-server', steps: [apply(OPTIONS)], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a Unix-domain server: getKeepalive', target: 'pipe-server', steps: [['getKeepalive']], expect: { code: 'ERR_KEEPALIVE_NOT_TCP' } },
  { name: 'a new net.Socket applied, then connected to a Unix path: destroyed with the error before the user connect listeners', target: 'pipe-unconnected', steps: [apply(OPTIONS)], expect: { event: 'ERR_KEEPALIVE_NOT_TCP' } },
];

const CASES = [...KERNEL_CASES, ...ERROR_CASES.map((kase) => ({ group: 'errors', ...kase }))];

// ---------------------------------------------------------------------------------------------------------------
// Targets: each builds its object in `ctx` (the run's sockets and servers, closed by ctx.close()) and returns
// { target, observed() }: `target` gets the steps; observed() (after them) gives the sockets whose kernel values
// are checked, with `peers`, the other ends, which must stay as they were.

function once(emitter, event) {
  return new Promise((resolve, reject) => {
    const onError = (error) => {
      emitter.removeListener(event, onEvent);
      reject(error);
    };
    const onEvent = (...args) => {
      emitter.removeListener('error', onError);
      resolve(args);
    };
    emitter.once(event, onEvent);
    if (event !== 'error') emitter.once('error', onError);
  });
}

function quiet(socket) {
  socket.on('error', () => {});
  return socket;
}

class Context {
  constructor(env) {
    this.env = env;
    this.open = [];
  }

  keep(thing) {
    this.open.push(thing);
    return thing;
  }

  async listen(server, host = '127.0.0.1', where = 0) {
    this.keep(server);
    if (!server.listening) {
      server.listen(where, host);
      await once(server, 'listening');
    }
    return server.address().port;
  }

  async server(make = () => net.createServer()) {
    const server = make();
    const port = await this.listen(server);
    return { server, port };
  }

  /** A connected client and the socket its server accepted for it. */
  async pair(host = '127.0.0.1') {
    const server = net.createServer();
    const accepted = new Promise((resolve) => server.once('connection', (socket) => resolve(this.keep(quiet(socket)))));
    const port = await this.listen(server, host);
    const client = this.keep(quiet(net.connect(port, host)));
    await once(client, 'connect');
    return { client, accepted: await accepted };
  }

  pipePath() {
    const name = `tcp-keepalive-contract-${process.pid}-${++Context.pipes}`;
    return process.platform === 'win32' ? `\\\\.\\pipe\\${name}` : path.join(this.env.tmpdir || os.tmpdir(), `${name}.sock`);
  }

  async pipeServer() {
    const where = this.pipePath();
    const server = this.keep(net.createServer((socket) => this.keep(quiet(socket))));
    server.listen(where);
    await once(server, 'listening');
    return { server, where };
  }

  close() {
    for (const thing of this.open.splice(0)) {
      if (typeof thing.destroy === 'function') thing.destroy();
      else if (thing.listening) thing.close();
    }
  }
}
Context.pipes = 0;

/**
 * A socket still connecting: the steps run now; observed() waits for `connect` and tells what the first user
 * `connect` listener saw. `start` (a socket not connecting yet): the user's listener is added first, the steps
 * run, then it connects.
 */
function connecting(ctx, socket, start) {
  quiet(ctx.keep(socket));
  let seen;
  let connected;
  const listen = () =>
    connected ||
    (connected = new Promise((resolve, reject) => {
      socket.once('connect', () => {
        try {
          seen = ctx.env.lib.getKeepalive(socket);
        } catch (error) {
          seen = error;
        }
        resolve();
      });
      socket.once('error', reject);
    }));
  if (start) listen();
  let started = false;
  return {
    target: socket,
    connect() {
      const done = listen();
      if (start && !started) {
        started = true;
        start();
      }
      return done;
    },
    async observed() {
      await this.connect();
      return { sockets: [socket], seenInListener: seen, listenersLeft: socket.listenerCount('connect') };
    },
  };
}

/** A server: the steps run on it; observed() connects `count` clients and gives the socket each request arrived on. */
function serving(ctx, make, { event = 'connection', listenFirst = false, host = '127.0.0.1', clientHost = host, count = 1, connect, mapped = false } = {}) {
  const server = make();
  ctx.keep(server);
  const arrived = [];
  const waiting = [];
  server.on(event, (arrival) => {
    const socket = event === 'request' ? arrival.socket : arrival;
    ctx.keep(quiet(socket));
    arrived.push(socket);
    for (const wake of waiting.splice(0)) wake();
  });
  const open = (port) => (connect ? connect(port, clientHost) : connected(ctx.keep(quiet(net.connect(port, clientHost)))));
  const listeners = () => ['connection', 'listening', event].map((name) => server.listenerCount(name)).join();
  const before = listeners();
  return {
    target: server,
    async before() {
      if (listenFirst) await ctx.listen(server, host);
    },
    async observed() {
      const port = await ctx.listen(server, host);
      const peers = [];
      for (let i = 0; i < count; i++) {
        const client = await open(port);
        peers.push(client);
        while (arrived.length <= i) await new Promise((resolve) => waiting.push(resolve));
      }
      assert(listeners() === before, `the server's connection/listening listeners went from ${before} to ${listeners()}: ours must be none`);
      if (mapped) assert(arrived[0].remoteAddress === '::ffff:127.0.0.1', `the accepted socket's remoteAddress is ${arrived[0].remoteAddress}`);
      return { sockets: arrived.slice(0, count), peers, server };
    },
  };
}

/** A client that sends one HTTP request over a TCP (or, `secure`, a TLS) connection and keeps it open. */
function httpClient(ctx, secure) {
  return async (port, host) => {
    const client = secure ? await tlsClient(ctx)(port, host) : await connected(ctx.keep(quiet(net.connect(port, host))));
    client.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    return client;
  };
}

function tlsClient(ctx) {
  return async (port, host) => {
    const client = ctx.keep(quiet(tls.connect({ port, host, rejectUnauthorized: false })));
    await once(client, 'secureConnect');
    return client;
  };
}

const answer = (req, res) => res.end('ok');

const TARGETS = {
  async client(ctx) {
    const { client, accepted } = await ctx.pair();
    return { target: client, observed: async () => ({ sockets: [client], peers: [accepted] }) };
  },
  async accepted(ctx) {
    const { client, accepted } = await ctx.pair();
    return { target: accepted, peer: client, observed: async () => ({ sockets: [accepted] }) };
  },
  async 'client-ipv6'(ctx) {
    const { client } = await ctx.pair('::1');
    return { target: client, observed: async () => ({ sockets: [client] }) };
  },
  async connecting(ctx) {
    const { port } = await ctx.server();
    return connecting(ctx, net.connect(port, '127.0.0.1'));
  },
  async resolving(ctx) {
    const { port } = await ctx.server();
    return connecting(ctx, net.connect({ port, host: 'localhost', family: 4 }));
  },
  async unconnected(ctx) {
    const { port } = await ctx.server();
    const socket = new net.Socket();
    return connecting(ctx, socket, () => socket.connect(port, '127.0.0.1'));
  },
  async 'tls-client'(ctx) {
    const { port } = await ctx.server(() => tls.createServer({ key: ctx.env.tlsKey, cert: ctx.env.tlsCert }, quiet));
    const client = await tlsClient(ctx)(port, '127.0.0.1');
    return { target: client, observed: async () => ({ sockets: [client] }) };
  },
  async 'tls-connecting'(ctx) {
    const { port } = await ctx.server(() => tls.createServer({ key: ctx.env.tlsKey, cert: ctx.env.tlsCert }, quiet));
    const client = quiet(ctx.keep(tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })));
    return { target: client, observed: async () => (await once(client, 'secureConnect'), { sockets: [client] }) };
  },
  server: (ctx) => serving(ctx, () => net.createServer()),
  'server-listening': (ctx) => serving(ctx, () => net.createServer(), { listenFirst: true }),
  'server-3': (ctx) => serving(ctx, () => net.createServer(), { count: 3 }),
  'server-node-keepalive': (ctx) => serving(ctx, () => net.createServer({ keepAlive: true, keepAliveInitialDelay: 60000 })),
  'server-dual-stack': (ctx) => serving(ctx, () => net.createServer(), { host: '::', clientHost: '127.0.0.1', mapped: true }),
  'server-ipv6': (ctx) => serving(ctx, () => net.createServer(), { host: '::1' }),
  'http-server': (ctx) => serving(ctx, () => http.createServer(answer), { event: 'request', connect: httpClient(ctx) }),
  'https-server': (ctx) => serving(ctx, () => https.createServer({ key: ctx.env.tlsKey, cert: ctx.env.tlsCert }, answer), { event: 'request', connect: httpClient(ctx, true) }),
  'tls-server': (ctx) => serving(ctx, () => tls.createServer({ key: ctx.env.tlsKey, cert: ctx.env.tlsCert }), { event: 'secureConnection', connect: tlsClient(ctx) }),
  'server-idle': (ctx) => ({ target: ctx.keep(net.createServer()) }),
  async 'default-connect'(ctx) {
    const { port } = await ctx.server();
    return { target: undefined, observed: async () => ({ sockets: [await connected(ctx.keep(quiet(net.connect(port, '127.0.0.1'))))] }) };
  },
  async 'default-socket'(ctx) {
    const { port } = await ctx.server();
    return { target: undefined, observed: async () => ({ sockets: [await connected(ctx.keep(quiet(new net.Socket().connect(port, '127.0.0.1'))))] }) };
  },
  'tls-over-duplex': (ctx) => ({ target: quiet(ctx.keep(tls.connect({ socket: new Duplex({ read() {}, write(c, e, cb) { cb(); } }), rejectUnauthorized: false }))) }),
  async 'pipe-client'(ctx) {
    const { where } = await ctx.pipeServer();
    const client = quiet(ctx.keep(net.connect(where)));
    await once(client, 'connect');
    return { target: client };
  },
  async 'pipe-connecting'(ctx) {
    const { where } = await ctx.pipeServer();
    return { target: quiet(ctx.keep(net.connect(where))) };
  },
  async 'pipe-server'(ctx) {
    const { server } = await ctx.pipeServer();
    return { target: server };
  },
  async 'pipe-unconnected'(ctx) {
    const { where } = await ctx.pipeServer();
    const socket = ctx.keep(new net.Socket());
    return { target: socket, connect: () => socket.connect(where) };
  },
};

async function connected(socket) {
  await once(socket, 'connect');
  return socket;
}

// ---------------------------------------------------------------------------------------------------------------
// The runner's side.

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function step(lib, subject, [op, ...args]) {
  if (op === 'apply') return lib.applyKeepalive(subject.target, args[0]);
  if (op === 'apply-peer') return lib.applyKeepalive(subject.peer, args[0]);
  if (op === 'setKeepAlive') return subject.target.setKeepAlive(...args);
  if (op === 'getKeepalive') return lib.getKeepalive(subject.target);
  if (op === 'getTcpInfo') return lib.getTcpInfo(subject.target);
  if (op === 'destroy') return subject.target.destroy();
  throw new Error(`unknown step ${op}`);
}

/**
 * The case as this platform runs it: without the options it refuses, unless the case is about them (then it
 * expects the coded error); a bad-options case keeps its last step, the options whose error it checks, as they are.
 * (Under Wine a server refuses usertimeout before it looks at what it listens on: a named-pipe server given
 * usertimeout answers ERR_KEEPALIVE_UNSUPPORTED, not ERR_KEEPALIVE_NOT_TCP.)
 */
function adapt(kase, platform) {
  const refused = PLATFORMS[platform].unsupported.filter((option) => option === 'usertimeout' && kase.about !== option);
  if (refused.length === 0) return kase;
  const strip = (options) => {
    if (!options || typeof options !== 'object' || Array.isArray(options)) return options;
    const kept = { ...options };
    for (const option of refused) delete kept[option];
    return kept;
  };
  const checked = kase.expect.message !== undefined ? kase.steps.length - 1 : -1;
  const steps = kase.steps.map(([op, ...args], i) => ((op === 'apply' || op === 'apply-peer') && i !== checked ? [op, strip(args[0])] : [op, ...args]));
  return { ...kase, steps, defaults: strip(kase.defaults), expect: kase.expect.options ? { options: strip(kase.expect.options) } : kase.expect };
}

/** The option this platform refuses with a coded error that a case is about, if any. */
function refusedBy(kase, platform) {
  const refused = PLATFORMS[platform].unsupported;
  // (deadAfter always sets a usertimeout, to bound data in flight)
  const asks = kase.steps.some(([op, options]) => op === 'apply' && options && (options.usertimeout > 0 || options.deadAfter !== undefined));
  return asks && refused.includes('usertimeout') ? 'usertimeout' : undefined;
}

/**
 * Registers every case for this runner. `env`:
 *   test(name, fn)   registers one test (vitest's `it`, the portable runner's own); fn returns a note
 *   lib              { applyKeepalive, getKeepalive, getTcpInfo, setDefaultKeepalive }
 *   platform         'linux', 'darwin', 'win32' or 'wine' (node.exe under Wine)
 *   tlsKey, tlsCert  for the TLS targets
 *   read(socket)     optional: the kernel's values through an observer independent of getKeepalive (viewOf's shape)
 *   observe(socket, want, what)  optional: more checks of one socket (ss's timer), or a record for a parent to check
 *   keepOpen         leave each case's sockets open (a parent process reads them after the run)
 *   skip             { [case name]: reason } cases this runner cannot run, each with its reason
 *   unsupported(note) told when a case passes only because the platform refuses an option with a coded error
 * Returns the names of the cases it registered.
 */
function runContract(env) {
  const cases = casesFor(env.platform);
  for (const kase of cases) {
    const reason = env.skip && env.skip[kase.name];
    env.test(kase.name, async () => {
      if (reason) return `not run here: ${reason}`;
      const ctx = new Context(env);
      try {
        return await runCase(env, ctx, kase);
      } finally {
        if (kase.defaults) env.lib.setDefaultKeepalive(null);
        if (!env.keepOpen) ctx.close();
      }
    }, reason);
  }
  return cases.map((kase) => kase.name);
}

/** The cases that belong to `platform`, as it runs them, each named `group: name`. */
function casesFor(platform) {
  const belongs = (kase) => !kase.only || kase.only.includes(platform) || (platform === 'wine' && kase.only.includes('win32'));
  return CASES.filter(belongs).map((kase) => ({ ...adapt(kase, platform), name: `${kase.group}: ${kase.name}` }));
}

async function freshView(env, ctx) {
  const { client, accepted } = await ctx.pair();
  const fresh = env.read ? await env.read(client) : viewOf(env.lib.getKeepalive(client));
  client.destroy();
  accepted.destroy();
  return fresh;
}

async function checkSocket(env, socket, want, what, exact) {
  assert(!socket.destroyed, `${what}: destroyed${socket.errored ? ` by ${socket.errored.code}` : ''}`);
  const notes = [];
  const byGetter = viewOf(env.lib.getKeepalive(socket));
  const getterDiff = differences(byGetter, want, env.platform, exact);
  assert(getterDiff.length === 0, `${what}: getKeepalive reads ${getterDiff.join(', ')}`);
  notes.push(`getKeepalive ${JSON.stringify(byGetter)}`);
  if (env.read) {
    const seen = await env.read(socket);
    const diff = differences(seen, want, env.platform, true);
    assert(diff.length === 0, `${what}: the kernel holds ${diff.join(', ')} (${JSON.stringify(seen)})`);
    notes.push(`kernel ${JSON.stringify(seen)}`);
  }
  if (env.observe) {
    const extra = await env.observe(socket, want, what);
    if (extra) notes.push(extra);
  }
  return `${what}: ${notes.join(', ')}`;
}

/** A case whose last step must throw `expect.code` (or, with `none`, must not throw); the target keeps what it held. */
async function runFailing(env, kase, subject, fresh) {
  const { lib, platform } = env;
  const { expect } = kase;
  const refused = expect.code ? undefined : refusedBy(kase, platform);
  const last = kase.steps.length - 1;
  const target = subject.target;
  const listeners = target instanceof net.Server ? target.listenerCount('connection') + target.listenerCount('listening') : undefined;
  let before;
  let thrown;
  for (let i = 0; i <= last && !thrown; i++) {
    if (i === last && target && target.remotePort && !target.destroyed) before = viewOf(lib.getKeepalive(target));
    try {
      step(lib, subject, kase.steps[i]);
    } catch (error) {
      if (i < last && !refused) throw error;
      thrown = error;
    }
  }
  if (expect.none) {
    assert(!thrown, `expected no error, got ${thrown && `${thrown.code} ${thrown.message}`}`);
    return 'no error';
  }
  const code = refused ? 'ERR_KEEPALIVE_UNSUPPORTED' : expect.code;
  assert(thrown, `expected ${code}, nothing was thrown`);
  assert(thrown.code === code, `expected ${code}, got ${thrown.code}: ${thrown.message}`);
  if (expect.type) assert(thrown.name === expect.type && thrown.constructor.name === expect.type, `expected a ${expect.type}, got a ${thrown.constructor.name}`);
  if (expect.message) assert(expect.message.test(thrown.message), `message ${JSON.stringify(thrown.message)} does not match ${expect.message}`);
  const notes = [`${thrown.code}${thrown.syscall ? ` (${thrown.syscall})` : ''}`];
  if (refused) {
    assert(!thrown.applied || thrown.applied.length === 0, `error.applied = ${JSON.stringify(thrown.applied)}`);
    env.unsupported?.(`${refused} -> ${thrown.code} (${thrown.syscall}, ${thrown.sysErrno}); nothing applied`);
  }
  if (before) {
    const diff = differences(viewOf(lib.getKeepalive(target)), before, platform, true);
    assert(diff.length === 0, `the refused call changed the socket: ${diff.join(', ')}`);
    notes.push('the socket holds what it held');
  }
  if (listeners !== undefined) {
    assert(target.listenerCount('connection') + target.listenerCount('listening') === listeners, 'a refused server call left listeners behind');
    if (refused) {
      const { sockets } = await subject.observed(); // refused at the call, nothing installed: served as without us
      notes.push(`the server still accepts, ${await checkSocket(env, sockets[0], expectedView(OFF, fresh, platform), 'accepted')}`);
    }
  }
  return notes.join('; ');
}

/** A socket applied before it connects to something that is not TCP: it fails with the error, destroyed before any user `connect` listener. */
async function runDeferredFailure(env, kase, subject) {
  step(env.lib, subject, kase.steps[0]);
  const sawDestroyed = new Promise((resolve) => subject.target.once('connect', () => resolve(subject.target.destroyed)));
  const failed = once(subject.target, 'error');
  subject.connect();
  const [error] = await failed;
  assert(error.code === kase.expect.event, `error ${error.code}, expected ${kase.expect.event}`);
  assert(subject.target.destroyed, 'the socket was not destroyed');
  const seen = await Promise.race([sawDestroyed, new Promise((resolve) => setTimeout(() => resolve('no listener ran'), 100))]);
  assert(seen !== false, 'a user connect listener ran on a live socket');
  return `${error.code}, destroyed`;
}

async function runCase(env, ctx, kase) {
  const { lib, platform, expect } = { ...env, expect: kase.expect };
  const fresh = expect.options || refusedBy(kase, platform) ? await freshView(env, ctx) : undefined;
  if (kase.defaults) lib.setDefaultKeepalive(kase.defaults);
  const subject = typeof kase.target === 'function' ? { target: kase.target() } : await TARGETS[kase.target](ctx);
  if (subject.before) await subject.before();
  if (expect.code || expect.none || refusedBy(kase, platform)) return runFailing(env, kase, subject, fresh);
  if (expect.event) return runDeferredFailure(env, kase, subject);

  for (const action of kase.steps) {
    if (action[0] === 'connect') await subject.connect();
    else step(lib, subject, action);
  }
  const { sockets, peers = [], seenInListener, listenersLeft } = await subject.observed();
  for (const action of kase.then || []) for (const socket of sockets) step(lib, { target: socket }, action);
  const want = expect.options ? expectedView(expect.options, fresh, platform) : expect.kernel;
  const exact = expect.options ? undefined : false;
  const notes = [];
  for (const [i, socket] of sockets.entries()) notes.push(await checkSocket(env, socket, want, sockets.length > 1 ? `socket ${i + 1}` : 'socket', exact));
  if (seenInListener !== undefined && !kase.steps.some(([op]) => op === 'connect')) {
    const diff = seenInListener instanceof Error ? [String(seenInListener)] : differences(viewOf(seenInListener), want, platform, false);
    assert(diff.length === 0, `the first user connect listener saw ${diff.join(', ')}`);
    assert(listenersLeft === 0, `${listenersLeft} connect listeners left on the socket`);
  }
  if (!kase.steps.some(([op]) => op === 'apply-peer')) {
    for (const peer of peers) assert(viewOf(lib.getKeepalive(peer)).so_keepalive === 0, 'the other end of the connection got keepalive too');
  }
  return notes.join('; ');
}

module.exports = { OPTIONS, IN_KERNEL, PLATFORMS, CASES, BAD_OPTIONS, casesFor, viewOf, expectedView, differences, runContract };
