import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandReply, StreamSnapshot } from '@dse/shared';
import { commandReplySchema, PROTOCOL_VERSION, StreamSnapshotSchema } from '@dse/shared';
import { Server as IoServer } from 'socket.io';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveConnection } from '../../../web/src/live/connection';
import type { ConnectionStatus } from '../../../web/src/live/connection';
import type { JoinReply } from '../../src/live/wire';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../../src/live/wire';
import type { RunningServer } from '../../src/server/server';
import { startServer } from '../../src/server/server';

/** The protocol version: node joins and browsers of another version are refused by name; what the server sends matches the shared schemas. */

let server: RunningServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = await startServer({ port: 0, storage: 'memory', nodes: 1, nodeStderr: false, log: () => undefined });
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.close();
});

function nodeSocket(): Socket {
  const s = io(server.url + NODE_NAMESPACE, { path: NODE_SOCKET_PATH, transports: ['websocket'], reconnection: false });
  sockets.push(s);
  return s;
}

function join(req: unknown): Promise<JoinReply> {
  return nodeSocket().timeout(10_000).emitWithAck('join', req) as Promise<JoinReply>;
}

function browserError(auth: Record<string, unknown>): Promise<string> {
  return new Promise((resolve) => {
    const s = io(server.url, { transports: ['websocket'], reconnection: false, auth });
    sockets.push(s);
    s.once('connect', () => resolve('connected'));
    s.once('connect_error', (e) => resolve(e.message));
  });
}

const data = { host: '127.0.0.1', port: 9 };

describe('node joins', () => {
  it('refuses a node of another protocol version, saying both versions', async () => {
    const r = await join({ protocol: PROTOCOL_VERSION + 1, id: 'x1', pid: 1, incarnation: null, data });
    expect(r).toEqual({
      error: {
        code: 'BadRequest',
        definite: true,
        message: `join: this node speaks protocol version ${PROTOCOL_VERSION + 1} and the server ${PROTOCOL_VERSION}: run the node from the same release as the server`,
      },
    });
    expect(server.cluster.hasNode('x1')).toBe(false);
  });

  it('refuses a join without a protocol version (a node of an older release) and malformed joins, each with the reason', async () => {
    const cases: [unknown, string][] = [
      [{ id: 'x1', pid: 1, incarnation: null, data }, 'join: protocol is required (a node of a release that sends none is too old for this server)'],
      [
        { protocol: PROTOCOL_VERSION, id: '1x', pid: 1, incarnation: null, data },
        'join: id must be a node id (a letter, then letters, digits, _ or -; at most 32)',
      ],
      [{ protocol: PROTOCOL_VERSION, id: 'x1', pid: 1, incarnation: null, data: { host: 'h', port: 70000 } }, 'join: data.port must be a port'],
      [{ protocol: PROTOCOL_VERSION, id: 'x1', pid: 1, incarnation: null }, 'join: data must be {host, port}, where peers reach this node'],
      ['hello', 'join must be {protocol, id, pid, incarnation, data}'],
    ];
    for (const [req, message] of cases) expect(await join(req), JSON.stringify(req)).toMatchObject({ error: { code: 'BadRequest', message } });
    expect(server.cluster.hasNode('x1')).toBe(false);
  });
});

describe('browsers', () => {
  it('refuses a page of another protocol version at the handshake', async () => {
    expect(await browserError({ protocol: PROTOCOL_VERSION - 1 })).toBe(
      `ProtocolMismatch: this page speaks protocol version ${PROTOCOL_VERSION - 1} and the server ${PROTOCOL_VERSION}: reload the page`,
    );
  });

  it('sends its protocol version in the snapshot; the snapshot and the replies match the shared schemas', async () => {
    const s = io(server.url, { transports: ['websocket'], reconnection: false, auth: { protocol: PROTOCOL_VERSION } });
    sockets.push(s);
    const snap = await new Promise<StreamSnapshot>((resolve) => s.once('snapshot', resolve));
    expect(snap.protocol).toBe(PROTOCOL_VERSION);
    const parsed = StreamSnapshotSchema.safeParse(snap);
    expect(parsed.error?.issues ?? []).toEqual([]);
    for (const type of ['cluster', 'getConfig', 'health'] as const) {
      const reply = (await s.timeout(10_000).emitWithAck('command', { type })) as CommandReply;
      const r = commandReplySchema(type).safeParse(reply);
      expect(r.error?.issues ?? [], type).toEqual([]);
      expect(reply, type).toMatchObject({ ok: true });
    }
  });

  it('the page stops listening to a server of another protocol version, and says why', async () => {
    // A stand-in for a server of another release: it sends a snapshot of another protocol version.
    const http = createServer();
    const other = new IoServer(http);
    other.on('connection', (socket) => socket.emit('snapshot', { protocol: PROTOCOL_VERSION + 1, reason: 'connect', lastEvent: 0 }));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const statuses: [ConnectionStatus, string | undefined][] = [];
    let snapshots = 0;
    const conn = new LiveConnection(
      {
        onSnapshot: () => snapshots++,
        onBatch: () => undefined,
        onNotice: () => undefined,
        onStatus: (st, detail) => statuses.push([st, detail]),
      },
      `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    );
    try {
      await expect.poll(() => statuses.at(-1)?.[0], { timeout: 10_000 }).toBe('disconnected');
      expect(statuses.at(-1)?.[1]).toBe(`the server speaks protocol version ${PROTOCOL_VERSION + 1} and this page ${PROTOCOL_VERSION}: reload the page`);
      expect(snapshots).toBe(0);
    } finally {
      conn.close();
      await other.close();
    }
  });
});
