import { PROTOCOL_VERSION } from '@dse/shared';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventOfNode, messageOfNode } from '../../src/live/cluster';
import type { JoinReply } from '../../src/live/wire';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../../src/live/wire';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * Security F6: a process that joins as a node may speak only for itself. What it sends the server in
 * another node's name (a `persisted` report of n1 for the coordinator) and events about other nodes or
 * of the server's kinds are dropped by the server's node gateway, before the coordinator or the event
 * stream sees them. (Messages between nodes do not pass through the server: they go over the nodes'
 * own links, whose receiver drops those not in the name of the peer that said hello; see links.test.ts.)
 * A join is checked whole before it changes anything.
 */
describe('node frames in another node’s name (security F6)', () => {
  it('the checks: own events and messages pass, others and coordinator-only kinds do not', () => {
    expect(eventOfNode('n2', { type: 'stateChanged', node: 'n2' })).toBe(true);
    expect(eventOfNode('n2', { type: 'stateChanged', node: 'n1' })).toBe(false);
    expect(eventOfNode('n2', { type: 'messageSent', from: 'n2', to: 'n1' })).toBe(true);
    expect(eventOfNode('n2', { type: 'messageSent', from: 'n1', to: 'n2' })).toBe(false);
    expect(eventOfNode('n2', { type: 'messageDelivered', from: 'n1', to: 'n2' })).toBe(true);
    expect(eventOfNode('n2', { type: 'cutAdvanced', cut: {} })).toBe(false);
    expect(eventOfNode('n2', { type: 'nodeFailed', node: 'n2' })).toBe(false);
    const h = (src: string) => ({ src, worldLine: 1, srcVersion: 1, seq: 1 });
    expect(messageOfNode('n2', { kind: 'app', h: h('n2'), payload: null } as never)).toBe(true);
    expect(messageOfNode('n2', { kind: 'app', h: h('n1'), payload: null } as never)).toBe(false);
    expect(messageOfNode('n2', { kind: 'persisted', node: 'n1', worldLine: 1, version: 9, prevVersion: 0, deps: {} })).toBe(false);
    expect(messageOfNode('n2', { kind: 'persisted', node: 'n2', worldLine: 1, version: 9, prevVersion: 0, deps: {} })).toBe(true);
    expect(messageOfNode('n2', { kind: 'cut', worldLine: 1, cut: { n1: 9 } })).toBe(false);
    expect(messageOfNode('n2', { kind: 'sync', from: 'server', role: 'client', since: 0 })).toBe(false);
  });

  describe('on a live server (PGlite)', () => {
    let t: TestServer;
    beforeAll(async () => {
      t = await startTestServer({
        nodes: 2,
        config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 5000, autoRestart: false },
        workload: { kind: 'mixed', rate: 0 },
      });
      await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
    }, 90_000);
    afterAll(async () => {
      await t?.close();
    });

    it('a joined process cannot report another node persisted, nor forge its events', async () => {
      const info = t.server.cluster.info(0);
      const before = t.events.length;
      const s = io(t.server.url + NODE_NAMESPACE, { path: NODE_SOCKET_PATH, transports: ['websocket'], reconnection: false });
      try {
        const reply = (await s
          .timeout(10_000)
          .emitWithAck('join', { protocol: PROTOCOL_VERSION, id: 'evil', pid: 1, incarnation: null, data: { host: '127.0.0.1', port: 9 } })) as JoinReply;
        expect('ok' in reply).toBe(true);
        const forgedVersion = 1_000_000;
        s.emit('up', {
          m: [['coordinator', { kind: 'persisted', node: 'n1', worldLine: info.worldLine, version: forgedVersion, prevVersion: 0, deps: {} }]],
          e: [
            { type: 'stateChanged', t: 0, node: 'n1', version: forgedVersion, set: { forged: true }, deleted: [] },
            { type: 'cutAdvanced', t: 0, worldLine: info.worldLine, cut: { n1: forgedVersion } },
          ],
        });
        await waitFor('the server to drop them', () => t.server.cluster.forgedDropped >= 3, 10_000);
        await new Promise((r) => setTimeout(r, 500));
        expect(t.server.cluster.info(0).cut.n1 ?? 0).toBeLessThan(forgedVersion);
        const seen = t.events
          .slice(before)
          .filter((e) => ('version' in e && e.version === forgedVersion) || (e.type === 'cutAdvanced' && (e.cut.n1 ?? 0) >= forgedVersion));
        expect(seen).toEqual([]);
      } finally {
        s.close();
      }
    });

    it('a join with a bad data address is refused, and adds no node nor touches the node of that id', async () => {
      const url = t.server.url + NODE_NAMESPACE;
      const connect = () => io(url, { path: NODE_SOCKET_PATH, transports: ['websocket'], reconnection: false });
      const badData: unknown[] = [
        undefined,
        null,
        'x',
        { host: '127.0.0.1' },
        { host: 7, port: 9 },
        { host: '127.0.0.1', port: 0 },
        { host: '127.0.0.1', port: 70_000 },
        { host: '127.0.0.1', port: 9.5 },
      ];
      const before = t.events.length;
      const first = connect();
      const second = connect();
      try {
        // A new id: refused, and no node is added (nor told to the coordinator, nor announced).
        for (const data of badData) {
          const reply = (await second
            .timeout(10_000)
            .emitWithAck('join', { protocol: PROTOCOL_VERSION, id: 'baddata', pid: 2, incarnation: null, data })) as JoinReply;
          expect('error' in reply && reply.error.code).toBe('BadRequest');
        }
        expect(t.server.cluster.info(0).nodes.map((n) => n.id)).not.toContain('baddata');
        expect(t.server.cluster.coordinator.members.has('baddata')).toBe(false);

        // An id with a current process: a bad join for it leaves that process connected, with its starts.
        const ok = (await first
          .timeout(10_000)
          .emitWithAck('join', { protocol: PROTOCOL_VERSION, id: 'twice', pid: 3, incarnation: null, data: { host: '127.0.0.1', port: 9 } })) as JoinReply;
        expect('ok' in ok).toBe(true);
        const joined = t.server.cluster.info(0).nodes.find((n) => n.id === 'twice')!;
        expect(joined.pid).toBe(3);
        let firstDropped = false;
        first.on('disconnect', () => (firstDropped = true));
        for (const data of badData) {
          const reply = (await second
            .timeout(10_000)
            .emitWithAck('join', { protocol: PROTOCOL_VERSION, id: 'twice', pid: 4, incarnation: null, data })) as JoinReply;
          expect('error' in reply && reply.error.code).toBe('BadRequest');
        }
        await new Promise((r) => setTimeout(r, 300));
        expect(firstDropped).toBe(false);
        expect(first.connected).toBe(true);
        const after = t.server.cluster.info(0).nodes.find((n) => n.id === 'twice')!;
        expect(after.starts).toBe(joined.starts);
        expect(after.pid).toBe(3);

        const seen = t.events
          .slice(before)
          .filter((e) => (e.type === 'nodeAdded' && e.node === 'baddata') || (e.type === 'nodeProcess' && (e.node === 'baddata' || e.pid === 4)));
        expect(seen).toEqual([]);
      } finally {
        first.close();
        second.close();
      }
    });
  });
});
