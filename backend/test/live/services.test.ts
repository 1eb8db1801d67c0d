import type { ClusterInfo } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrokerEvent, PollResult, Speculative } from '../../src/services';
import { BrokerClient, KvClient, Producer, topicNode as topicNodeOf, travelReservation, WalClient, WorkflowClient } from '../../src/services';
import type { OpenedStorage } from '../../src/storage/open';
import { openStorage } from '../../src/storage/open';
import { dropSchema, POSTGRES_REQUIRED, POSTGRES_URL, postgresProblem, reportSkip, uniqueSchema } from '../storage/pg-env';
import type { TestServer } from './helpers';
import { startTestServer, waitFor } from './helpers';

/**
 * The services on real node processes: a write-ahead log, the key-value store and travel workflows,
 * then the broker, each time with a node SIGKILLed in the middle. On PostgreSQL when one answers, else on PGlite (said below).
 */
const problem = await postgresProblem();
if (problem !== null) {
  if (POSTGRES_REQUIRED) throw new Error(`PostgreSQL is required (DSE_REQUIRE_POSTGRES=1) but not reachable: ${problem}`);
  reportSkip('services on PostgreSQL (running them on PGlite instead)', problem);
}

type Outcome<T> = { status: 'committed'; value: T } | { status: 'rolledBack' } | { status: 'refused' };

/**
 * The durable outcome of a call: committed with its value, definitely rolled back, or refused because
 * an earlier request of its session was rolled back (sticky sessions: it was never sent).
 */
async function decided<T>(p: Promise<Speculative<T>>): Promise<Outcome<T>> {
  try {
    const s = await p;
    return { status: 'committed', value: await s.commit() };
  } catch (e) {
    if (isDseError(e) && e.code === 'RolledBack') return { status: 'rolledBack' };
    if (isDseError(e) && e.code === 'SessionRolledBack') return { status: 'refused' };
    throw e;
  }
}

