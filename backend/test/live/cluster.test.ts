import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClusterInfo, NodeInfo } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestOutcome } from '../../src/sim/checker';
import { Checker } from '../../src/sim/checker';
import type { TestServer } from './helpers';
import { alive, startTestServer, waitFor } from './helpers';

/**
 * The real server with real node processes on PGlite (a temp folder): failures by SIGKILL and SIGSTOP,
 * the API against a running cluster. One server for the file (starting node processes is slow here).
 */

let t: TestServer;
const stopped: number[] = [];
/**
 * The simulator's invariant checker on the live run: the cut against what the storage itself made
 * durable (reported by the server's storage calls), world-lines never starting below the committed
 * cut, and at the end every session's requests decided and their survivors a prefix.
 */
const checker = new Checker(() => undefined);

const cluster = (): ClusterInfo => t.server.cluster.info(t.server.stream.lastEvent);
const node = (id: string): NodeInfo | undefined => cluster().nodes.find((n) => n.id === id);
const allUp = (): boolean => cluster().nodes.every((n) => n.status === 'up');

/** Waits until every node's committed version is above what it is now: the cut moves on every node. */
async function cutAdvancesEverywhere(what: string): Promise<void> {
  const before = { ...cluster().cut };
  const worldLine = cluster().worldLine;
  await waitFor(
    what,
    () => {
      const c = cluster();
      return c.worldLine === worldLine && c.nodes.every((n) => (c.cut[n.id] ?? 0) > (before[n.id] ?? 0));
    },
    45_000,
  );
}

beforeAll(async () => {
  t = await startTestServer({
    onDurable: (records) => checker.onDurable(records),
    nodes: 3,
    config: { checkpointIntervalMs: 20, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 3000, autoRestart: false },
    workload: { kind: 'chain', rate: 20 },
  });
  for (const e of t.events) checker.onEvent(e);
  t.server.stream.onEvent((e) => checker.onEvent(e));
  await waitFor('every node up', allUp, 60_000);
}, 90_000);

afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await t?.close();
});

describe('live cluster: failures', () => {
  it('SIGKILL of a node: nodeFailed, a new world-line, rollbacks; after a restart the cut advances again', async () => {
    await cutAdvancesEverywhere('the cut to advance on every node');
    const w = cluster().worldLine;
    const pid = node('n2')!.pid!;
    const from = t.events.length;
    process.kill(pid, 'SIGKILL');

    const failed = await waitFor('nodeFailed n2', () => t.find('nodeFailed', (e) => e.node === 'n2', from));
    expect(failed.reason).toBe('exit');
    const wl = await waitFor('worldLineChanged', () => t.find('worldLineChanged', (e) => e.worldLine === w + 1, from));
    expect(wl.failed).toContain('n2');
    // Survivors restore to their cut version on the new world-line.
    await waitFor(
      'rollback of n1 and n3',
      () =>
        t.find('rollback', (e) => e.node === 'n1' && e.worldLine === w + 1, from) && t.find('rollback', (e) => e.node === 'n3' && e.worldLine === w + 1, from),
    );
    expect(node('n2')!.status).toBe('down');
    expect(node('n2')!.pid).toBeNull();
    // The workload's requests carried on n1/n3 while n2 was down: some commit on the new world-line.
    await waitFor('a commit on the new world-line', () => t.find('sessionResult', (e) => e.status === 'committed' && e.worldLine === w + 1, from));

    const r = await t.api('POST', '/api/nodes/n2/restart');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ ok: true, node: 'n2' });
    await waitFor('nodeRestarted n2', () => t.find('nodeRestarted', (e) => e.node === 'n2', from), 60_000);
    await waitFor('n2 up', () => node('n2')?.status === 'up', 60_000);
    expect(node('n2')!.pid).not.toBe(pid);
    await cutAdvancesEverywhere('the cut to advance again on every node after the restart');
  });

  it('kill through the API is a SIGKILL reported as killed; the rollback discards versions above the cut', async () => {
    await waitFor('every node up', allUp, 60_000);
    const w = cluster().worldLine;
    const pid = node('n3')!.pid!;
    const from = t.events.length;
    const r = await t.api('POST', '/api/nodes/n3/kill');
    expect(r.json).toMatchObject({ ok: true, node: 'n3' });
    await waitFor('nodeFailed n3 (killed)', () => t.find('nodeFailed', (e) => e.node === 'n3' && e.reason === 'killed', from));
    const exited = await waitFor('the process exit', () => t.find('nodeProcess', (e) => e.node === 'n3' && e.state === 'exited', from));
    expect(exited.signal).toBe('SIGKILL');
    expect(alive(pid)).toBe(false);
    await waitFor('world-line w+1', () => t.find('worldLineChanged', (e) => e.worldLine === w + 1, from));
    // With 20 ms checkpoints and a chain workload, survivors had speculative versions above the cut.
    await waitFor('rollbacks on the new world-line', () => t.find('rollback', (e) => e.worldLine === w + 1 && e.node !== 'n3', from));
    const killAgain = await t.api('POST', '/api/nodes/n3/kill');
    expect(killAgain.status).toBe(409);
    expect(killAgain.json).toMatchObject({ error: { code: 'Conflict', definite: true } });
    await t.api('POST', '/api/nodes/n3/restart');
    await waitFor('n3 up', () => node('n3')?.status === 'up', 60_000);
    await cutAdvancesEverywhere('the cut to advance after n3 restarted');
  });

  it('SIGSTOP of a node is detected by missed heartbeats; the hung process is killed; automatic restart brings it back', async () => {
    await waitFor('every node up', allUp, 60_000);
    await t.api('POST', '/api/config', { autoRestart: true, autoRestartDelayMs: 100 });
    const w = cluster().worldLine;
    const pid = node('n1')!.pid!;
    const from = t.events.length;
    stopped.push(pid);
    process.kill(pid, 'SIGSTOP');
    const failed = await waitFor('nodeFailed n1 by heartbeat', () => t.find('nodeFailed', (e) => e.node === 'n1', from), 30_000);
    expect(failed.reason).toBe('heartbeat');
    await waitFor('world-line w+1', () => t.find('worldLineChanged', (e) => e.worldLine === w + 1, from));
    await waitFor('the hung process killed', () => !alive(pid) || undefined, 15_000);
    await waitFor('n1 restarted automatically', () => t.find('nodeRestarted', (e) => e.node === 'n1', from), 60_000);
    await waitFor('n1 up with a new process', () => node('n1')?.status === 'up' && node('n1')?.pid !== pid, 60_000);
    await t.api('POST', '/api/config', { autoRestart: false });
    await cutAdvancesEverywhere('the cut to advance after the automatic restart');
  });
});

