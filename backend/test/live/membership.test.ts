import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from './helpers';
import { ownerOf } from '@dse/shared';
import { serviceNode } from '../../src/live/requests';
import { committed, startTestServer, waitFor } from './helpers';

/**
 * Adding and removing nodes loses nothing (issue 18), on real node processes (PGlite): keys written
 * through the key-value service and committed; a node added; a live node removed (drained); a node
 * killed and removed (its committed state restored from storage); every committed key read back with
 * its value after each step.
 */

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ nodes: 4, config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 } });
  await waitFor('every node up', () => t.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
}, 90_000);

afterAll(async () => {
  await t?.close();
});

const KEYS = Array.from({ length: 16 }, (_, i) => `user${i}`);

async function readAll(session: string): Promise<void> {
  for (const key of KEYS) {
    const r = await t.api('POST', '/api/service', { session, svc: 'kv', payload: { op: 'get', key } });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.result, key).toEqual({ value: `value of ${key}`, n: 1 });
  }
}

/** Where the key-value store's keys are, from the nodes' own status: every key on exactly one member. */
async function unitsPerNode(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of t.server.cluster.nodeIds()) {
    if (t.server.cluster.status(n) !== 'up') continue;
    const s = await t.server.cluster.membership.statusOf(n);
    out[n] = s.units.kv ?? 0;
  }
  return out;
}

