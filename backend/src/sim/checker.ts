import type { Cut, Deps, InspectionEvent, Json, NodeId, Version, WorldLine } from '@dse/shared';
import type { CheckpointRecord } from '../core/ports';
import type { ScenarioChecks } from './scenario';

/**
 * The six invariants of DESIGN.md §4; `internal`: the runtime itself threw (one of its own
 * assertions failed); and the services' own invariants, checked by their scenarios.
 */
export type Invariant =
  | 'durability'
  | 'no-orphans'
  | 'prefix'
  | 'exactly-once'
  | 'cut-safety'
  | 'liveness'
  | 'internal'
  /** Write-ahead log: the committed prefix never changes; committed appends are in it once, at their position. */
  | 'wal-prefix'
  /** Key-value store: per key, every committed result is explained by the committed history of writes. */
  | 'kv-history'
  /** Event broker: each committed event once per consumer group, in order per producer; no duplicates. */
  | 'broker-delivery'
  /** Workflows: each committed step ran once; compensations exactly for the steps of failed workflows. */
  | 'workflow-saga';

export interface Violation {
  invariant: Invariant;
  message: string;
  t: number;
}

/** What a session did with one request, as the checker needs it. */
export interface RequestOutcome {
  session: string;
  seq: number;
  payload: Json;
  node: NodeId;
  status: 'queued' | 'sent' | 'answered' | 'committed' | 'rolledBack';
  /** The (speculative) answer, if one came; null otherwise. */
  result: Json;
  /** The world-line the request was last sent in. */
  sentWorldLine: WorldLine;
  /** The world-line the session was in when it learned the request was rolled back. */
  closedWorldLine: WorldLine;
}

export interface NodeView {
  status: string;
  version: Version;
  appState: Map<string, Json>;
  outboxVersions: Version[];
}

/**
 * Checks the six invariants of DESIGN.md §4 from the inspection stream, the storage's own record
 * of what it made durable, and the final states. It shares no code with the coordinator's cut: a
 * bug there must show here.
 */
export class Checker {
  readonly violations: Violation[] = [];
  private readonly trace: string[] = [];
  private readonly traceMax = 40;
  private worldLine: WorldLine = 0;
  private cut: Cut = {};
  /** Durable checkpoints still valid: node → version → deps and prevVersion. */
  private durable = new Map<NodeId, Map<Version, { deps: Deps; prevVersion: Version; worldLine: WorldLine }>>();
  private readonly violationsMax: number;
  private readonly counts = new Map<Invariant, number>();
  private inspect: (node: NodeId) => NodeView | undefined;
  /** The scenario's own invariants (by default none beyond the generic ones). */
  private readonly checks: ScenarioChecks;

  /**
   * `closedIsDurable`: in `none` mode nothing is written, and the cut is over closed versions; the
   * checker then takes each closed version (its `checkpointStarted` event) as what the cut may include.
   */
  constructor(
    inspect: (node: NodeId) => NodeView | undefined,
    private readonly closedIsDurable = false,
    violationsMax = 20,
    checks: ScenarioChecks = { finish: () => undefined },
  ) {
    this.inspect = inspect;
    this.violationsMax = violationsMax;
    this.checks = checks;
  }

  /** The committed cut as the checker has seen it announced (in the current world-line). */
  get currentCut(): Readonly<Cut> {
    return this.cut;
  }

  fail(invariant: Invariant, message: string, t: number): void {
    // Bounded per invariant, so that a flood of one kind does not hide another.
    const n = this.counts.get(invariant) ?? 0;
    this.counts.set(invariant, n + 1);
    if (n < this.violationsMax) this.violations.push({ invariant, message, t });
  }

  /** The storage reports every checkpoint it made durable (ground truth, independent of the node's word). */
  onDurable(records: readonly CheckpointRecord[]): void {
    for (const r of records) {
      let m = this.durable.get(r.node);
      if (m === undefined) this.durable.set(r.node, (m = new Map()));
      m.set(r.version, { deps: r.deps, prevVersion: r.prevVersion, worldLine: r.worldLine });
    }
  }

  onEvent(e: InspectionEvent): void {
    this.checks.onEvent?.(this, e);
    switch (e.type) {
      case 'worldLineChanged':
        this.note(e.t, `world-line ${e.worldLine} from cut ${fmt(e.cut)}${e.failed.length > 0 ? ` (failed: ${e.failed.join(', ')})` : ''}`);
        if (this.worldLine !== 0) {
          for (const n in this.cut) {
            if ((e.cut[n] ?? 0) < this.cut[n]!) this.fail('cut-safety', `world-line ${e.worldLine} starts from ${n}@${e.cut[n] ?? 0}, below the committed ${this.cut[n]}`, e.t);
          }
        }
        this.worldLine = e.worldLine;
        this.cut = { ...e.cut };
        // Durable versions above the new cut were discarded.
        for (const [n, m] of this.durable) for (const v of [...m.keys()]) if (v > (e.cut[n] ?? 0)) m.delete(v);
        return;
      case 'checkpointStarted':
        if (this.closedIsDurable) this.onDurable([{ node: e.node, worldLine: e.worldLine, version: e.version, prevVersion: e.prevVersion, deps: e.deps, full: e.full, changes: { set: [], del: [] } }]);
        return;
      case 'cutAdvanced':
        this.onCut(e.t, e.worldLine, e.cut);
        return;
      case 'rollback':
        this.note(e.t, `${e.node} restored to ${e.toVersion} in world-line ${e.worldLine}${e.discarded ? `, discarding ${e.discarded.from}..${e.discarded.to}` : ''}`);
        this.checkRestored(e.t, e.node, e.toVersion);
        return;
      case 'nodeFailed':
        this.note(e.t, `${e.node} failed (${e.reason})`);
        return;
      case 'nodeRestarted':
        this.note(e.t, `${e.node} restarted`);
        return;
      default:
        return;
    }
  }

