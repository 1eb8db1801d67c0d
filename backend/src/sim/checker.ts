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
  /** Durable mode is synchronous: no message leaves a node before the version it was sent in is persisted. */
  | 'durable-sync'
  /** Write-ahead log: the committed prefix never changes; committed appends are in it once, at their position. */
  | 'wal-prefix'
  /** Key-value store: per key, every committed result is explained by the committed history of writes. */
  | 'kv-history'
  /** Event broker: each committed event once per consumer group, in order per producer; no duplicates. */
  | 'broker-delivery'
  /** Workflows: each committed step ran once; compensations exactly for the steps of failed workflows. */
  | 'workflow-saga'
  /** Membership changes: at the end every unit is on exactly one node, its owner, and every hand-off is done. */
  | 'placement';

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
  status: 'queued' | 'sent' | 'answered' | 'committed' | 'rolledBack' | 'refused';
  /** The (speculative) answer, if one came; null otherwise. */
  result: Json;
  /** The answer's dependencies (the version it completed in, and everything the session had seen). */
  deps: Deps;
  /** How often the session had been resumed when it made the request: the prefix holds between resumes. */
  resumes: number;
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
  /** The restore points of the current world-line. */
  private kept: Cut = {};
  /**
   * Each node's versions above the cut as the events show them (the node's own `dependencyRecorded`,
   * not what it reported to the coordinator): their dependencies, and whether they were closed.
   */
  private lineage = new Map<NodeId, Map<Version, { deps: Deps; closed: boolean }>>();
  /** Nodes whose process died since they last restored: their memory above what is durable is lost. */
  private crashed = new Set<NodeId>();
  /**
   * Nodes a world-line change named as failed, not restored since. (A crash the coordinator has not yet
   * heard of may be kept by the world-line it is starting; the next one, which names it, must repair it.)
   */
  private failedKnown = new Set<NodeId>();
  /** Durable mode: every message a node sends must come from a persisted version. */
  private checkDurableSync = false;
  /** Closed uncommitted versions that survived recoveries, and those rolled back (crashes included). */
  versionsKept = 0;
  versionsRolledBack = 0;
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

  /** Durable mode: check that nothing leaves a node before its version is persisted. */
  expectDurableSync(): void {
    this.checkDurableSync = true;
  }

  /** The process of `node` died (the simulator says so: ground truth, not an event). */
  onCrash(node: NodeId): void {
    this.crashed.add(node);
  }

  private versionsOf(node: NodeId): Map<Version, { deps: Deps; closed: boolean }> {
    let m = this.lineage.get(node);
    if (m === undefined) this.lineage.set(node, (m = new Map<number, { deps: Deps; closed: boolean }>()));
    return m;
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
      if (m === undefined) this.durable.set(r.node, (m = new Map<number, { deps: Deps; prevVersion: number; worldLine: number }>()));
      m.set(r.version, { deps: r.deps, prevVersion: r.prevVersion, worldLine: r.worldLine });
    }
  }

  onEvent(e: InspectionEvent): void {
    this.checks.onEvent?.(this, e);
    switch (e.type) {
      case 'worldLineChanged':
        this.onWorldLine(e);
        return;
      case 'versionOpened':
        if (!this.versionsOf(e.node).has(e.version)) this.versionsOf(e.node).set(e.version, { deps: {}, closed: false });
        return;
      case 'dependencyRecorded': {
        const m = this.versionsOf(e.node);
        const v = m.get(e.version) ?? { deps: {}, closed: false };
        for (const n in e.on) if ((v.deps[n] ?? 0) < e.on[n]!) v.deps[n] = e.on[n]!;
        m.set(e.version, v);
        return;
      }
      case 'checkpointStarted': {
        const m = this.versionsOf(e.node);
        const v = m.get(e.version) ?? { deps: {}, closed: false };
        v.closed = true;
        m.set(e.version, v);
        if (this.closedIsDurable)
          this.onDurable([
            { node: e.node, worldLine: e.worldLine, version: e.version, prevVersion: e.prevVersion, deps: e.deps, full: e.full, changes: { set: [], del: [] } },
          ]);
        return;
      }
      case 'messageSent':
        if (this.checkDurableSync) this.checkSynchronous(e);
        return;
      case 'cutAdvanced':
        this.onCut(e.t, e.worldLine, e.cut);
        return;
      case 'rollback': {
        this.note(
          e.t,
          `${e.node} restored to ${e.toVersion} in world-line ${e.worldLine}${e.discarded ? `, discarding ${e.discarded.from}..${e.discarded.to}` : ''}`,
        );
        if (!this.closedIsDurable && e.worldLine === this.worldLine && this.kept[e.node] !== undefined && e.toVersion !== this.kept[e.node]) {
          this.fail('no-orphans', `${e.node} restored to ${e.toVersion} in world-line ${e.worldLine}, whose restore point for it is ${this.kept[e.node]}`, e.t);
        }
        const m = this.versionsOf(e.node);
        for (const [v, info] of m) {
          if (v <= e.toVersion) continue;
          if (info.closed && v > (this.cut[e.node] ?? 0)) this.versionsRolledBack++;
          m.delete(v);
        }
        this.crashed.delete(e.node);
        this.failedKnown.delete(e.node);
        this.checkRestored(e.t, e.node, e.toVersion);
        return;
      }
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

  /**
   * A new world-line: it must be new (never one that started before), start at or above the committed
   * cut, and keep nothing that depends on state that is gone: a version kept on one node may depend only
   * on versions kept on the others, and a node whose process died keeps only what is durable.
   */
  private onWorldLine(e: Extract<InspectionEvent, { type: 'worldLineChanged' }>): void {
    this.note(
      e.t,
      `world-line ${e.worldLine} from cut ${fmt(e.cut)}, kept ${fmt(e.kept ?? e.cut)}${e.failed.length > 0 ? ` (failed: ${e.failed.join(', ')})` : ''} [${e.reason}]`,
    );
    if (this.worldLine !== 0) {
      if (e.worldLine <= this.worldLine) this.fail('cut-safety', `world-line ${e.worldLine} started again (the current one is ${this.worldLine})`, e.t);
      for (const n in this.cut) {
        if ((e.cut[n] ?? 0) < this.cut[n]!)
          this.fail('cut-safety', `world-line ${e.worldLine} starts from ${n}@${e.cut[n] ?? 0}, below the committed ${this.cut[n]}`, e.t);
      }
    }
    for (const n of e.failed) this.failedKnown.add(n);
    if (!this.closedIsDurable) {
      for (const n in e.kept) {
        const k = e.kept[n]!;
        const c = e.cut[n] ?? 0;
        if (k < c) this.fail('no-orphans', `world-line ${e.worldLine} restores ${n} to ${k}, below its committed ${c}`, e.t);
        if (e.recovery === 'cut' && k !== c)
          this.fail('no-orphans', `recovery cut, yet world-line ${e.worldLine} keeps ${n} up to ${k}, above the cut ${c}`, e.t);
        if (this.crashed.has(n) && this.failedKnown.has(n) && k > c && this.durable.get(n)?.has(k) !== true) {
          this.fail('no-orphans', `world-line ${e.worldLine} keeps ${n} up to ${k}, but ${n} crashed and ${k} is not durable`, e.t);
        }
        for (const [v, info] of this.versionsOf(n)) {
          if (v <= c || v > k) continue;
          if (info.closed) this.versionsKept++;
          for (const m in info.deps) {
            if (m === n) continue;
            const limit = e.kept[m] ?? e.cut[m] ?? 0;
            if (info.deps[m]! > limit)
              this.fail(
                'no-orphans',
                `world-line ${e.worldLine} keeps ${n}@${v}, which depends on ${m}@${info.deps[m]}, above ${m}'s restore point ${limit}`,
                e.t,
              );
          }
        }
      }
    }
    this.worldLine = e.worldLine;
    this.cut = { ...e.cut };
    this.kept = { ...(e.kept ?? e.cut) };
    // Durable versions above the restore points were discarded.
    for (const [n, m] of this.durable) for (const v of [...m.keys()]) if (v > (e.kept?.[n] ?? e.cut[n] ?? 0)) m.delete(v);
  }

  /**
   * Durable mode: a message from a node must come from state its storage already holds: a durable
   * version at or above the one it was sent in (version numbers a node skipped hold nothing of their own).
   */
  private checkSynchronous(e: Extract<InspectionEvent, { type: 'messageSent' }>): void {
    if (e.srcVersion === 0 || this.inspect(e.from) === undefined) return;
    // A message of an ended world-line is refused by every receiver (rule 1): it carries nothing.
    if (e.worldLine !== this.worldLine || e.srcVersion <= (this.cut[e.from] ?? 0)) return;
    const durable = this.durable.get(e.from);
    if (durable !== undefined) for (const v of durable.keys()) if (v >= e.srcVersion) return;
    this.fail('durable-sync', `${e.from} sent ${e.kind} ${e.id} from version ${e.srcVersion}, which is not persisted`, e.t);
  }

  /** Adds a line to the trace shown with a violation (a membership change, say). */
  note(t: number, s: string): void {
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
      if ((cut[n] ?? 0) < this.cut[n]!)
        this.fail('cut-safety', `cut of ${n} went back from ${this.cut[n]} to ${cut[n] ?? 0} within world-line ${worldLine}`, t);
    }
    for (const n in cut) {
      const c = cut[n]!;
      const before = this.cut[n] ?? 0;
      const versions = this.lineage.get(n);
      if (versions !== undefined) for (const v of [...versions.keys()]) if (v <= c) versions.delete(v);
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
          if ((cut[dn] ?? 0) < d.deps[dn]!)
            this.fail('cut-safety', `cut commits ${n}@${v}, which depends on ${dn}@${d.deps[dn]}, outside the cut (${dn}@${cut[dn] ?? 0})`, t);
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
      if (expectLiveness && o.status !== 'committed' && o.status !== 'rolledBack' && o.status !== 'refused') {
        this.fail('liveness', `request ${o.session}#${o.seq} (${opName(o.payload)}, to ${o.node}) is still ${o.status} after the run settled`, t);
      }
    }
    for (const [session, list] of bySession) {
      const rolledBack = list.filter((o) => o.status === 'rolledBack');
      for (const o of list) {
        if (o.status !== 'committed') continue;
        // Across world-lines: after a rolled-back request nothing of the session survives until the
        // client resumed it (sticky sessions).
        const bad = rolledBack.find((r) => r.seq < o.seq && r.resumes === o.resumes);
        if (bad !== undefined)
          this.fail('prefix', `session ${session}: request ${o.seq} committed although the earlier ${bad.seq} was rolled back (no resume in between)`, t);
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
