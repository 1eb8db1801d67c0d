import type { Json, NodeId } from '@dse/shared';
import { fromJson } from '@dse/shared';
import { servicesApp } from '../../services';
import { jsonEqual } from '../../services/common';
import type { KvRecord } from '../../services/kv';
import { KV_PREFIX, KvClient, kvKey, kvNode } from '../../services/kv';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { Scenario, ScenarioRun, WorkloadEnv } from '../scenario';
import { checkRecordVersions, membersOf, orRolledBack, outcomesOf, SessionLoops } from './common';

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'];

/**
 * Key-value store: sessions get, put, delete and compare-and-set eight keys sharded over the nodes.
 * Invariant `kv-history`: per key, the committed writes are numbered 1..N without gap or repeat and
 * the final state is write N; every committed read and compare-and-set saw exactly the value of the
 * committed write it names; a session's committed results never go back in a key's history (it reads
 * its own writes); a key lives on its shard only.
 */
export const kvScenario: Scenario = {
  name: 'kv',
  app: servicesApp,
  workloadMs: (requestsPerSession) => requestsPerSession * 12,
  createRun(): ScenarioRun {
    const loops = new SessionLoops();
    let world: WorkloadEnv | null = null;
    return {
      start(env: WorkloadEnv) {
        world = env;
        const { rng } = env;
        return loops.start(env, async (s) => {
          const kv = new KvClient(s, { nodes: env.nodes, placement: env.placement });
          /** The value this session last saw per key: compare-and-set expects it. */
          const seen = new Map<string, Json>();
          for (let k = 0; k < env.requestsPerSession; k++) {
            await env.sleep(rng.next() * 4);
            const key = rng.pick(KEYS);
            const x = rng.next();
            if (x < 0.3) {
              const r = await orRolledBack(kv, kv.get(key));
              if (r !== null) seen.set(key, r.value.value);
            } else if (x < 0.65) {
              const value = rng.int(0, 1000);
              if ((await orRolledBack(kv, kv.put(key, value))) !== null) seen.set(key, value);
            } else if (x < 0.75) {
              if ((await orRolledBack(kv, kv.delete(key))) !== null) seen.set(key, null);
            } else {
              const value = rng.chance(0.2) ? null : rng.int(0, 1000);
              const r = await orRolledBack(kv, kv.cas(key, seen.get(key) ?? null, value));
              if (r !== null) seen.set(key, r.value.ok ? value : r.value.value);
            }
          }
        });
      },
      done: () => loops.allDone,
      checks: {
        onRestored(c: Checker, node: NodeId, toVersion: number, view: NodeView, t: number): void {
          checkRecordVersions(c, node, toVersion, view, t, [KV_PREFIX]);
        },
        finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>): void {
          loops.report(c, t);
          checkKvHistory(c, t, outcomes, views, membersOf(world));
        },
      },
    };
  },
};

function checkKvHistory(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>, nodes: readonly NodeId[]): void {
  const ops = outcomesOf(outcomes, 'kv').filter(({ o }) => o.status === 'committed');
  const fail = (m: string): void => c.fail('kv-history', m, t);
  for (const key of KEYS) {
    const shard = kvNode(key, nodes);
    for (const [n, view] of views) {
      if (n !== shard && view.appState.has(kvKey(key))) fail(`key ${key} lives on ${shard} but ${n} holds it too`);
    }
    const mine = ops.filter(({ p }) => p.key === key);
    // The committed writes, by number.
    const writes = new Map<number, { value: Json; id: string }>();
    for (const { o, p, r } of mine) {
      const id = `${o.session}#${o.seq}`;
      let value: Json | undefined;
      if (p.op === 'put') value = p.value!;
      else if (p.op === 'delete') value = null;
      else if (p.op === 'cas' && r.ok === true) value = p.value ?? null;
      if (value === undefined) continue;
      const n = r.n as number;
      const other = writes.get(n);
      if (other !== undefined) fail(`key ${key}: committed writes ${other.id} and ${id} are both write #${n}`);
      writes.set(n, { value, id });
    }
    const rec = fromJson<KvRecord | undefined>(views.get(shard)?.appState.get(kvKey(key)));
    const last = rec?.n ?? 0;
    for (let n = 1; n <= last; n++) if (!writes.has(n)) fail(`key ${key}: write #${n} in the final state comes from no committed request`);
    for (const [n, w] of writes) if (n > last) fail(`key ${key}: committed write #${n} (${w.id}) is lost: the final state has ${last} writes`);
    if (last > 0 && writes.has(last) && !jsonEqual(writes.get(last)!.value, rec!.x)) {
      fail(`key ${key}: the final value ${JSON.stringify(rec!.x)} is not that of its last write #${last} (${JSON.stringify(writes.get(last)!.value)})`);
    }
    const valueAt = (n: number): Json | undefined => (n === 0 ? null : writes.get(n)?.value);
    for (const { o, p, r } of mine) {
      const id = `${o.session}#${o.seq}`;
      if (p.op === 'get') {
        const n = r.n as number;
        const expected = valueAt(n);
        if (expected === undefined || !jsonEqual(expected, r.value))
          fail(
            `key ${key}: committed get ${id} saw ${JSON.stringify(r.value)} as write #${n}, which wrote ${JSON.stringify(expected ?? '(no committed write)')}`,
          );
      } else if (p.op === 'cas') {
        const n = r.n as number;
        const before = r.ok === true ? valueAt(n - 1) : valueAt(n);
        if (before === undefined || !jsonEqual(before, r.value))
          fail(
            `key ${key}: committed cas ${id} saw ${JSON.stringify(r.value)} before write #${r.ok === true ? n : n + 1}; the committed history has ${JSON.stringify(before ?? '(no committed write)')}`,
          );
        if ((r.ok === true) !== jsonEqual(r.value, p.expected ?? null))
          fail(
            `key ${key}: committed cas ${id} expected ${JSON.stringify(p.expected ?? null)}, saw ${JSON.stringify(r.value)} and answered ok=${String(r.ok)}`,
          );
      }
    }
  }
  // A session's committed results never go back in a key's history: it reads its own writes.
  const last = new Map<string, { n: number; id: string }>();
  for (const { o, p, r } of ops) {
    const k = `${o.session} ${String(p.key)}`;
    const n = r.n as number;
    const prev = last.get(k);
    if (prev !== undefined && n < prev.n)
      c.fail('kv-history', `session ${o.session}, key ${String(p.key)}: ${o.session}#${o.seq} saw write #${n} after ${prev.id} saw #${prev.n}`, t);
    last.set(k, { n, id: `${o.session}#${o.seq}` });
  }
}
