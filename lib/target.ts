import { Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { invalidArgType } from './errors';

/** A socket as drivers type it (`Duplex`) is accepted; at run time it must be a `net.Socket` / `tls.TLSSocket` or a `net.Server`. */
export type KeepaliveTarget = Socket | Server | Duplex;

export function isSocket(target: unknown): target is Socket {
  return target instanceof Socket;
}

export function isServer(target: unknown): target is Server {
  return target instanceof Server;
}

export function notATarget(target: unknown): TypeError {
  return invalidArgType('target', 'an instance of net.Socket, tls.TLSSocket or net.Server', target);
}