describe('membership changes on the live cluster', () => {
  it('keys written and committed survive a node added, a live node removed, and a killed node removed', async () => {
    let last = '';
    for (const key of KEYS) {
      const r = await t.api('POST', '/api/service', { session: 'writer', svc: 'kv', payload: { op: 'put', key, value: `value of ${key}` } });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      last = r.json.id as string;
    }
    await committed(t, last);
    await readAll('reader-0');

    // Add a node: the keys it wins move to it, through the runtime.
    const add = await t.api('POST', '/api/nodes', {});
    expect(add.status, JSON.stringify(add.json)).toBe(200);
    expect(add.json).toMatchObject({ ok: true, node: 'n5', how: 'joined', version: 1, members: ['n1', 'n2', 'n3', 'n4', 'n5'] });
    await readAll('reader-1');
    const afterAdd = await unitsPerNode();
    expect(Object.values(afterAdd).reduce((a, b) => a + b, 0)).toBe(KEYS.length);
    expect(afterAdd.n5).toBeGreaterThan(0);
    expect((await t.api('GET', '/api/cluster')).json.placement).toEqual({ version: 1, members: ['n1', 'n2', 'n3', 'n4', 'n5'] });

    // Remove a live node: drained first, then stopped. It leaves quietly: its last version committed, its
    // stop is no failure, and no world-line rolls anything back.
    const worldLine = t.server.cluster.info(0).worldLine;
    const fromEvent = t.events.length;
    const drain = await t.api('DELETE', '/api/nodes/n2');
    expect(drain.status, JSON.stringify(drain.json)).toBe(200);
    expect(t.server.cluster.info(0).worldLine).toBe(worldLine);
    await waitFor('n2 removed, having left', () => t.find('nodeRemoved', (e) => e.node === 'n2' && e.left === true, fromEvent), 10_000);
    expect(t.find('nodeFailed', (e) => e.node === 'n2', fromEvent)).toBeUndefined();
    // Version 2 takes it out of the placement; version 3, once it is stopped, tells the members what is left of it.
    expect(drain.json).toMatchObject({ ok: true, node: 'n2', how: 'drained', version: 3, members: ['n1', 'n3', 'n4', 'n5'] });
    expect(t.server.cluster.nodeIds()).not.toContain('n2');
    await readAll('reader-2');
    // A workflow step sent to the drained node (gone now) is answered NodeRemoved and goes to the key's owner.
    const wf = await t.api('POST', '/api/service', {
      session: 'wf-after-drain',
      svc: 'wf',
      payload: { op: 'start', id: 'after-drain', steps: [{ name: 'put', node: 'n2', do: { svc: 'kv', op: 'put', key: 'via-n2', value: 2 }, undo: null }] },
    });
    expect(wf.status, JSON.stringify(wf.json)).toBe(200);
    expect(wf.json.result).toMatchObject({ id: 'after-drain', status: 'completed' });
    // Committed before the kill below: an answer still speculative then may rightly roll back with n3.
    await committed(t, wf.json.id as string);
    expect((await t.api('POST', '/api/service', { session: 'reader-2', svc: 'kv', payload: { op: 'get', key: 'via-n2' } })).json.result).toEqual({
      value: 2,
      n: 1,
    });

    // Kill a node, then remove it: its committed keys come back from storage on the nodes that own them now.
    const victim = 'n3';
    const held = (await unitsPerNode())[victim]!;
    expect(held).toBeGreaterThan(0);
    expect((await t.api('POST', `/api/nodes/${victim}/kill`)).status).toBe(200);
    await waitFor('the victim down', () => t.server.cluster.status(victim) === 'down', 20_000);
    const gone = await t.api('DELETE', `/api/nodes/${victim}`);
    expect(gone.status, JSON.stringify(gone.json)).toBe(200);
    expect(gone.json).toMatchObject({ ok: true, node: victim, how: 'restored', version: 4, members: ['n1', 'n4', 'n5'] });
    await readAll('reader-3');
    const end = await unitsPerNode();
    expect(Object.keys(end).sort()).toEqual(['n1', 'n4', 'n5']);
    expect(Object.values(end).reduce((a, b) => a + b, 0)).toBe(KEYS.length + 1); // and via-n2

    // A write after all that commits, and reads back.
    const w = await t.api('POST', '/api/service', { session: 'writer-2', svc: 'kv', payload: { op: 'put', key: 'after', value: 1 } });
    expect(w.status).toBe(200);
    await committed(t, w.json.id as string);
  }, 180_000);

  it('a workflow under way at a node removed while down: its start fails Orphaned (not rolled back), and the workflow finishes where the state went', async () => {
    const members = (await t.api('GET', '/api/cluster')).json.placement as { members: string[] };
    // A workflow id owned by one member (x), whose only step is at another (y), held still by SIGSTOP.
    const id = Array.from({ length: 64 }, (_, i) => `orph${i}`).find((w) => serviceNode('wf', w, members.members) === members.members[0])!;
    const [x, y] = [members.members[0]!, members.members[1]!];
    const pidOf = (n: string): number => t.server.cluster.info(0).nodes.find((i) => i.id === n)!.pid!;
    const yPid = pidOf(y);
    const from = t.events.length;
    process.kill(yPid, 'SIGSTOP');
    try {
      const steps = [{ name: 'put', node: y, do: { svc: 'kv', op: 'put', key: `${id}-k`, value: 1 }, undo: null }];
      const start = t.api('POST', '/api/service', { session: 'orphan', svc: 'wf', payload: { op: 'start', id, steps } });
      // Its acceptance at x committed: the workflow is in x's committed state, waiting for its step.
      const accepted = await waitFor('the start accepted at x', () => t.find('stateChanged', (e) => e.node === x && `wf/${id}` in e.set, from), 10_000);
      await waitFor('the acceptance committed', () => (t.server.cluster.info(0).cut[x] ?? 0) >= accepted.version, 10_000);
      expect((await t.api('POST', `/api/nodes/${x}/kill`)).status).toBe(200);
      await waitFor('x down', () => t.server.cluster.status(x) === 'down', 10_000);
      const removal = t.api('DELETE', `/api/nodes/${x}`);
      process.kill(yPid, 'SIGCONT');
      const r = await start;
      // Not a rollback: it happened (in part), committed, and no answer will come.
      expect(r.status, JSON.stringify(r.json)).toBe(409);
      expect(r.json).toMatchObject({ error: { code: 'Orphaned', definite: false } });
      const info = await t.api('GET', `/api/requests/${r.json.id as string}`);
      expect(info.json).toMatchObject({ status: 'failed', error: { code: 'Orphaned' } });
      expect((await removal).json).toMatchObject({ ok: true, node: x, how: 'restored' });
    } finally {
      process.kill(yPid, 'SIGCONT');
    }
    // The workflow goes on where x's state went, and completes.
    let phase: string | undefined;
    for (const end = Date.now() + 30_000; phase !== 'done' && Date.now() < end; await new Promise((res) => setTimeout(res, 200))) {
      const st = await t.api('POST', '/api/service', { session: 'orphan-status', svc: 'wf', payload: { op: 'status', id } });
      phase = (st.json.result as { phase?: string } | undefined)?.phase;
    }
    expect(phase).toBe('done');
  }, 120_000);

  it('bad input changes nothing: an unknown node, the last member', async () => {
    const before = (await t.api('GET', '/api/cluster')).json.placement;
    const r = await t.api('DELETE', '/api/nodes/n99');
    expect(r.status).toBe(404);
    expect((await t.api('GET', '/api/cluster')).json.placement).toEqual(before);
  });

  it('a committed-only read while a change runs answers the committed value, never the empty state of an owner still waiting for it', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `cr${i}`);
    for (const key of keys) expect((await t.api('POST', '/api/requests', { session: 'cr-writer', op: 'put', key, value: key })).status).toBe(200);
    const read = async (key: string): Promise<unknown> => {
      const r = await t.api('POST', '/api/requests', { op: 'get', key, committedOnly: true });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return (r.json.result as { value: unknown }).value;
    };
    for (const end = Date.now() + 30_000; !(await Promise.all(keys.map(read))).every((v, i) => v === keys[i]);) {
      if (Date.now() > end) throw new Error('the keys did not commit within 30 s');
      await new Promise((res) => setTimeout(res, 100));
    }
    // Reads race each change: the server's placement moves first, the hand-offs commit later.
    const readWhile = async (change: Promise<unknown>): Promise<number> => {
      let done = false;
      void change.finally(() => (done = true));
      let reads = 0;
      for (let after = 0; !done || after < 3; after += done ? 1 : 0) {
        for (const [i, v] of (await Promise.all(keys.map(read))).entries()) expect(v, keys[i]).toBe(keys[i]);
        reads += keys.length;
      }
      return reads;
    };
    const add = t.api('POST', '/api/nodes', {});
    expect(await readWhile(add)).toBeGreaterThan(0);
    const added = (await add).json as { node: string; how: string };
    expect(added.how).toBe('joined');
    const drain = t.api('DELETE', `/api/nodes/${added.node}`);
    expect(await readWhile(drain)).toBeGreaterThan(0);
    expect((await drain).json).toMatchObject({ ok: true, how: 'drained' });
  }, 120_000);
});

