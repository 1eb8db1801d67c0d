import type { CommandReply, Json, NumberedEvent, WorkloadKind } from '@dse/shared';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvNode, topicNode, walNode } from '../../src/services';
import type { TestServer } from './helpers';
import { committed, startTestServer, waitFor } from './helpers';

/**
 * The `service` command (HTTP `POST /api/service` and Socket.IO) on the default `playground` app,
 * and the service workloads, on real node processes (PGlite).
 */

let t: TestServer;
let socket: Socket;

beforeAll(async () => {
  t = await startTestServer({ nodes: 3, config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 } });
  await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
  socket = io(t.server.url, { transports: ['websocket'], reconnection: false });
}, 90_000);

afterAll(async () => {
  socket?.close();
  await t?.close();
});

function command(c: unknown): Promise<CommandReply> {
  return socket.timeout(15_000).emitWithAck('command', c) as Promise<CommandReply>;
}

const nodes = (): string[] => t.server.cluster.nodeIds();

describe('the service command', () => {
  it('HTTP: a wal append, then a committed read sees it once it is committed', async () => {
    const append = await t.api('POST', '/api/service', { session: 'svc-http', svc: 'wal', payload: { op: 'append', log: 'audit', data: { note: 'hello' } } });
    expect(append.status).toBe(200);
    expect(append.json).toMatchObject({ ok: true, svc: 'wal', session: 'svc-http', seq: 1, node: walNode('audit', nodes()), result: { pos: 0 } });
    const id = append.json.id as string;
    expect(id).toMatch(/^r\d+$/);

    // The session reads its own write at once (speculatively).
    const spec = await t.api('POST', '/api/service', { session: 'svc-http', svc: 'wal', payload: { op: 'read', log: 'audit' } });
    expect(spec.json).toMatchObject({ ok: true, seq: 2, result: { entries: [{ pos: 0, data: { note: 'hello' } }], committed: false, length: 1 } });

    const done = await committed(t, id);
    expect(done).toMatchObject({ svc: 'wal', status: 'committed', result: { pos: 0 } });
    // A committed-only read (the server fills upTo from the cut) from another session sees it.
    const read = await t.api('POST', '/api/service', { session: 'svc-http-reader', svc: 'wal', payload: { op: 'read', log: 'audit', committed: true } });
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ ok: true, result: { entries: [{ pos: 0, data: { note: 'hello' } }], next: 1, committed: true } });
  });

  it('Socket.IO: kv store and broker requests placed like the typed clients; typed refusals come back as errors', async () => {
    const put = await command({ type: 'service', session: 'svc-io', svc: 'kv', payload: { op: 'put', key: 'apple', value: 1 } });
    expect(put).toMatchObject({ ok: true, svc: 'kv', node: kvNode('apple', nodes()), result: { n: 1 } });
    const cas = await command({ type: 'service', session: 'svc-io', svc: 'kv', payload: { op: 'cas', key: 'apple', expected: 1, value: 2 } });
    expect(cas).toMatchObject({ ok: true, result: { ok: true, n: 2, value: 1 } });

    const pub = await command({
      type: 'service',
      session: 'svc-io',
      svc: 'broker',
      payload: { op: 'publish', topic: 'news', producer: 'p1', seq: 1, data: 'a' },
    });
    expect(pub).toMatchObject({ ok: true, node: topicNode('news', nodes()), result: { offset: 0, duplicate: false } });
    const dup = await command({
      type: 'service',
      session: 'svc-io',
      svc: 'broker',
      payload: { op: 'publish', topic: 'news', producer: 'p1', seq: 1, data: 'a' },
    });
    expect(dup).toMatchObject({ ok: true, result: { offset: null, duplicate: true } });
    const poll = await command({ type: 'service', session: 'svc-io', svc: 'broker', payload: { op: 'poll', topic: 'news', group: 'g' } });
    expect(poll).toMatchObject({ ok: true, result: { events: [{ offset: 0, producer: 'p1', seq: 1, data: 'a' }], next: 1 } });

    // The service refuses a put without a value: its BadRequest, with the request's id.
    const refused = await command({ type: 'service', session: 'svc-io', svc: 'kv', payload: { op: 'put', key: 'apple' } });
    expect(refused).toMatchObject({ error: { code: 'BadRequest' } });
    expect((refused as { id?: string }).id).toMatch(/^r\d+$/);
    // A workflow that exists already: Conflict (the first one has no steps: it completes at once).
    const wf = await command({ type: 'service', session: 'svc-io', svc: 'wf', payload: { op: 'start', id: 'w1', steps: [] } });
    expect(wf).toMatchObject({ ok: true, svc: 'wf', result: { id: 'w1', status: 'completed' } });
    const again = await command({ type: 'service', session: 'svc-io', svc: 'wf', payload: { op: 'start', id: 'w1', steps: [] } });
    expect(again).toMatchObject({ error: { code: 'Conflict' } });
    // The refused request is a request all the same: it is kept, and commits.
    const info = await committed(t, (refused as { id: string }).id);
    expect(info.result).toMatchObject({ error: { code: 'BadRequest' } });
  });

  it('bad bodies get BadRequest (or LimitExceeded) and change nothing', async () => {
    // Work of the tests before may still finish (a workflow resumed after a recovery): wait for quiet.
    for (let quiet = 0; quiet < 5;) {
      const n = t.events.length;
      await new Promise((r) => setTimeout(r, 100));
      quiet = t.events.slice(n).some((e) => e.type === 'stateChanged' && Object.keys(e.set).length > 0) ? 0 : quiet + 1;
    }
    const before = await t.api('POST', '/api/service', { svc: 'wal', payload: { op: 'length', log: 'bad' } });
    expect(before.json).toMatchObject({ ok: true, result: { length: 0 } });
    const events = t.events.length;
    const cases: [unknown, string][] = [
      [{}, 'BadRequest'],
      [{ svc: 'wal' }, 'BadRequest'],
      [{ svc: 'travel', payload: { op: 'reserve', wf: 'x', step: 0, item: 'i' } }, 'BadRequest'],
      [{ svc: 'nope', payload: { op: 'append', log: 'bad', data: 1 } }, 'BadRequest'],
      [{ svc: 'wal', payload: [1] }, 'BadRequest'],
      [{ svc: 'wal', payload: 'append' }, 'BadRequest'],
      [{ svc: 'wal', payload: { log: 'bad', data: 1 } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', data: 1 } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 42, data: 1 } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1, svc: 'kv' } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'read', log: 'bad', upTo: 1e9 } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'read', log: 'bad', committed: 'yes' } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1, committed: true } }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1 }, session: 'no spaces' }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1 }, node: '../n1' }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1 }, extra: 1 }, 'BadRequest'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 1 }, node: 'n9' }, 'NotFound'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: 'x'.repeat(20_000) } }, 'LimitExceeded'],
      [{ svc: 'wal', payload: { op: 'append', log: 'bad', data: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) as unknown } }, 'BadRequest'],
    ];
    for (const [body, code] of cases) {
      const r = await t.api('POST', '/api/service', body);
      expect(r.json, JSON.stringify(body).slice(0, 100)).toMatchObject({ error: { code } });
      const c = await command({ type: 'service', ...(body as object) });
      expect(c, JSON.stringify(body).slice(0, 100)).toMatchObject({ error: { code } });
    }
    // Nothing reached a node: no new answer, no state written, and the log is still empty.
    // (The server's own membership sessions may read the nodes' placement meanwhile: not the bodies' doing.)
    const touched = t.events
      .slice(events)
      .filter(
        (e) =>
          (e.type === 'sessionResult' && e.status === 'speculative' && !e.session.startsWith('membership.')) ||
          (e.type === 'stateChanged' && Object.keys(e.set).length > 0),
      );
    expect(touched).toEqual([]);
    const after = await t.api('POST', '/api/service', { svc: 'wal', payload: { op: 'length', log: 'bad' } });
    expect(after.json).toMatchObject({ ok: true, result: { length: 0 } });
  });

  it('kv app keys under a service prefix are refused, so they never touch service state', async () => {
    for (const key of ['wal/audit/n', 'kv/apple', 'br/news/n', 'wf/w1', 'tr/s/card']) {
      const put = await t.api('POST', '/api/requests', { op: 'put', key, value: 99 });
      expect(put.status, key).toBe(400);
      expect(put.json, key).toMatchObject({ error: { code: 'BadRequest' } });
      expect((put.json.error as { message: string }).message).toMatch(/service/);
      const get = await command({ type: 'request', op: 'get', key, committedOnly: true });
      expect(get, key).toMatchObject({ error: { code: 'BadRequest' } });
    }
    // Plain keys still work, next to the services.
    const ok = await t.api('POST', '/api/requests', { op: 'put', key: 'wal', value: 1 });
    expect(ok.json).toMatchObject({ ok: true, result: { key: 'wal' } });
    const log = await t.api('POST', '/api/service', { svc: 'wal', payload: { op: 'read', log: 'audit' } });
    expect(log.json).toMatchObject({ ok: true, result: { length: 1 } });
  });
});

