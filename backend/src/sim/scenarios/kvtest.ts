import type { NodeId } from '@dse/shared';
import { fromJson, isDseError, toJson } from '@dse/shared';
import type { Session } from '../../core/session';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { EffectRecord, KvOp } from '../kvapp';
import { kvApp } from '../kvapp';
import type { Scenario, ScenarioChecks, ScenarioRun, WorkloadEnv } from '../scenario';

/**
 * The simulator's own test app (the default scenario): single puts and gets, chains of 1–3 hops
 * from node to node and back, and sthreads that call 1–3 nodes and merge; a quarter of the answers are
 * awaited until committed (commit on demand). Every effect is a record
 * naming its request, so that the checker sees what survived, what was lost and what was doubled.
 */
export const kvtestScenario: Scenario = makeKvtestScenario();

/** Shapes of the kvtest workload; the defaults are the simulator's. */
export interface KvtestOptions {
  /** Hops of a chain or an sthread: drawn uniformly in [min, max]. */
  hopsMin?: number;
  hopsMax?: number;
  /** Share of requests that are sthreads (the rest split as by default); default 0.2. */
  sthreadShare?: number;
}

/** The kvtest scenario with another workload shape (long sthreads, say); same app, same checks. */
export function makeKvtestScenario(opts: KvtestOptions = {}): Scenario {
  const hopsMin = opts.hopsMin ?? 1;
  const hopsMax = opts.hopsMax ?? 3;
  const sthreadShare = opts.sthreadShare ?? 0.2;
  return {
    name: 'kvtest',
    app: kvApp,
    workloadMs: (requestsPerSession) => requestsPerSession * 12 * Math.max(1, hopsMax / 3),
    createRun(): ScenarioRun {
      let sessionsDone = 0;
      let total = -1;
      return {
        checks: kvtestChecks,
        start(env: WorkloadEnv): Session[] {
          const { rng, nodes: nodeIds } = env;
          const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
          const randomOp = (): KvOp => {
            const key = rng.pick(keys);
            const x = rng.next();
            const rest = (1 - sthreadShare) / 0.8;
            if (x < 0.4 * rest) return { op: 'put', key, value: rng.int(0, 1000) };
            if (x < 0.5 * rest) return { op: 'get', key };
            const hops = Array.from({ length: rng.int(hopsMin, hopsMax) }, () => rng.pick(nodeIds));
            return x < 0.8 * rest ? { op: 'chain', key, hops } : { op: 'sthread', key, hops };
          };
          total = env.sessions;
          const sessions = Array.from({ length: env.sessions }, () => env.host.session());
          for (const s of sessions) {
            void (async () => {
              for (let k = 0; k < env.requestsPerSession; k++) {
                await env.sleep(rng.next() * 4);
                try {
                  const answer = await s.request(rng.pick(nodeIds), toJson(randomOp()));
                  // A client that waits for the commit now and then (commit on demand asks the nodes to
                  // persist at once); the others go on speculatively.
                  if (rng.chance(0.25)) await answer.commit();
                } catch (e) {
                  if (isDseError(e) && e.code === 'SessionRolledBack') s.resume();
                  else if (!isDseError(e) || (e.code !== 'RolledBack' && e.code !== 'NodeRemoved')) throw e;
                }
              }
              sessionsDone++;
            })();
          }
          return sessions;
        },
        done: () => sessionsDone === total,
      };
    },
  };
}

