'use strict';
// A cluster for test/servers.test.ts. The primary forks one worker per entry of SETTINGS (a JSON array; null
// = the worker does not call applyKeepalive), with scheduling POLICY ('rr' or 'none'), all listening on
// LISTEN (a port on 127.0.0.1, or a Unix path). Each worker keeps every connection it accepts open, echoes
// what it reads, and reports { worker, pid, fd } through the primary to the test (IPC), plus its warnings and
// any socket error or close. The test ends the primary with 'exit'.
const cluster = require('node:cluster');
const net = require('node:net');
const { applyKeepalive, getKeepalive } = require(process.env.DIST);

const settings = JSON.parse(process.env.SETTINGS);

if (cluster.isPrimary) {
  cluster.schedulingPolicy = process.env.POLICY === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  let listening = 0;
  const workers = settings.map((_, index) => cluster.fork({ WORKER_INDEX: String(index) }));
  for (const worker of workers) {
    worker.on('message', (message) => {
      if (message.listening && ++listening === workers.length) process.send({ ready: true });
      else if (!message.listening) process.send(message);
    });
  }
  process.on('message', (message) => {
    if (message === 'exit') {
      for (const worker of workers) worker.process.kill('SIGKILL');
      process.exit(0);
    }
  });
  process.on('disconnect', () => {
    for (const worker of workers) worker.process.kill('SIGKILL');
    process.exit(0);
  });
} else {
  const index = Number(process.env.WORKER_INDEX);
  const open = [];
  process.on('warning', (warning) => process.send({ worker: index, warning: { code: warning.code, message: warning.message } }));
  const server = net.createServer((socket) => {
    open.push(socket);
    socket.on('error', (error) => process.send({ worker: index, socketError: error.code || error.message }));
    socket.on('data', (data) => socket.write(data));
    const handle = socket._handle;
    process.send({ worker: index, pid: process.pid, fd: handle && typeof handle.fd === 'number' ? handle.fd : -1, destroyed: socket.destroyed });
  });
  server.on('error', (error) => process.send({ worker: index, serverError: error.code || error.message }));
  if (settings[index]) applyKeepalive(server, settings[index]);
  const listen = process.env.LISTEN;
  if (/^\d+$/.test(listen)) server.listen(Number(listen), '127.0.0.1');
  else server.listen(listen);
  server.on('listening', () => {
    // What getKeepalive(server) says here: the shared listening socket (SCHED_NONE), or that there is none (round-robin).
    let serverRead;
    try {
      serverRead = `onoff:${getKeepalive(server).onoff}`;
    } catch (error) {
      serverRead = error.code;
    }
    process.send({ worker: index, serverRead });
    process.send({ listening: true });
  });
}