describe(`services on real node processes (${problem === null ? 'PostgreSQL' : 'PGlite'})`, () => {
  let t: TestServer;
  const schema = uniqueSchema('dse_services');
  const nodes = ['n1', 'n2', 'n3'];
  const cluster = (): ClusterInfo => t.server.cluster.info(0);

  beforeAll(async () => {
    const storage: OpenedStorage | 'pglite' = problem === null ? await openStorage({ kind: 'postgres', databaseUrl: POSTGRES_URL, schema }) : 'pglite';
    t = await startTestServer({
      storage,
      app: 'services',
      nodes: 3,
      config: { checkpointIntervalMs: 20, heartbeatTimeoutMs: 4000, autoRestart: true },
      workload: { kind: 'mixed', rate: 0 },
    });
    await waitFor('every node up', () => cluster().nodes.every((n) => n.status === 'up'), 60_000);
  }, 90_000);

  afterAll(async () => {
    await t?.close();
    if (problem === null) await dropSchema(schema).catch(() => undefined);
  });

  it('log, key-value store and workflows keep their guarantees across a SIGKILL', async () => {
    const host = t.server.cluster.host;
    const wal = new WalClient(host.session(`svc-wal-${Date.now()}`), { nodes, cutView: host });
    const kv = new KvClient(host.session(`svc-kv-${Date.now()}`), { nodes });
    const wf = new WorkflowClient(host.session(`svc-wf-${Date.now()}`), { nodes });

    const appends: Promise<Outcome<{ pos: number }>>[] = [];
    const puts: Promise<Outcome<unknown>>[] = [];
    const flows: Promise<Outcome<{ status: string }>>[] = [];
    const w0 = cluster().worldLine;
    for (let i = 0; i < 30; i++) {
      appends.push(decided(wal.append('audit', { i })));
      puts.push(decided(kv.put(`k${i % 5}`, i)));
      if (i % 5 === 0) {
        const steps = travelReservation(
          `trip-${i}`,
          [
            { kind: 'flight', item: 'LYS-CDG', capacity: null },
            { kind: 'hotel', item: 'ritz', capacity: null },
            { kind: 'payment', item: 'card', capacity: null, decline: i === 10 },
          ],
          nodes,
        );
        flows.push(decided(wf.run(`trip-${i}`, steps)));
      }
      if (i === 12) {
        // A node dies in the middle of everything.
        const victim = cluster().nodes.find((n) => n.id === 'n2')!;
        process.kill(victim.pid!, 'SIGKILL');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor('the new world-line', () => cluster().worldLine > w0, 30_000);
    await waitFor('n2 back up', () => cluster().nodes.find((n) => n.id === 'n2')?.status === 'up', 60_000);

    // Every call is decided: committed or definitely rolled back, nothing left hanging.
    const a = await Promise.all(appends);
    const p = await Promise.all(puts);
    const f = await Promise.all(flows);
    expect(a.length + p.length + f.length).toBe(30 + 30 + 6);

    // Write-ahead log: the committed prefix holds exactly the committed appends, at their positions.
    const committedAppends = a.flatMap((o) => (o.status === 'committed' ? [o.value.pos] : []));
    expect(committedAppends.length).toBeGreaterThan(0);
    const reader = new WalClient(host.session(`svc-wal-reader-${Date.now()}`), { nodes, cutView: host });
    await waitFor('the cut to cover the committed appends', () => (host.cut[reader.nodeOf('audit')] ?? 0) > 0, 30_000);
    const read = await reader.read('audit', { committed: true, max: 1000 });
    const positions = read.value.entries.map((e) => e.pos);
    for (const pos of committedAppends) expect(positions).toContain(pos);
    expect(new Set(positions).size).toBe(positions.length);
    // The committed prefix never changes: read it again later, after more appends.
    await decided(reader.append('audit', { i: 'late' }));
    const again = await reader.read('audit', { committed: true, max: 1000 });
    expect(again.value.entries.slice(0, read.value.entries.length)).toEqual(read.value.entries);

    // Workflows: each one completed or failed (the declined payment), compensations with it.
    for (const o of f) {
      if (o.status !== 'committed') continue;
      expect(['completed', 'failed']).toContain(o.value.status);
    }
    expect(f.some((o) => o.status === 'committed')).toBe(true);

    // Key-value store: a committed read of each key gives the last committed write, or a later one.
    // (The session may be rolled back by the kill: the client acknowledges it first.)
    kv.resume();
    const reads = await Promise.all([0, 1, 2, 3, 4].map((k) => decided(kv.get(`k${k}`))));
    for (const r of reads) expect(r.status).toBe('committed');
    expect(p.some((o) => o.status === 'committed')).toBe(true);
  });

  it('broker: every committed publish is in the topic once, in order per producer; committed polls deliver once, across a SIGKILL', async () => {
    await waitFor('every node up', () => cluster().nodes.every((n) => n.status === 'up'), 60_000);
    const host = t.server.cluster.host;
    const stamp = Date.now();
    const topic = 'orders';
    const client = (name: string): BrokerClient => new BrokerClient(host.session(`svc-br-${name}-${stamp}`), { nodes, cutView: host });
    const producers = [new Producer(client('p1'), topic, 'p1'), new Producer(client('p2'), topic, 'p2')];
    const topicNode = topicNodeOf(topic, nodes);
    const perProducer = 20;
    const w0 = cluster().worldLine;

    // Consumers: one speculative and one committed-only group, polling until the producers are done.
    let producing = true;
    const delivered: Record<string, Promise<Outcome<PollResult>>[]> = { spec: [], comm: [] };
    const consume = async (group: 'spec' | 'comm'): Promise<void> => {
      const c = client(`c-${group}`);
      while (producing) {
        try {
          const r = await c.poll(topic, group, { max: 5, committed: group === 'comm' });
          delivered[group]!.push(decided(Promise.resolve(r)));
        } catch (e) {
          // A rolled-back poll, or the polls refused after it until the consumer acknowledges (resume).
          if (isDseError(e) && e.code === 'SessionRolledBack') c.resume();
          else if (!isDseError(e) || e.code !== 'RolledBack') throw e;
        }
        await new Promise((r) => setTimeout(r, 15));
      }
    };
    const consumers = [consume('spec'), consume('comm')];

    let duplicate: Speculative<{ offset: number | null; duplicate: boolean }> | null = null;
    const produce = async (p: Producer, k: number): Promise<void> => {
      for (let i = 1; i <= perProducer; i++) {
        await p.send({ p: p.id, i });
        if (k === 0 && i === 3) {
          // A producer retrying seq 3 (as after a lost answer): the broker drops it.
          duplicate = await client('p1-retry').publish(topic, p.id, 3, { p: p.id, i: 3, retry: true });
        }
        if (k === 0 && i === 10) {
          // The topic's node dies in the middle of the stream.
          process.kill(cluster().nodes.find((n) => n.id === topicNode)!.pid!, 'SIGKILL');
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await Promise.all(producers.map((p, k) => produce(p, k)));
    await waitFor('the new world-line', () => cluster().worldLine > w0, 30_000);
    await waitFor(`${topicNode} back up`, () => cluster().nodes.find((n) => n.id === topicNode)?.status === 'up', 60_000);
    // Publish again whatever a recovery took back, until every event is committed.
    const end = Date.now() + 60_000;
    while (producers.some((p) => p.uncommitted > 0)) {
      if (Date.now() > end) throw new Error(`events still uncommitted: ${producers.map((p) => `${p.id} ${p.uncommitted}`).join(', ')}`);
      for (const p of producers) await p.flush();
      await new Promise((r) => setTimeout(r, 50));
    }
    producing = false;
    await Promise.all(consumers);

    expect(duplicate).not.toBeNull();
    expect(duplicate!.value).toEqual({ offset: null, duplicate: true });

    // The whole topic, committed only, through a fresh group.
    await waitFor('the cut to cover the topic', () => (host.cut[topicNode] ?? 0) > 0, 30_000);
    const reader = client('reader');
    const events: BrokerEvent[] = [];
    for (;;) {
      const r = await reader.poll(topic, 'check', { max: 1000, committed: true });
      if (r.value.events.length === 0) break;
      events.push(...r.value.events);
    }
    expect(events.map((e) => e.offset)).toEqual(events.map((_, i) => i));
    for (const p of producers) {
      const mine = events.filter((e) => e.producer === p.id);
      // Every event, exactly once, in order (seq 1..20), with its own data (not the retry's).
      expect(mine.map((e) => e.seq)).toEqual(Array.from({ length: perProducer }, (_, i) => i + 1));
      expect(mine.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: perProducer }, (_, i) => i + 1));
    }
    expect(events).toHaveLength(2 * perProducer);

    // Each group's committed polls handed out each offset at most once, in order.
    for (const group of ['spec', 'comm'] as const) {
      const outcomes = await Promise.all(delivered[group]!);
      const got = outcomes.flatMap((o) => (o.status === 'committed' ? o.value.events.map((e) => e.offset) : []));
      expect(got, group).toEqual(got.map((_, i) => i));
      expect(
        outcomes.some((o) => o.status === 'committed' && o.value.events.length > 0),
        group,
      ).toBe(true);
    }
  }, 180_000);
});