const kvtestChecks: ScenarioChecks = {
  /** No orphans: a restored node holds no record applied above its cut version. */
  onRestored(c: Checker, node: NodeId, toVersion: number, view: NodeView, t: number): void {
    for (const [key, value] of view.appState) {
      if (!Array.isArray(value)) continue;
      for (const rec of fromJson<EffectRecord[]>(value)) {
        if (rec.v > toVersion) {
          c.fail('no-orphans', `${node} restored to ${toVersion} still holds ${key} record ${rec.s}#${rec.q} applied at ${rec.v} in world-line ${rec.w}`, t);
        }
      }
    }
  },

  /**
   * Committed effects present exactly once, rolled-back ones absent, no records of requests never sent,
   * and every committed answer explained by the committed history (see `checkAnswer`).
   */
  finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>): void {
    for (const o of outcomes) if (o.status === 'committed') checkAnswer(c, t, o, views.get(o.node));
    const found = new Map<string, { node: NodeId; key: string; i: number }[]>();
    for (const [n, view] of views) {
      for (const [key, value] of view.appState) {
        if (!Array.isArray(value)) continue;
        for (const rec of fromJson<EffectRecord[]>(value)) {
          const id = `${rec.s}#${rec.q}`;
          let l = found.get(id);
          if (l === undefined) found.set(id, (l = []));
          l.push({ node: n, key, i: rec.i });
        }
      }
    }
    for (const o of outcomes) {
      const id = `${o.session}#${o.seq}`;
      const recs = found.get(id) ?? [];
      found.delete(id);
      const op = fromJson<KvOp>(o.payload);
      if (o.status === 'committed') {
        for (const [node, key, i] of expectedRecords(o.node, op)) {
          const n = recs.filter((r) => r.node === node && r.key === key && r.i === i).length;
          if (n === 0) c.fail('durability', `committed request ${id} (${op.op}) lost its effect ${key}/${i} on ${node}`, t);
          if (n > 1) c.fail('exactly-once', `committed request ${id} (${op.op}) applied ${n} times: ${key}/${i} on ${node}`, t);
        }
        const expected = expectedRecords(o.node, op).length;
        if (recs.length > expected) c.fail('exactly-once', `committed request ${id} (${op.op}) left ${recs.length} records, expected ${expected}`, t);
      } else if (o.status === 'rolledBack' || o.status === 'refused') {
        if (recs.length > 0)
          c.fail('no-orphans', `rolled-back request ${id} (${op.op}) left ${recs.length} records, e.g. ${recs[0]!.key}/${recs[0]!.i} on ${recs[0]!.node}`, t);
      }
    }
    for (const [id, recs] of found) {
      c.fail('no-orphans', `records of ${id}, which no session sent, on ${recs[0]!.node}`, t);
    }
  },
};

/**
 * A committed answer must be the one the committed history gives: a put's `len` is its record's place in
 * the key's list on its node (records are only ever appended; a rollback drops a suffix); a get's `len`
 * counts the records applied before the version it ran in, and at most those applied in that version
 * too; a chain answers its hop count, an sthread its step count.
 */
function checkAnswer(c: Checker, t: number, o: RequestOutcome, view: NodeView | undefined): void {
  const op = fromJson<KvOp>(o.payload);
  const id = `${o.session}#${o.seq}`;
  const got = JSON.stringify(o.result);
  const bad = (expected: string): void =>
    c.fail('kv-history', `committed request ${id} (${op.op} ${op.key} on ${o.node}) was answered ${got}; the committed history says ${expected}`, t);
  const list = ((view?.appState.get(`h:${op.key}`) as EffectRecord[] | undefined) ?? []).filter((r) => r.i === 0);
  switch (op.op) {
    case 'put': {
      const at = list.findIndex((r) => r.s === o.session && r.q === o.seq);
      if (at >= 0 && got !== JSON.stringify({ len: at + 1 })) bad(JSON.stringify({ len: at + 1 }));
      return;
    }
    case 'get': {
      const v = o.deps[o.node] ?? 0;
      const before = list.filter((r) => r.v < v).length;
      const upTo = list.filter((r) => r.v <= v).length;
      const len = (o.result as { len?: unknown } | null)?.len;
      if (typeof len !== 'number' || len < before || len > upTo) bad(`between ${before} and ${upTo} records at version ${v}`);
      return;
    }
    case 'chain':
      if (got !== JSON.stringify({ hops: op.hops.length })) bad(JSON.stringify({ hops: op.hops.length }));
      return;
    case 'sthread':
      if (got !== JSON.stringify({ steps: op.hops.length })) bad(JSON.stringify({ steps: op.hops.length }));
      return;
  }
}

/** The records a committed request leaves: [node, key, hop index]. */
function expectedRecords(entry: NodeId, op: KvOp): [NodeId, string, number][] {
  switch (op.op) {
    case 'put':
      return [[entry, `h:${op.key}`, 0]];
    case 'get':
      return [];
    case 'chain':
    case 'sthread':
      return [[entry, `h:${op.key}`, 0], ...op.hops.map((h, i): [NodeId, string, number] => [h, `x:${op.key}`, i + 1])];
  }
}
