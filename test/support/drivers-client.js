'use strict';
// One client scenario of the driver suite, run by drivers.test.ts inside the servers' namespace (servers.ts),
// under any Node version. argv[2] is JSON: { client, mode: 'default' | 'baseline', dist, options, hosts }.
// With mode 'default' the only keepalive code is the one line users write: setDefaultKeepalive(options).
//
// 1. Opens four clients (plain and TLS for the idle case, plain and TLS for the in-flight case), fills the
//    pools, then asks the test to observe every TCP socket of this process ({ ev: 'observe' } on stdout, a line
//    on stdin to go on); makes each driver reconnect on its own and asks again.
// 2. Pulls the cables: a call in flight (pg_sleep, SLEEP, BLPOP, a slow HTTP response, an unanswered WS
//    message) on two of them, and on the other two a call made right after the cut on an idle connection.
//    Prints when each call failed, or that it was still pending at the deadline, and exits.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const config = JSON.parse(process.argv[2]);
const { client, mode, dist, options, hosts, deadlineMs, cutRule } = config;
if (mode === 'default') require(dist).setDefaultKeepalive(options);

const ca = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'cert.pem'));
const tlsOptions = { ca, servername: 'localhost' };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const quiet = (promise) => promise.then(() => undefined, () => undefined);
const unique = `${client}-${mode}-${process.pid}`;

/** What the call did: failed (with its error) or succeeded, and when. */
function settle(promise) {
  return promise.then(
    () => ({ ok: true, t: now() }),
    (error) => ({ ok: false, t: now(), code: error && (error.code ?? error.cause?.code ?? error.name), message: String((error && error.message) || error).slice(0, 200) }),
  );
}

function httpCall(mod, agent, host, port, pathname) {
  return new Promise((resolve, reject) => {
    const req = mod.get({ host, port, path: pathname, agent, servername: 'localhost' }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
    });
    req.on('error', reject);
  });
}