  private note(t: number, s: string): void {
    this.trace.push(`t=${t.toFixed(1)} ${s}`);
    if (this.trace.length > this.traceMax) this.trace.shift();
  }

  recentTrace(): string[] {
    return [...this.trace];
  }

  private onCut(t: number, worldLine: WorldLine, cut: Cut): void {
    if (worldLine !== this.worldLine) {
      this.fail('cut-safety', `cut announced for world-line ${worldLine} during ${this.worldLine}`, t);
      return;
    }
    for (const n in this.cut) {
      if ((cut[n] ?? 0) < this.cut[n]!) this.fail('cut-safety', `cut of ${n} went back from ${this.cut[n]} to ${cut[n] ?? 0} within world-line ${worldLine}`, t);
    }
    for (const n in cut) {
      const c = cut[n]!;
      const before = this.cut[n] ?? 0;
      if (c <= before) continue;
      const m = this.durable.get(n);
      // Walk the newly committed versions of n back to the previous cut: each durable, each with its deps in the cut.
      let v = c;
      while (v > before) {
        const d = m?.get(v);
        if (d === undefined) {
          this.fail('cut-safety', `cut commits ${n}@${v}, which is not durable`, t);
          break;
        }
        for (const dn in d.deps) {
          if (dn === n) continue;
          if ((cut[dn] ?? 0) < d.deps[dn]!) this.fail('cut-safety', `cut commits ${n}@${v}, which depends on ${dn}@${d.deps[dn]}, outside the cut (${dn}@${cut[dn] ?? 0})`, t);
        }
        if (d.prevVersion < before) {
          this.fail('cut-safety', `cut commits ${n}@${v}, whose predecessor ${d.prevVersion} is below the previous cut ${before}: a version was skipped`, t);
          break;
        }
        v = d.prevVersion;
      }
    }
    this.cut = { ...cut };
  }

  /** No orphans: a restored node holds nothing from above its cut version. */
  private checkRestored(t: number, node: NodeId, toVersion: Version): void {
    const view = this.inspect(node);
    if (view === undefined) return;
    this.checks.onRestored?.(this, node, toVersion, view, t);
    for (const v of view.outboxVersions) {
      if (v > toVersion) this.fail('no-orphans', `${node} restored to ${toVersion} still holds an outbox message sent at ${v}`, t);
    }
  }

  /**
   * At the end, after faults stopped and the run settled: every request decided, surviving requests a
   * prefix per session, and the scenario's own checks of the final states (committed effects present
   * exactly once, rolled-back ones absent, and whatever the service promises).
   */
  finish(t: number, outcomes: RequestOutcome[], nodes: NodeId[], expectLiveness: boolean): void {
    const views = new Map<NodeId, NodeView>();
    for (const n of nodes) {
      const view = this.inspect(n);
      if (view !== undefined) views.set(n, view);
    }
    this.checks.finish(this, t, outcomes, views, expectLiveness);
    const bySession = new Map<string, RequestOutcome[]>();
    for (const o of outcomes) {
      let l = bySession.get(o.session);
      if (l === undefined) bySession.set(o.session, (l = []));
      l.push(o);
      if (expectLiveness && o.status !== 'committed' && o.status !== 'rolledBack') {
        this.fail('liveness', `request ${o.session}#${o.seq} (${opName(o.payload)}) is still ${o.status} after the run settled`, t);
      }
    }
    for (const [session, list] of bySession) {
      const rolledBack = list.filter((o) => o.status === 'rolledBack');
      for (const o of list) {
        if (o.status !== 'committed') continue;
        // A request may survive after a rolled-back earlier one only if it was sent after the session learned of that rollback.
        const bad = rolledBack.find((r) => r.seq < o.seq && o.sentWorldLine < r.closedWorldLine);
        if (bad !== undefined) this.fail('prefix', `session ${session}: request ${o.seq} committed although the earlier ${bad.seq} was rolled back`, t);
      }
    }
  }
}

/** A short name for a request in messages: its `op`, if it has one. */
export function opName(payload: Json): string {
  if (typeof payload === 'object' && payload !== null && !Array.isArray(payload) && typeof payload.op === 'string') {
    return typeof payload.svc === 'string' ? `${payload.svc}.${payload.op}` : payload.op;
  }
  return 'request';
}

function fmt(cut: Cut): string {
  return Object.entries(cut)
    .map(([n, v]) => `${n}@${v}`)
    .join(' ');
}
