import { Server, Socket } from 'node:net';
import { invalidArgType } from './errors';

export type KeepaliveTarget = Socket | Server;

export function isSocket(target: unknown): target is Socket {
  return target instanceof Socket;
}

export function isServer(target: unknown): target is Server {
  return target instanceof Server;
}

export function notATarget(target: unknown): TypeError {
  return invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
}
