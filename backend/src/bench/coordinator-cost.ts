import type { Cut, Deps, NodeId } from '@dse/shared';
import { Coordinator } from '../core/coordinator';
import { ProcessClock, Scheduler } from '../sim/scheduler';
import { Rng } from '../sim/rng';
import { MemoryStorage } from '../storage/memory';

/**
 * The coordinator alone, fed persisted reports directly (no simulator around it): its time per report
 * and per cut change, against N and against the length of the graph of uncommitted versions. `before`:
 * the coordinator recomputes the cut from the whole graph on every report (`cutIndex: false`, the way
 * before issue 20); `after`: its cut index (coordinator-cut.ts).
 */

/** CPU time (user and system) of this process since `t0`, in ms: a shared machine's other loads do not count. */
export function cpuMsSince(t0: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1000;
}

export type Algorithm = 'before' | 'after';

export interface CostRow {
  algorithm: Algorithm;
  nodes: number;
  /** Uncommitted versions in the graph when measured (the chain workload); 0 for the steady one. */
  pending: number;
  reports: number;
  /** Medians (a shared machine's CPU waits land in the mean, not the median). */
  usPerReport: number;
  meanUsPerReport: number;
  cutChanges: number;
  /** Median over the reports that changed the cut (they also send it to every node and client). */
  usPerCutChange: number | null;
  /** Median over the reports that did not. */
  usPerOtherReport: number | null;
}

/** The median of µs samples, two decimals; null without samples. */
export function medianUs(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.floor(s.length / 2)]!.toFixed(2));
}

/** A started coordinator with `n` live nodes and one client; the network only counts. */
async function coordinatorOf(n: number, algorithm: Algorithm): Promise<{ c: Coordinator; nodes: NodeId[]; sent: () => number }> {
  const sched = new Scheduler();
  let sent = 0;
  const c = new Coordinator(
    { clock: new ProcessClock(sched), network: { send: () => void sent++ }, storage: new MemoryStorage(), observer: { emit: () => undefined } },
    // No prune timer runs (the scheduler is never driven): only reports are measured.
    { cutIndex: algorithm === 'after', pruneIntervalMs: 1e9 },
  );
  const nodes = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  await c.start(nodes);
  c.addClient('client');
  for (const node of nodes) c.receive({ kind: 'hello', node, incarnation: 1 });
  return { c, nodes, sent: () => sent };
}

class Meter {
  reports = 0;
  ms = 0;
  cutChanges = 0;
  cutChangeMs = 0;
  private all: number[] = [];
  private changes: number[] = [];
  private others: number[] = [];

  /** Hands `c` one report, timed; notes whether it moved the cut. */
  report(c: Coordinator, node: NodeId, version: number, prevVersion: number, deps: Deps): void {
    const before: Cut = c.cut;
    const t0 = performance.now();
    c.receive({ kind: 'persisted', node, worldLine: c.worldLine, version, prevVersion, deps });
    const ms = performance.now() - t0;
    this.reports++;
    this.ms += ms;
    this.all.push(ms * 1000);
    if (c.cut !== before) {
      this.cutChanges++;
      this.cutChangeMs += ms;
      this.changes.push(ms * 1000);
    } else this.others.push(ms * 1000);
  }

  row(algorithm: Algorithm, nodes: number, pending: number): CostRow {
    return {
      algorithm,
      nodes,
      pending,
      reports: this.reports,
      usPerReport: medianUs(this.all)!,
      meanUsPerReport: Number(((this.ms / this.reports) * 1000).toFixed(2)),
      cutChanges: this.cutChanges,
      usPerCutChange: medianUs(this.changes),
      usPerOtherReport: medianUs(this.others),
    };
  }
}

/**
 * Steady state: round after round every node persists its next version, which depends on the previous
 * version of two other nodes (already persisted). The cut moves on most reports; the graph stays small.
 */
export async function steadyCost(n: number, algorithm: Algorithm, rounds: number): Promise<CostRow> {
  const { c, nodes } = await coordinatorOf(n, algorithm);
  const rng = new Rng(n);
  const meter = new Meter();
  const warmup = Math.min(3, rounds - 1);
  for (let r = 1; r <= rounds; r++) {
    const m = r > warmup ? meter : new Meter();
    for (const node of nodes) {
      const deps: Deps = { [node]: r };
      for (let k = 0; k < 2 && r > 1; k++) {
        const other = rng.pick(nodes);
        if (other !== node) deps[other] = r - 1;
      }
      m.report(c, node, r, r - 1, deps);
    }
  }
  if (c.cut[nodes[0]!] === 0) throw new Error('steady workload: the cut never moved');
  return meter.row(algorithm, n, 0);
}

/**
 * Long chains of uncommitted versions: n1's first version is never persisted (a slow disk), and every
 * other node persists version after version, each depending on n1's and on another node's previous one:
 * nothing commits, the graph grows. At each length in `lengths` (versions per node), `probe` more reports
 * are timed. Last, n1's version arrives and everything commits: that one report is timed too.
 */
export async function chainCost(
  n: number,
  algorithm: Algorithm,
  lengths: readonly number[],
  probe: number,
): Promise<{ rows: CostRow[]; release: { pending: number; ms: number; usPerCommittedVersion: number } }> {
  const { c, nodes } = await coordinatorOf(n, algorithm);
  const rng = new Rng(7 * n + 1);
  const others = nodes.slice(1);
  const rows: CostRow[] = [];
  let version = 0;
  const round = (m: Meter): void => {
    version++;
    for (const node of others) {
      const deps: Deps = { [node]: version, n1: 1 };
      const other = rng.pick(others);
      if (version > 1 && other !== node) deps[other] = version - 1;
      m.report(c, node, version, version - 1, deps);
    }
  };
  for (const length of lengths) {
    while (version < length) round(new Meter());
    const m = new Meter();
    const probeRounds = Math.max(1, Math.ceil(probe / others.length));
    for (let k = 0; k < probeRounds; k++) round(m);
    rows.push(m.row(algorithm, n, version * others.length));
  }
  if (c.cut[others[0]!] !== 0) throw new Error('chain workload: something committed before n1 persisted');
  const pending = version * others.length;
  const t0 = process.cpuUsage();
  c.receive({ kind: 'persisted', node: 'n1', worldLine: c.worldLine, version: 1, prevVersion: 0, deps: { n1: 1 } });
  // One long call: its CPU time (waits for a CPU on a shared machine excluded).
  const ms = cpuMsSince(t0);
  if (c.cut[others[0]!] !== version) throw new Error(`chain workload: n1's version did not commit the chains (cut ${JSON.stringify(c.cut).slice(0, 80)})`);
  return { rows, release: { pending, ms: Number(ms.toFixed(2)), usPerCommittedVersion: Number(((ms * 1000) / (pending + 1)).toFixed(3)) } };
}
