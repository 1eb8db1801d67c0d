import type { Cut } from '@dse/shared';
import * as net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { EffectRecord } from '../../src/sim/kvapp';
import { PostgresStorage } from '../../src/storage/postgres';
import { MiniCluster } from './mini-cluster';
import { POSTGRES_REQUIRED, POSTGRES_URL, dropSchema, postgresProblem, reportSkip, uniqueSchema } from './pg-env';

/** A TCP proxy in front of PostgreSQL that the test can cut (every connection dropped, new ones refused) and restore. */
class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private down = false;
  private server!: net.Server;
  port = 0;

  constructor(
    private readonly host: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.upstreamPort, this.host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.down = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const covers = (a: Cut, b: Cut): boolean => Object.keys(b).every((n) => (a[n] ?? 0) > (b[n] ?? 0));

const problem = await postgresProblem();

describe('reconnection: PostgreSQL cut off under load, then back', () => {
  if (problem !== null) {
    if (POSTGRES_REQUIRED) {
      it('needs a reachable PostgreSQL (DSE_REQUIRE_POSTGRES=1)', () => {
        expect.fail(`PostgreSQL is required but not reachable at ${POSTGRES_URL}: ${problem}`);
      });
    } else {
      reportSkip('the reconnection test', problem);
      it.skip('runs against PostgreSQL', () => undefined);
    }
    return;
  }

  const schema = uniqueSchema('dse_reconnect');
  afterAll(async () => {
    await dropSchema(schema);
  });

  it('nodes run on speculatively, the cut stops, then resumes with nothing committed lost', async () => {
    const upstream = new URL(POSTGRES_URL);
    const proxy = new CuttableProxy(upstream.hostname, Number(upstream.port || 5432));
    await proxy.start();
    const viaProxy = new URL(POSTGRES_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const db = await PostgresStorage.open({ url: viaProxy.toString(), schema, connectTimeoutMs: 1000, queryTimeoutMs: 5000 });
    const nodes = ['n1', 'n2', 'n3'];
    const cluster = new MiniCluster(db.storage, nodes, { client: 'c', checkpointIntervalMs: 20, pruneIntervalMs: 100, keepEvents: true });
    const committed: { session: string; seq: number; node: string; key: string }[] = [];
    let loadOn = true;
    const loops: Promise<void>[] = [];
    try {
      await cluster.start();
      for (let k = 0; k < 4; k++) {
        const s = cluster.session();
        loops.push(
          (async () => {
            for (let i = 0; loadOn; i++) {
              while (s.openRequests > 20 && loadOn) await sleep(5);
              const node = nodes[(i + k) % nodes.length]!;
              const key = `k${(i + k) % 5}`;
              const r = await s.request(node, { op: 'put', key, value: i });
              r.commit().then(
                () => committed.push({ session: r.session, seq: r.seq, node, key }),
                () => undefined,
              );
              await sleep(2);
            }
          })(),
        );
      }
      await cluster.until(() => committed.length >= 30, 60_000, '30 commits before the cut');

      // Cut the connection. Writes in flight fail; after a moment the cut stands still.
      proxy.cut();
      const failedBefore = cluster.events.filter((e) => e.type === 'checkpointFailed').length;
      // A request made during the outage is answered at once, speculatively.
      const during = await cluster.session().request('n2', { op: 'put', key: 'during', value: 1 });
      await sleep(500);
      const frozen = { ...cluster.coordinator.cut };
      const commitsFrozen = committed.length;
      await sleep(1500);
      expect(cluster.coordinator.cut).toEqual(frozen);
      expect(committed.length).toBe(commitsFrozen);
      // The nodes kept running speculatively, and their writes really failed (and are being retried).
      expect(during.result).toEqual({ len: 1 });
      const failures = cluster.events.filter((e) => e.type === 'checkpointFailed').slice(failedBefore);
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((e) => e.type === 'checkpointFailed' && e.code === 'StorageUnavailable' && !e.definite)).toBe(true);

      // Back: the retried writes go through and the cut moves past where it stood for every node.
      proxy.restore();
      await cluster.until(() => covers(cluster.coordinator.cut, frozen), 60_000, 'the cut to advance after the connection came back');
      // The request answered during the outage commits.
      await during.commit();
      committed.push({ session: during.session, seq: during.seq, node: 'n2', key: 'during' });
      await cluster.until(() => committed.length > commitsFrozen + 10, 60_000, 'more commits after the connection came back');
      loadOn = false;
      await Promise.all(loops);
      await cluster.until(() => cluster.host.allSessions().every((s) => s.openRequests === 0), 60_000, 'every request to commit');
      expect(cluster.coordinator.worldLine).toBe(1); // an outage is not a failure: nothing was rolled back
      expect(
        cluster.host
          .allSessions()
          .flatMap((s) => s.history())
          .filter((h) => h.status === 'rolledBack'),
      ).toEqual([]);
      expect(cluster.fatal).toEqual([]);
    } finally {
      loadOn = false;
      cluster.stop();
      await db.close();
      await proxy.stop();
    }

    // Nothing committed was lost: read the committed state straight from PostgreSQL, not through the proxy.
    const direct = await PostgresStorage.open({ url: POSTGRES_URL, schema });
    try {
      const cut = cluster.coordinator.cut;
      const missing: string[] = [];
      const states = new Map<string, Map<string, unknown>>();
      for (const n of nodes) states.set(n, (await direct.storage.loadCheckpoint(n, cut[n]!))!.state);
      for (const c of committed) {
        const state = states.get(c.node)!;
        const list = ([...state].find(([k]) => k.endsWith(`h:${c.key}`))?.[1] as EffectRecord[] | undefined) ?? [];
        if (list.filter((r) => r.s === c.session && r.q === c.seq && r.i === 0).length !== 1) missing.push(`${c.session}#${c.seq} on ${c.node}/${c.key}`);
      }
      expect(committed.length).toBeGreaterThan(60);
      expect(missing).toEqual([]);
    } finally {
      await direct.close();
    }
  });
});
