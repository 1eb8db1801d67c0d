import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventOfNode, messageOfNode } from '../../src/live/cluster';
import type { JoinReply } from '../../src/live/wire';
import { NODE_NAMESPACE, NODE_SOCKET_PATH } from '../../src/live/wire';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * Security F6: a process that joins as a node may speak only for itself. Messages in another node's
 * name (a `persisted` report of n1, an app message with `h.src` n1) and events about other nodes or
 * of the server's kinds are dropped by the relay.
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
      t = await startTestServer({ nodes: 2, config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 5000, autoRestart: false }, workload: { kind: 'mixed', rate: 0 } });
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
        const reply = (await s.timeout(10_000).emitWithAck('join', { id: 'evil', pid: 1, incarnation: null, data: { host: '127.0.0.1', port: 9 } })) as JoinReply;
        expect('ok' in reply).toBe(true);
        const forgedVersion = 1_000_000;
        s.emit('up', {
          m: [['coordinator', { kind: 'persisted', node: 'n1', worldLine: info.worldLine, version: forgedVersion, prevVersion: 0, deps: {} }]],
          e: [
            { type: 'stateChanged', t: 0, node: 'n1', version: forgedVersion, set: { forged: true }, deleted: [] },
            { type: 'cutAdvanced', t: 0, worldLine: info.worldLine, cut: { n1: forgedVersion } },
          ],
        });
        await waitFor('the relay to drop them', () => t.server.cluster.forgedDropped >= 3, 10_000);
        await new Promise((r) => setTimeout(r, 500));
        expect(t.server.cluster.info(0).cut.n1 ?? 0).toBeLessThan(forgedVersion);
        const seen = t.events.slice(before).filter((e) => ('version' in e && e.version === forgedVersion) || (e.type === 'cutAdvanced' && (e.cut.n1 ?? 0) >= forgedVersion));
        expect(seen).toEqual([]);
      } finally {
        s.close();
      }
    });
  });
});