describe('live cluster: durability', () => {
  it('a committed write survives the SIGKILL of its node; a speculative one is either committed or reported rolled back', async () => {
    await waitFor('every node up', allUp, 60_000);
    const put = await t.api('POST', '/api/requests', { session: 'dur', op: 'put', key: 'ledger', value: { amount: 42 } });
    const owner = put.json.node as string;
    const id = put.json.id as string;
    await waitFor('the put to commit', () => t.server.cluster.host.session(`dur@${t.server.cluster.bootId}`).openRequests === 0, 30_000);
    expect((await t.api('GET', `/api/requests/${id}`)).json.status).toBe('committed');
    // A second write, killed while (probably) still speculative.
    const put2 = await t.api('POST', '/api/requests', { session: 'dur', op: 'put', key: 'ledger', value: { amount: 43 } });
    const id2 = put2.json.id as string;
    const from = t.events.length;
    process.kill(node(owner)!.pid!, 'SIGKILL');
    await waitFor('the failure', () => t.find('worldLineChanged', (e) => e.failed.includes(owner), from));
    await t.api('POST', `/api/nodes/${owner}/restart`);
    await waitFor(`${owner} up`, () => node(owner)?.status === 'up', 60_000);
    let second = 'speculative';
    for (let i = 0; second === 'speculative'; i++) {
      second = String((await t.api('GET', `/api/requests/${id2}`)).json.status);
      if (i > 600) throw new Error('the second put was never decided');
      if (second === 'speculative') await new Promise((r) => setTimeout(r, 50));
    }
    expect(['committed', 'rolled-back']).toContain(second);
    // On PGlite the server owns the database: the nodes' checkpoints go through it.
    expect(t.server.cluster.storageCallsServed).toBeGreaterThan(0);
    if (second === 'rolled-back') {
      // The session stays rolled back until the client acknowledges it.
      const refused = await t.api('POST', '/api/requests', { session: 'dur', op: 'get', key: 'ledger' });
      expect(refused.status).toBe(409);
      expect(refused.json).toMatchObject({ error: { code: 'SessionRolledBack', definite: true } });
      expect((await t.api('POST', '/api/sessions/dur/resume')).json).toEqual({ ok: true, session: 'dur', resumed: true });
    }
    const read = await t.api('POST', '/api/requests', { session: 'dur', op: 'get', key: 'ledger' });
    expect(read.json.result).toEqual({ key: 'ledger', value: { amount: second === 'committed' ? 43 : 42 } });
    const committed = await t.api('POST', '/api/requests', { op: 'get', key: 'ledger', committedOnly: true });
    const v = (committed.json.result as { value: { amount: number } }).value.amount;
    expect(second === 'committed' ? [43] : [42]).toContain(v);
  });
});

