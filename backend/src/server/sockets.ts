import type { Server as HttpServer } from 'node:http';
import type { BrowserToServerEvents, Command, CommandReply, Limits, ServerToBrowserEvents, Untrusted } from '@dse/shared';
import { DseError, errorBody, PROTOCOL_VERSION } from '@dse/shared';
import type { Socket } from 'socket.io';
import { Server as IoServer } from 'socket.io';
import type { Cluster } from '../live/cluster';
import type { NodeToServerEvents, ServerToNodeEvents } from '../live/wire';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../live/wire';
import type { Commands } from './commands';
import type { RateLimiter } from './rate-limit';
import { refusalMessage } from './rate-limit';
import type { Security } from './security';
import type { EventStream } from './stream';
import * as v from './validate';

/** The largest Socket.IO frame a browser may send (its commands are much smaller: `Limits.bodyBytesMax`). */
export const BROWSER_FRAME_BYTES_MAX = 1024 * 1024;

/** Socket.IO connections of browsers (the default namespace) one address may hold open at once. */
export const BROWSER_CONNECTIONS_PER_ADDRESS = 32;

function isHealth(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && (raw as { type?: unknown }).type === 'health';
}

export interface SocketOptions {
  security: Security;
  /** Commands a second, per client address (HTTP and Socket.IO count apart). */
  limiter: RateLimiter;
  limits: Limits;
  commands: Commands;
  stream: EventStream;
  /** Serves the node processes' namespace. */
  cluster: Cluster;
}

/** A browser's connection: what it sends is checked (`validate.ts`) before it is believed. */
export type BrowserConnection = Socket<Untrusted<BrowserToServerEvents>, ServerToBrowserEvents>;

/**
 * A browser that says which protocol version it speaks (`auth: {protocol}` in its handshake) must speak
 * this server's: a page left open across an upgrade is refused with the reason, and reloads.
 */
export function protocolMismatch(auth: unknown): string | null {
  const protocol = typeof auth === 'object' && auth !== null ? (auth as { protocol?: unknown }).protocol : undefined;
  if (protocol === undefined || protocol === PROTOCOL_VERSION) return null;
  return `ProtocolMismatch: this page speaks protocol version ${JSON.stringify(protocol).slice(0, 20)} and the server ${PROTOCOL_VERSION}: reload the page`;
}

export interface Sockets {
  close(): Promise<void>;
}

/**
 * Socket.IO on the HTTP server, on two paths: browsers on `/socket.io` (commands, and the event
 * stream), node processes on `/node.io` (namespace `/node`, served by the cluster).
 */
export function attachSockets(http: HttpServer, o: SocketOptions): Sockets {
  const { security, limiter, limits, commands, stream, cluster } = o;
  const { allowRequest, authMiddleware } = security;
  // Browsers: commands are at most `bodyBytesMax`, so a frame of 1 MiB is plenty (and bounds what
  // the server parses before it checks a command's size).
  const io = new IoServer<Untrusted<BrowserToServerEvents>, ServerToBrowserEvents>(http, {
    maxHttpBufferSize: BROWSER_FRAME_BYTES_MAX,
    serveClient: false,
    allowRequest,
  });
  // Node processes, on a path of their own: their frames may carry a full checkpoint.
  const nodeIo = new IoServer<Untrusted<NodeToServerEvents>, ServerToNodeEvents>(http, {
    path: NODE_SOCKET_PATH,
    maxHttpBufferSize: 16 * 1024 * 1024,
    serveClient: false,
    allowRequest,
  });
  io.use(authMiddleware);
  io.use((socket, next) => {
    const mismatch = protocolMismatch(socket.handshake.auth);
    next(mismatch === null ? undefined : new Error(mismatch));
  });
  nodeIo.use((_socket, next) => next(new Error(`this path serves node processes only, on ${NODE_NAMESPACE}`)));
  const nodeNsp = nodeIo.of(NODE_NAMESPACE);
  nodeNsp.use(authMiddleware);
  cluster.attach(nodeNsp);

  // Browser connections per address (node processes use their own namespace and are not counted):
  // the command rate limit is per address, so that opening more connections does not buy more commands.
  const browsersByAddress = new Map<string, number>();
  io.on('connection', (socket) => {
    const address = socket.handshake.address;
    const open = browsersByAddress.get(address) ?? 0;
    if (open >= BROWSER_CONNECTIONS_PER_ADDRESS) {
      socket.emit('notice', { level: 'warning', message: `more than ${BROWSER_CONNECTIONS_PER_ADDRESS} connections from ${address}: this one is closed` });
      socket.disconnect(true);
      return;
    }
    browsersByAddress.set(address, open + 1);
    socket.on('disconnect', () => {
      const n = (browsersByAddress.get(address) ?? 1) - 1;
      if (n <= 0) browsersByAddress.delete(address);
      else browsersByAddress.set(address, n);
    });
    stream.subscribe(socket);
    socket.on('command', (raw, ack) => {
      if (typeof ack !== 'function') return;
      const reply = ack as (r: CommandReply) => void;
      // Health answers always, as on HTTP.
      const admitted = isHealth(raw) ? ({ ok: true } as const) : limiter.take('io', address);
      if (!admitted.ok) {
        reply({ error: new DseError('LimitExceeded', refusalMessage(admitted)).toBody() });
        return;
      }
      let cmd: Command;
      try {
        if (JSON.stringify(raw ?? null).length > limits.bodyBytesMax)
          throw new DseError('LimitExceeded', `the command is larger than ${limits.bodyBytesMax} bytes`);
        cmd = v.command(raw, limits, commands.current());
      } catch (e) {
        reply({ error: errorBody(e) });
        return;
      }
      commands.exec(cmd).then(reply, (e: unknown) => reply({ error: errorBody(e) }));
    });
  });

  return {
    // Both at once: each waits for the HTTP server to close, which waits for the other's connections.
    close: async () => {
      await Promise.all([nodeIo.close(), io.close()]);
    },
  };
}