/** Per client: open(host, tls), call / slow (a request in flight) / fill (every pooled connection) / reconnect / close. */
const adapters = {
  pg: () => {
    const pg = require('pg');
    return {
      open: async (host, tls) => {
        const pool = new pg.Pool({ host, port: 5432, user: 'postgres', database: 'postgres', max: 2, ssl: tls ? tlsOptions : false, application_name: unique, idleTimeoutMillis: 0 });
        pool.on('error', () => {});
        await pool.query('select 1');
        return pool;
      },
      call: (pool) => pool.query('select 1'),
      slow: (pool) => pool.query('select pg_sleep(30)'),
      fill: (pool) => Promise.all([pool.query('select pg_sleep(0.1)'), pool.query('select pg_sleep(0.1)')]),
      reconnect: async (pool) => {
        await quiet(pool.query('select pg_terminate_backend(pg_backend_pid())'));
        await Promise.all([pool.query('select pg_sleep(0.1)'), pool.query('select pg_sleep(0.1)')]);
      },
    };
  },
  postgres: () => {
    const postgres = require('postgres');
    return {
      open: async (host, tls) => {
        const sql = postgres({ host, port: 5432, user: 'postgres', database: 'postgres', max: 2, ssl: tls ? tlsOptions : false, onnotice: () => {}, connection: { application_name: unique } });
        await sql`select 1`;
        return sql;
      },
      call: (sql) => sql`select 1`,
      slow: (sql) => sql`select pg_sleep(30)`,
      fill: (sql) => Promise.all([sql`select pg_sleep(0.1)`, sql`select pg_sleep(0.1)`]),
      reconnect: async (sql) => {
        await quiet(sql`select pg_terminate_backend(pg_backend_pid())`);
        // postgres.js may fail a query queued behind the terminated one with the same error: once more.
        await sleep(100);
        await quiet(Promise.all([sql`select pg_sleep(0.1)`, sql`select pg_sleep(0.1)`]));
        await Promise.all([sql`select pg_sleep(0.1)`, sql`select pg_sleep(0.1)`]);
      },
    };
  },
  mysql2: () => {
    const mysql = require('mysql2/promise');
    return {
      open: async (host, tls) => {
        const pool = mysql.createPool({ host, port: 3306, user: 'test', connectionLimit: 2, ssl: tls ? { ca, rejectUnauthorized: false } : undefined });
        pool.pool.on('error', () => {});
        await pool.query('select 1');
        return pool;
      },
      call: (pool) => pool.query('select 1'),
      slow: (pool) => pool.query('select sleep(30)'),
      fill: (pool) => Promise.all([pool.query('select sleep(0.1)'), pool.query('select sleep(0.1)')]),
      reconnect: async (pool) => {
        await quiet(pool.query('kill connection_id()'));
        // Until the pool has dropped the killed connection (100 ms was not always enough on a loaded machine:
        // both queries then ran on the one left, and no new connection was opened).
        for (let i = 0; i < 100 && pool.pool._allConnections.length >= 2; i++) await sleep(20);
        await Promise.all([pool.query('select sleep(0.1)'), pool.query('select sleep(0.1)')]);
      },
    };
  },
  ioredis: () => {
    const Redis = require('ioredis');
    const ready = (redis) => (redis.status === 'ready' ? Promise.resolve() : new Promise((resolve) => redis.once('ready', resolve)));
    return {
      open: async (host, tls) => {
        // ioredis fails a call whose connection died only after maxRetriesPerRequest reconnect attempts
        // (default 20, each up to connectTimeout 10 s against a vanished host): 0 fails it at the first error.
        const redis = new Redis({ host, port: tls ? 6380 : 6379, tls: tls ? tlsOptions : undefined, maxRetriesPerRequest: 0, connectionName: unique });
        redis.on('error', () => {});
        await ready(redis);
        return redis;
      },
      call: (redis) => redis.ping(),
      slow: (redis) => redis.blpop(`never-${unique}`, 30),
      fill: (redis) => redis.ping(),
      reconnect: async (redis) => {
        const id = await redis.client('ID');
        await quiet(redis.client('KILL', 'ID', String(id), 'SKIPME', 'no'));
        await sleep(50);
        await ready(redis);
        await redis.ping();
      },
    };
  },
  redis: () => {
    const { createClient } = require('redis');
    const ready = (c) => (c.isReady ? Promise.resolve() : new Promise((resolve) => c.once('ready', resolve)));
    return {
      open: async (host, tls) => {
        const c = createClient({ socket: tls ? { host, port: 6380, tls: true, ...tlsOptions } : { host, port: 6379 }, name: unique });
        c.on('error', () => {});
        await c.connect();
        return c;
      },
      call: (c) => c.ping(),
      slow: (c) => c.blPop(`never-${unique}`, 30),
      fill: (c) => c.ping(),
      reconnect: async (c) => {
        const id = await c.clientId();
        await quiet(c.sendCommand(['CLIENT', 'KILL', 'ID', String(id), 'SKIPME', 'no']));
        await sleep(50);
        await ready(c);
        await c.ping();
      },
    };
  },
  undici: () => {
    const undici = require('undici');
    const get = async (pool, pathname) => {
      const { body } = await pool.request({ path: pathname, method: 'GET' });
      await body.text();
    };
    return {
      open: async (host, tls) => {
        const pool = new undici.Pool(`${tls ? 'https' : 'http'}://${host}:${tls ? 8443 : 8080}`, { connections: 2, connect: tls ? tlsOptions : undefined });
        await get(pool, '/');
        return pool;
      },
      call: (pool) => get(pool, '/'),
      slow: (pool) => get(pool, '/slow'),
      fill: (pool) => Promise.all([get(pool, '/delay'), get(pool, '/delay')]),
      reconnect: async (pool) => {
        await get(pool, '/close');
        await Promise.all([get(pool, '/delay'), get(pool, '/delay')]);
      },
    };
  },
  fetch: () => {
    // Node's own fetch (the undici bundled in Node, not the npm one). The fixture certificate names
    // localhost and 127.0.0.1, not the scenario's 127.1.x.y address, so TLS verification is off here.
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    process.removeAllListeners('warning');
    const get = async (base, pathname) => {
      const res = await fetch(`${base}${pathname}`);
      await res.text();
    };
    return {
      open: async (host, tls) => {
        const base = `${tls ? 'https' : 'http'}://${host}:${tls ? 8443 : 8080}`;
        await get(base, '/');
        return base;
      },
      call: (base) => get(base, '/'),
      slow: (base) => get(base, '/slow'),
      fill: (base) => Promise.all([get(base, '/delay'), get(base, '/delay')]),
      // Node's global pool keeps the slot of a closed connection and gives the next request to it: after a
      // reconnect, the call made after the cut opens a new connection, whose SYN keepalive cannot time out
      // (it fails at undici's 10 s connect timeout). So the idle calls go to pools that never reconnected.
      reconnectOnly: ['flight', 'flightTls'],
      reconnect: async (base) => {
        await get(base, '/close');
        await Promise.all([get(base, '/delay'), get(base, '/delay'), get(base, '/delay')]);
      },
    };
  },
  http: () => {
    const http = require('node:http');
    const https = require('node:https');
    return {
      open: async (host, tls) => {
        const mod = tls ? https : http;
        const agent = new mod.Agent({ keepAlive: true, maxSockets: 2, ...(tls ? tlsOptions : {}) });
        const c = { get: (pathname) => httpCall(mod, agent, host, tls ? 8443 : 8080, pathname) };
        await c.get('/');
        return c;
      },
      call: (c) => c.get('/'),
      slow: (c) => c.get('/slow'),
      fill: (c) => Promise.all([c.get('/delay'), c.get('/delay')]),
      reconnect: async (c) => {
        await c.get('/close');
        await Promise.all([c.get('/delay'), c.get('/delay')]);
      },
    };
  },
  ws: () => {
    const WebSocket = require('ws');
    const exchange = (ws, message) =>
      new Promise((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('not open'));
        const onMessage = () => done(resolve);
        const onClose = (code) => done(() => reject(Object.assign(new Error(`closed (${code}) ${ws.lastError ? ws.lastError.message : ''}`), { code: ws.lastError?.code ?? code })));
        const done = (then) => {
          ws.off('message', onMessage);
          ws.off('close', onClose);
          then();
        };
        ws.on('message', onMessage);
        ws.on('close', onClose);
        ws.send(message);
      });
    return {
      open: (host, tls) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://${host}:${tls ? 8443 : 8080}/`, tls ? tlsOptions : {});
          ws.on('error', (error) => (ws.lastError = error));
          ws.once('open', () => resolve(ws));
          ws.once('close', () => reject(ws.lastError ?? new Error('closed')));
        }),
      call: (ws) => exchange(ws, 'ping'),
      slow: (ws) => exchange(ws, 'slow'),
      fill: (ws) => exchange(ws, 'ping'),
      reconnect: undefined,
    };
  },
};