describe('live cluster: API', () => {
  it('health, cluster and config', async () => {
    expect((await t.api('GET', '/api/health')).json).toEqual({ ok: true });
    const c = await t.api('GET', '/api/cluster');
    expect(c.status).toBe(200);
    expect(c.json).toMatchObject({ ok: true, mode: 'speculative' });
    const nodes = c.json.nodes as NodeInfo[];
    expect(nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
    for (const n of nodes) {
      expect(['up', 'down', 'recovering']).toContain(n.status);
      // A recovering node says what it waits for; no other does.
      if (n.status === 'recovering') expect(['connecting', 'coordinator', 'restoring']).toContain(n.waitingFor);
      else expect(n.waitingFor).toBeUndefined();
      expect(typeof n.version).toBe('number');
      expect(n.committedVersion).toBeLessThanOrEqual(n.persistedVersion + 1);
    }
    const from = t.events.length;
    const cfg = await t.api('POST', '/api/config', { checkpointIntervalMs: 30, networkDelayMs: 2, networkJitterMs: 2 });
    expect(cfg.json).toMatchObject({ ok: true, config: { checkpointIntervalMs: 30, networkDelayMs: 2, networkJitterMs: 2 } });
    await waitFor('configChanged', () => t.find('configChanged', (e) => e.config.checkpointIntervalMs === 30, from));
    const back = await t.api('POST', '/api/config', { checkpointIntervalMs: 20, networkDelayMs: 0, networkJitterMs: 0 });
    expect(back.status).toBe(200);
    const g = await t.api('GET', '/api/config');
    expect(g.json).toMatchObject({ ok: true, config: { checkpointIntervalMs: 20 }, workload: { kind: 'chain', rate: 20 } });
  });

  it('requests: a put answered speculatively then committed; a get reads the session’s own write; committedOnly reads the cut', async () => {
    await waitFor('every node up', allUp, 60_000);
    const put = await t.api('POST', '/api/requests', { session: 'alice', op: 'put', key: 'colour', value: 'blue' });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ ok: true, session: 'alice', op: 'put', key: 'colour', status: 'speculative' });
    const id = put.json.id as string;
    const get = await t.api('POST', '/api/requests', { session: 'alice', op: 'get', key: 'colour' });
    expect(get.json).toMatchObject({ ok: true, result: { key: 'colour', value: 'blue' } });
    // The commit follows; GET /api/requests/:id reports it.
    for (let i = 0; ; i++) {
      const r = await t.api('GET', `/api/requests/${id}`);
      expect(r.json).toMatchObject({ ok: true, id, session: 'alice', seq: 1 });
      if (r.json.status === 'committed') break;
      expect(r.json.status).toBe('speculative');
      if (i > 600) throw new Error('the put never committed');
      await new Promise((res) => setTimeout(res, 50));
    }
    const co = await t.api('POST', '/api/requests', { op: 'get', key: 'colour', committedOnly: true });
    expect(co.json).toMatchObject({ ok: true, status: 'committed', result: { key: 'colour', value: 'blue' } });
    const fresh = await t.api('POST', '/api/requests', { op: 'get', key: 'never-written' });
    expect(fresh.json).toMatchObject({ ok: true, result: { key: 'never-written', value: null } });
    expect(typeof fresh.json.session).toBe('string');
    const missing = await t.api('GET', '/api/requests/r999999');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: { code: 'NotFound', definite: true } });
  });

  it('workload on and off; add and remove a node; a node process started by hand joins over the network', async () => {
    const off = await t.api('POST', '/api/workload', { rate: 0 });
    expect(off.json).toMatchObject({ ok: true, workload: { kind: 'chain', rate: 0 } });
    const on = await t.api('POST', '/api/workload', { kind: 'mixed', rate: 10 });
    expect(on.json).toMatchObject({ ok: true, workload: { kind: 'mixed', rate: 10 } });

    const add = await t.api('POST', '/api/nodes', {});
    expect(add.json).toMatchObject({ ok: true, node: 'n4' });
    await waitFor('n4 up', () => node('n4')?.status === 'up', 60_000);
    const pid4 = node('n4')!.pid!;
    const del = await t.api('DELETE', '/api/nodes/n4');
    expect(del.json).toMatchObject({ ok: true, node: 'n4' });
    await waitFor('n4 removed', () => node('n4') === undefined && t.find('nodeRemoved', (e) => e.node === 'n4'));
    await waitFor('its process gone', () => !alive(pid4) || undefined, 15_000);

    // `npm run node -- --server URL --id ID`: a process the server did not spawn joins as a remote node.
    const main = fileURLToPath(new URL('../../src/live/node-main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, '--server', t.server.url, '--id', 'ext1'], { stdio: 'ignore' });
    try {
      await waitFor('ext1 up', () => node('ext1')?.status === 'up', 60_000);
      expect(node('ext1')!.origin).toBe('remote');
      expect(node('ext1')!.pid).toBe(child.pid);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const rm = await t.api('DELETE', '/api/nodes/ext1');
      expect(rm.json).toMatchObject({ ok: true });
      // Its connection is cut and it exits by itself.
      expect(await exited).not.toBe(0);
      await waitFor('ext1 removed', () => node('ext1') === undefined);
    } finally {
      child.kill('SIGKILL');
    }
    await t.api('POST', '/api/workload', { kind: 'chain', rate: 20 });
    await waitFor('every node up', allUp, 60_000);
    await cutAdvancesEverywhere('the cut to advance after the membership changes');
  });

  it('mode and cut changes restart the nodes in the new setting (a new world-line), and the cut advances', async () => {
    const w = cluster().worldLine;
    const committedBefore = { ...cluster().cut };
    const from = t.events.length;
    const r = await t.api('POST', '/api/config', { mode: 'durable' });
    expect(r.json).toMatchObject({ ok: true, config: { mode: 'durable' } });
    await waitFor('modeChanged', () => t.find('modeChanged', (e) => e.mode === 'durable', from));
    expect(cluster().worldLine).toBeGreaterThan(w);
    // Nothing that was committed is lost by the switch: the new world-line starts at or above the cut.
    const start = t.find('worldLineChanged', (e) => e.worldLine > w, from)!;
    for (const n of Object.keys(committedBefore)) expect(start.cut[n] ?? 0).toBeGreaterThanOrEqual(committedBefore[n]!);
    await waitFor('every node up', allUp, 60_000);
    await cutAdvancesEverywhere('the cut to advance in durable mode');
    const back = await t.api('POST', '/api/config', { mode: 'speculative', cut: 'cheap' });
    expect(back.json).toMatchObject({ ok: true, config: { mode: 'speculative', cut: 'cheap' } });
    await waitFor('every node up', allUp, 60_000);
    await cutAdvancesEverywhere('the cut to advance with the cheap cut');
    await t.api('POST', '/api/config', { cut: 'exact' });
    await waitFor('every node up', allUp, 60_000);
  });
});