describe('membership across a server restart', () => {
  it('a removed node is not started again, and the server routes by the placement the nodes hold', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dse-membership-restart-'));
    const opts = { nodes: 3, dataDir, config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 } };
    let a: TestServer | null = await startTestServer(opts);
    let b: TestServer | null = null;
    try {
      await waitFor('every node up', () => a!.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
      const keys = Array.from({ length: 8 }, (_, i) => `r${i}`);
      let last = '';
      for (const key of keys)
        last = (await a.api('POST', '/api/service', { session: 'w', svc: 'kv', payload: { op: 'put', key, value: key } })).json.id as string;
      await committed(a, last);
      const drain = await a.api('DELETE', '/api/nodes/n2');
      expect(drain.json).toMatchObject({ ok: true, how: 'drained', version: 2, members: ['n1', 'n3'] });
      // Stopped at once: DELETE answers only once the stored record no longer lists n2.
      const pids = a.server.cluster
        .info(0)
        .nodes.map((n) => n.pid)
        .filter((p): p is number => p !== null);
      await a.server.close();
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      a = null;
      b = await startTestServer(opts);
      const server = b.server;
      await waitFor('the nodes up', () => server.cluster.info(0).nodes.length > 0 && server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
      expect(server.cluster.nodeIds()).toEqual(['n1', 'n3']);
      await waitFor('the placement learned from the nodes', () => server.cluster.info(0).placement?.version === 2, 20_000);
      expect(server.cluster.info(0).placement).toEqual({ version: 2, members: ['n1', 'n3'] });
      for (const key of keys)
        expect((await b.api('POST', '/api/service', { session: 'r', svc: 'kv', payload: { op: 'get', key } })).json.result, key).toEqual({ value: key, n: 1 });
    } finally {
      await a?.close();
      await b?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('a change the server did not finish (it stopped after some nodes had applied it) is finished before anything else', async () => {
    const t3 = await startTestServer({ nodes: 3, config: { checkpointIntervalMs: 25, heartbeatTimeoutMs: 5000 } });
    try {
      await waitFor('every node up', () => t3.server.cluster.info(0).nodes.every((n) => n.status === 'up'), 60_000);
      const members = ['n1', 'n2', 'n3'];
      // A drain of n1 whose change reached n1 and n2 only: n3 (the owner of some of n1's keys after it) did not get it.
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`).filter(
        (k) => ownerOf(`kv:${k}`, members) === 'n1' && ownerOf(`kv:${k}`, ['n2', 'n3']) === 'n3',
      );
      expect(keys.length).toBeGreaterThan(0);
      let last = '';
      for (const key of keys)
        last = (await t3.api('POST', '/api/service', { session: 'w', svc: 'kv', payload: { op: 'put', key, value: key } })).json.id as string;
      await committed(t3, last);
      const control = t3.server.cluster.host.session('interrupted-change');
      const change = { pl: 'view', v: 1, members: ['n2', 'n3'], prev: members };
      for (const n of ['n1', 'n2']) await (await control.request(n, change)).commit();
      // The keys went from n1 to n3, which does not know: every node names another owner, and the reads fail.
      const read = (key: string) => t3.api('POST', '/api/service', { session: `r-${key}`, svc: 'kv', payload: { op: 'get', key } });
      const stuck = await read(keys[0]!);
      expect(stuck.status, JSON.stringify(stuck.json)).toBe(409);
      expect(stuck.json).toMatchObject({ error: { code: 'WrongOwner' } });
      // What a restarted server does first (and every change before it computes the next one): the node behind gets the same change.
      await t3.server.cluster.membership.exclusive('read', () => t3.server.cluster.membership.refresh(true));
      expect((await t3.server.cluster.membership.statusOf('n3')).version).toBe(1);
      for (const key of keys) {
        const r = await read(key);
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        expect(r.json.result, key).toEqual({ value: key, n: 1 });
      }
      // And the drain goes on: n1, out of the placement, is stopped and retired.
      const removed = await t3.api('DELETE', '/api/nodes/n1');
      expect(removed.json).toMatchObject({ ok: true, node: 'n1', members: ['n2', 'n3'] });
    } finally {
      await t3.close();
    }
  }, 120_000);
});
