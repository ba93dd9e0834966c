import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';

export const tlsKey = readFileSync(join(__dirname, '..', 'fixtures', 'key.pem'));
export const tlsCert = readFileSync(join(__dirname, '..', 'fixtures', 'cert.pem'));

const open: Array<net.Socket | net.Server> = [];

/** Remembers sockets and servers so `closeAll` can end them after each test. */
export function track<T extends net.Socket | net.Server>(thing: T): T {
  open.push(thing);
  return thing;
}

export async function closeAll(): Promise<void> {
  for (const thing of open.splice(0)) {
    if (thing instanceof net.Server) thing.close();
    else thing.destroy();
  }
}

export async function listening(server: net.Server, host = '127.0.0.1'): Promise<number> {
  track(server);
  if (!server.listening) {
    server.listen(0, host);
    await once(server, 'listening');
  }
  return (server.address() as net.AddressInfo).port;
}

export interface Pair {
  server: net.Server;
  client: net.Socket;
  accepted: net.Socket;
}

/** A server on 127.0.0.1 and one connected client, with the accepted socket. */
export async function connectedPair(): Promise<Pair> {
  const server = net.createServer();
  const port = await listening(server);
  const acceptedP = once(server, 'connection') as Promise<[net.Socket]>;
  const client = track(net.connect(port, '127.0.0.1'));
  await once(client, 'connect');
  const [accepted] = await acceptedP;
  track(accepted);
  return { server, client, accepted };
}