describe('a service request to a node that is down', () => {
  it('times out with its id; GET /api/requests/:id follows it once the node is back', async () => {
    expect((await t.api('POST', '/api/config', { autoRestart: false })).json).toMatchObject({ ok: true });
    const node = walNode('late', nodes());
    expect((await t.api('POST', `/api/nodes/${node}/kill`)).json).toMatchObject({ ok: true });
    await waitFor(`${node} down`, () => t.server.cluster.info(0).nodes.find((n) => n.id === node)?.status === 'down');
    const r = await t.api('POST', '/api/service', { session: 'svc-late', svc: 'wal', payload: { op: 'append', log: 'late', data: 1 } });
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ error: { code: 'Timeout' } });
    const id = r.json.id as string;
    expect(id).toMatch(/^r\d+$/);
    const pending = await t.api('GET', `/api/requests/${id}`);
    expect(pending.json).toMatchObject({ ok: true, id, svc: 'wal', node, session: 'svc-late', status: 'speculative', result: null });

    expect((await t.api('POST', `/api/nodes/${node}/restart`)).json).toMatchObject({ ok: true });
    await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
    // Decided one way or the other: answered and committed, or rolled back by the recovery.
    let last: Record<string, unknown> = {};
    await waitFor(
      `request ${id} decided`,
      () => {
        void t.api('GET', `/api/requests/${id}`).then((g) => (last = g.json));
        return last.status === 'committed' || last.status === 'rolled-back';
      },
      30_000,
    );
    expect(last).toMatchObject({ svc: 'wal', node });
    if (last.status === 'committed') expect(last.result).toEqual({ pos: 0 });
  }, 60_000);
});