describe('live cluster: invariants over the whole run', () => {
  it('the cut only ever held durable versions with their dependencies; every request decided; survivors a prefix per session', async () => {
    await t.api('POST', '/api/workload', { rate: 0 });
    await waitFor('every node up', allUp, 60_000);
    const members = new Set(cluster().nodes.map((n) => n.id));
    // Requests sent to nodes removed since (n4, ext1) never get an answer: their sessions are left out.
    const sessions = t.server.cluster.host.allSessions().filter((s) => s.history().every((r) => members.has(r.node)));
    await waitFor('every request decided', () => sessions.every((s) => s.openRequests === 0), 60_000);
    const outcomes: RequestOutcome[] = sessions.flatMap((s) => s.history());
    expect(outcomes.filter((o) => o.status === 'committed').length).toBeGreaterThan(10);
    // The kills above rolled back requests in flight (in some session).
    expect(t.server.cluster.host.allSessions().some((s) => s.history().some((o) => o.status === 'rolledBack'))).toBe(true);
    checker.finish(t.server.cluster.clock.now(), outcomes, [...members], true);
    // A removed node leaves the cut (the coordinator's `removeNode`); the simulator's checker knows no
    // removals and reads that as the node's cut going back to 0. Only exactly that is set aside.
    const removed = new Set(t.events.filter((e) => e.type === 'nodeRemoved').map((e) => (e as { node: string }).node));
    const violations = checker.violations
      .filter((v) => {
        const m = /^cut of (\S+) went back from \d+ to 0 within world-line \d+$/.exec(v.message);
        return !(v.invariant === 'cut-safety' && m !== null && removed.has(m[1]!));
      })
      .map((v) => `${v.invariant}: ${v.message}`);
    expect(violations, checker.recentTrace().join('\n')).toEqual([]);
  });
});