let resume = () => {};
readline.createInterface({ input: process.stdin }).on('line', () => resume());

/** Asks the test to read every TCP socket of this process with its observer, and waits until it did. */
function observe(phase) {
  return new Promise((resolve) => {
    resume = resolve;
    send({ ev: 'observe', phase });
  });
}

function cut(host) {
  execFileSync('nft', ['-f', '-'], { input: cutRule.replace('HOST', host) });
  return now();
}

const started = now();
let stage = 'start';
function setStage(next) {
  stage = next;
  send({ ev: 'stage', stage, t: Math.round(now() - started) });
}
process.on('exit', (code) => {
  if (stage !== 'done') send({ ev: 'failed', error: `exited (${code}) during ${stage}, with nothing left to wait for` });
});

async function main() {
  const adapter = adapters[client]();
  const clients = {};
  for (const [name, tls] of [['idle', false], ['idleTls', true], ['flight', false], ['flightTls', true]]) {
    setStage(`open ${name}`);
    clients[name] = await adapter.open(hosts[name], tls);
    setStage(`fill ${name}`);
    await adapter.fill(clients[name]);
  }
  setStage('observe pooled');
  await observe('pooled');
  if (adapter.reconnect) {
    for (const [name, c] of Object.entries(clients)) {
      if (adapter.reconnectOnly && !adapter.reconnectOnly.includes(name)) continue;
      setStage(`reconnect ${name}`);
      await adapter.reconnect(c);
    }
    setStage('observe reconnected');
    await observe('reconnected');
  }
  setStage('cut');

  const calls = {};
  for (const name of ['flight', 'flightTls']) {
    const sent = now();
    const result = settle(adapter.slow(clients[name]));
    calls[name] = { sent, result };
  }
  await sleep(500);
  for (const name of ['flight', 'flightTls']) calls[name].cut = cut(hosts[name]);
  for (const name of ['idle', 'idleTls']) {
    const cutAt = cut(hosts[name]);
    calls[name] = { cut: cutAt, sent: now(), result: settle(adapter.call(clients[name])) };
  }
  const pending = Symbol('pending');
  const deadline = sleep(deadlineMs).then(() => pending);
  const outcome = {};
  await Promise.all(
    Object.entries(calls).map(async ([name, call]) => {
      const settled = await Promise.race([call.result, deadline]);
      outcome[name] =
        settled === pending
          ? { pending: true, afterSentMs: deadlineMs }
          : { pending: false, ok: settled.ok, code: settled.code, message: settled.message, afterSentMs: settled.t - call.sent, afterCutMs: settled.t - call.cut };
    }),
  );
  setStage('done');
  send({ ev: 'result', outcome });
  process.exit(0);
}

main().catch((error) => {
  send({ ev: 'failed', error: String((error && error.stack) || error) });
  process.exit(1);
});
