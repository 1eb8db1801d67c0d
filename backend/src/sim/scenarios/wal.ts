import type { Json, NodeId } from '@dse/shared';
import { fromJson } from '@dse/shared';
import { servicesApp } from '../../services';
import type { WalEntry } from '../../services/wal';
import { readLog, WAL_PREFIX, WalClient, walLengthKey, walNode } from '../../services/wal';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { Scenario, ScenarioRun, WorkloadEnv } from '../scenario';
import { checkRecordVersions, getter, membersOf, orRolledBack, outcomesOf, SessionLoops } from './common';

const LOGS = ['orders', 'audit', 'events'];

/**
 * Write-ahead log: sessions append to three logs and read them, speculatively or committed-only.
 * Invariant `wal-prefix`: the committed prefix never changes. Checked at every restore of a log's
 * node (everything known committed so far is still there, at its position) and at the end (no holes,
 * each committed append once at its position, nothing from a rolled-back append, every committed-only
 * read and every committed read a prefix of the final log).
 */
export const walScenario: Scenario = {
  name: 'wal',
  app: servicesApp,
  workloadMs: (requestsPerSession) => requestsPerSession * 12,
  createRun(): ScenarioRun {
    const loops = new SessionLoops();
    let world: WorkloadEnv | null = null;
    /** Entries known committed while the run goes on, per log: position → data. */
    const known = new Map<string, Map<number, Json>>();
    const learn = (log: string, entries: readonly WalEntry[]): void => {
      let m = known.get(log);
      if (m === undefined) known.set(log, (m = new Map<number, Json>()));
      for (const e of entries) m.set(e.pos, e.data);
    };
    /** Where `log` lives: its owner under the members (at the end, the final members). */
    const nodeOf = (log: string): NodeId => walNode(log, membersOf(world));

    return {
      start(env: WorkloadEnv) {
        world = env;
        const { rng } = env;
        return loops.start(env, async (s) => {
          const wal = new WalClient(s, { nodes: env.nodes, placement: env.placement, cutView: env.host });
          /** How long this session last saw each log: reads start somewhere before that. */
          const seenLength = new Map<string, number>();
          for (let k = 0; k < env.requestsPerSession; k++) {
            await env.sleep(rng.next() * 4);
            const log = rng.pick(LOGS);
            const x = rng.next();
            if (x < 0.55) {
              const data = `${s.id}#${k}`;
              const r = await orRolledBack(wal, wal.append(log, data));
              if (r !== null) seenLength.set(log, r.value.pos + 1);
              r?.commit().then(
                (v) => learn(log, [{ pos: v.pos, data }]),
                () => undefined,
              );
            } else {
              const committed = x >= 0.75;
              const r = await orRolledBack(wal, wal.read(log, { from: rng.int(0, seenLength.get(log) ?? 0), max: rng.int(1, 20), committed }));
              if (r !== null && committed) learn(log, r.value.entries);
              if (r !== null && r.value.length !== undefined) seenLength.set(log, r.value.length);
            }
          }
        });
      },
      done: () => loops.allDone,
      checks: {
        onRestored(c: Checker, node: NodeId, toVersion: number, view: NodeView, t: number): void {
          checkRecordVersions(c, node, toVersion, view, t, [WAL_PREFIX]);
          for (const [log, m] of known) {
            // With membership a log moves: checked on the node that holds it (the restored state says which).
            if (world?.members !== undefined ? !view.appState.has(walLengthKey(log)) : nodeOf(log) !== node) continue;
            const g = getter(view);
            for (const [pos, data] of m) {
              const e = g.get(`wal/${log}/e/${pos}`) as { d: Json } | undefined;
              const n = (g.get(walLengthKey(log)) as number | undefined) ?? 0;
              if (e === undefined || pos >= n || JSON.stringify(e.d) !== JSON.stringify(data)) {
                c.fail(
                  'wal-prefix',
                  `${node} restored to ${toVersion}: committed entry ${log}[${pos}] = ${JSON.stringify(data)} is now ${pos >= n ? 'beyond the end' : JSON.stringify(e?.d ?? null)}`,
                  t,
                );
              }
            }
          }
        },
        finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>): void {
          loops.report(c, t);
          const finalLogs = new Map<string, WalEntry[]>();
          for (const log of LOGS) {
            const node = nodeOf(log);
            const g = getter(views.get(node));
            const n = (g.get(walLengthKey(log)) as number | undefined) ?? 0;
            const entries = readLog(g, log, 0, Number.MAX_SAFE_INTEGER);
            if (entries.length !== n) c.fail('wal-prefix', `log ${log} on ${node} has length ${n} but a hole at position ${entries.length}`, t);
            finalLogs.set(log, entries);
            const seen = new Map<string, number>();
            for (const e of entries) {
              const d = JSON.stringify(e.data);
              if (seen.has(d)) c.fail('wal-prefix', `log ${log}: ${d} appended twice, at ${seen.get(d)} and ${e.pos}`, t);
              seen.set(d, e.pos);
            }
            for (const [other, view] of views) {
              if (other !== node && view.appState.has(walLengthKey(log))) c.fail('wal-prefix', `log ${log} lives on ${node} but ${other} holds it too`, t);
            }
          }
          const appended = new Map<string, Set<string>>();
          for (const { o, p, r } of outcomesOf(outcomes, 'wal', 'append')) {
            const log = p.log as string;
            const entries = finalLogs.get(log)!;
            const data = JSON.stringify(p.data);
            if (o.status === 'committed') {
              let set = appended.get(log);
              if (set === undefined) appended.set(log, (set = new Set()));
              set.add(data);
              const pos = r.pos as number;
              const at = entries[pos];
              if (at === undefined || JSON.stringify(at.data) !== data)
                c.fail(
                  'wal-prefix',
                  `committed append ${o.session}#${o.seq} of ${data} at ${log}[${pos}]: the log holds ${at === undefined ? 'nothing' : JSON.stringify(at.data)} there`,
                  t,
                );
            }
          }
          for (const [log, entries] of finalLogs) {
            for (const e of entries) {
              if (!(appended.get(log)?.has(JSON.stringify(e.data)) ?? false))
                c.fail('wal-prefix', `${log}[${e.pos}] = ${JSON.stringify(e.data)} comes from no committed append`, t);
            }
          }
          for (const { o, p, r } of outcomesOf(outcomes, 'wal', 'read')) {
            const committedOnly = p.upTo !== undefined;
            // A committed-only answer is final the moment it is given; any answer is, once its request commits.
            if (o.result === null || (!committedOnly && o.status !== 'committed')) continue;
            const entries = finalLogs.get(p.log as string)!;
            for (const e of fromJson<WalEntry[]>(r.entries)) {
              const at = entries[e.pos];
              if (at === undefined || JSON.stringify(at.data) !== JSON.stringify(e.data)) {
                c.fail(
                  'wal-prefix',
                  `${committedOnly ? 'committed-only' : 'committed'} read ${o.session}#${o.seq} saw ${String(p.log)}[${e.pos}] = ${JSON.stringify(e.data)}; the final log holds ${at === undefined ? 'nothing' : JSON.stringify(at.data)}`,
                  t,
                );
              }
            }
            if (typeof r.length === 'number' && r.length > entries.length)
              c.fail('wal-prefix', `committed read ${o.session}#${o.seq} saw ${String(p.log)} ${r.length} long; it ends ${entries.length} long`, t);
          }
        },
      },
    };
  },
};