describe('the service workloads', () => {
  it('each kind produces committed requests and writes its service state', async () => {
    for (const kind of ['wal', 'kvstore', 'broker', 'workflow'] as WorkloadKind[]) {
      const from = t.events.length;
      t.server.workload.resetStats();
      const set = await t.api('POST', '/api/workload', { kind, rate: 60 });
      expect(set.json).toMatchObject({ ok: true, workload: { kind, rate: 60 } });
      const fresh = (): NumberedEvent[] => t.events.slice(from);
      const written = (): string[] => fresh().flatMap((e) => (e.type === 'stateChanged' ? Object.keys(e.set) : []));
      const results = (): Json[] => fresh().flatMap((e) => (e.type === 'sessionResult' && e.status === 'speculative' ? [e.result] : []));
      const field = (r: Json, k: string): Json | undefined => (typeof r === 'object' && r !== null && !Array.isArray(r) ? r[k] : undefined);
      const checks: Record<string, () => boolean> = {
        wal: () => written().some((k) => /^wal\/(audit|orders)\/e\/\d+$/.test(k)) && results().some((r) => field(r, 'committed') === true),
        kvstore: () => written().some((k) => /^kv\/k\d+$/.test(k)) && results().some((r) => field(r, 'ok') !== undefined),
        // Both consumer groups polled, a committed-only poll answered, and a duplicate publish dropped.
        broker: () =>
          written().some((k) => /^br\/[^/]+\/e\/\d+$/.test(k)) &&
          written().some((k) => /^br\/[^/]+\/g\/billing$/.test(k)) &&
          results().some((r) => field(r, 'committed') === true) &&
          results().some((r) => field(r, 'duplicate') === true),
        workflow: () =>
          written().some((k) => k.startsWith('wf/trip-')) &&
          written().some((k) => k.startsWith('tr/b/trip-')) &&
          results().some((r) => field(r, 'status') === 'completed'),
      };
      await waitFor(`${kind}: 20 committed requests and its state`, () => t.server.workload.stats().committed >= 20 && checks[kind]!(), 30_000);
      await t.api('POST', '/api/workload', { rate: 0 });
    }
  }, 120_000);
});
