import type { NodeId, RecoveryKind, RolledBackVersions, Version, VersionRef, WorldLine } from '@dse/shared';
import type { PlaygroundModel, RecoveryPlanView, RollbackRecord, VersionView } from './model';
import { versionKey } from './model';

/**
 * Derived views over the model: the dependency graph, the rollback cascade and its explanation,
 * and the kill preview. Pure functions of the model; callers memoize them by `model.revision`.
 */

export interface DepEdge {
  /** The dependent version. */
  from: string;
  /** The version it depends on. */
  to: string;
  /** `node`: a message or request from another node; `prefix`: the node's own previous version. */
  kind: 'node' | 'prefix';
}

export interface DepIndex {
  /** Direct dependencies of each version (edges from it). */
  out: Map<string, DepEdge[]>;
  /** Direct dependents of each version (edges into it). */
  in: Map<string, DepEdge[]>;
}

/** The instance of `(node, version)` a version of world-line `worldLine` can depend on. */
export function resolveVersion(model: PlaygroundModel, node: NodeId, version: Version, worldLine: number): VersionView | undefined {
  const lowest = Math.max(1, worldLine - 64);
  for (let w = worldLine; w >= lowest; w--) {
    const v = model.versions.get(versionKey(node, w, version));
    if (v !== undefined) return v;
  }
  return undefined;
}

export function dependencyIndex(model: PlaygroundModel): DepIndex {
  const out = new Map<string, DepEdge[]>();
  const inn = new Map<string, DepEdge[]>();
  const add = (e: DepEdge): void => {
    let o = out.get(e.from);
    if (o === undefined) out.set(e.from, (o = []));
    o.push(e);
    let i = inn.get(e.to);
    if (i === undefined) inn.set(e.to, (i = []));
    i.push(e);
  };
  for (const v of model.versions.values()) {
    for (const [node, dv] of Object.entries(v.deps)) {
      const target = resolveVersion(model, node, dv, v.worldLine);
      if (target !== undefined) add({ from: v.key, to: target.key, kind: 'node' });
    }
    if (v.prevVersion > 0) {
      const prev = resolveVersion(model, v.node, v.prevVersion, v.worldLine);
      if (prev !== undefined && prev !== v) add({ from: v.key, to: prev.key, kind: 'prefix' });
    }
  }
  return { out, in: inn };
}

/** Every version reachable from `start` along `dir` (`out`: what they depend on; `in`: what depends on them). */
export function closure(
  index: DepIndex,
  start: Iterable<string>,
  dir: 'out' | 'in',
  keep: (key: string) => boolean = () => true,
  follow: (e: DepEdge) => boolean = () => true,
): Set<string> {
  const seen = new Set<string>();
  const stack = [...start];
  while (stack.length > 0) {
    const k = stack.pop()!;
    for (const e of index[dir].get(k) ?? []) {
      if (!follow(e)) continue;
      const next = dir === 'out' ? e.to : e.from;
      if (seen.has(next) || !keep(next)) continue;
      seen.add(next);
      stack.push(next);
    }
  }
  return seen;
}

export interface Selection {
  key: string;
  dependencies: Set<string>;
  dependents: Set<string>;
}

/**
 * A selected version's dependencies and dependents across nodes (transitively), plus its own
 * neighbours on its node. Following every "previous version" edge would light up the node's whole
 * history, which says nothing.
 */
export function selectionOf(_model: PlaygroundModel, index: DepIndex, key: string): Selection {
  const crossNode = (e: DepEdge): boolean => e.kind === 'node';
  const dependencies = closure(index, [key], 'out', undefined, crossNode);
  const dependents = closure(index, [key], 'in', undefined, crossNode);
  for (const e of index.out.get(key) ?? []) if (e.kind === 'prefix') dependencies.add(e.to);
  for (const e of index.in.get(key) ?? []) if (e.kind === 'prefix') dependents.add(e.from);
  dependencies.delete(key);
  dependents.delete(key);
  return { key, dependencies, dependents };
}

export interface KillPreview {
  node: NodeId;
  /**
   * The node's own state that dies with its process: with precise recovery its unpersisted versions
   * (persisted ones survive unless they depend on lost state), with recovery `cut` every uncommitted one.
   */
  lost: string[];
  /** Versions that depend, transitively, on a lost one: they must roll back. */
  dependent: string[];
  /** Every other uncommitted version: recovery `cut` takes them too (it restores every node to the cut); precise recovery keeps them. */
  collateral: string[];
  /** In `none` mode there is no recovery: only the node's own state is lost. */
  recovery: boolean;
  /** The recovery the failure would get; `cut` when the events do not tell (traces from before precise recovery). */
  kind: RecoveryKind;
}

/** What would roll back if `node` died now. */
export function killPreview(model: PlaygroundModel, index: DepIndex, node: NodeId): KillPreview {
  // By state, not world-line: precise recovery keeps uncommitted versions of earlier world-lines.
  const uncommitted = (v: VersionView | undefined): boolean => v !== undefined && (v.state === 'speculative' || v.state === 'persisting');
  const kind = model.nextRecovery() ?? 'cut';
  const lost = model
    .lane(node)
    .filter((v) => uncommitted(v) && (kind === 'cut' || model.mode === 'none' || v.persistedAt === null))
    .map((v) => v.key);
  const recovery = model.mode !== 'none';
  if (!recovery) return { node, lost, dependent: [], collateral: [], recovery, kind };
  const reach = closure(index, lost, 'in', (k) => uncommitted(model.versions.get(k)));
  const lostSet = new Set(lost);
  const dependent = [...reach].filter((k) => !lostSet.has(k));
  const dependentSet = new Set(dependent);
  const collateral: string[] = [];
  for (const id of model.laneIds()) {
    for (const v of model.lane(id)) if (uncommitted(v) && !lostSet.has(v.key) && !dependentSet.has(v.key)) collateral.push(v.key);
  }
  return { node, lost, dependent, collateral, recovery, kind };
}

/** Why a version rolled back: the recovery plan's reasons, or `unexplained` when no dependency path (or plan) tells. */
export type RollbackCause = 'lost' | 'dependency' | 'cut' | 'unexplained';

export interface CascadeStep {
  key: string;
  /** Dependency hops from a lost version; 0 for a lost version itself; null when no dependency path explains it. */
  depth: number | null;
  /** The version this one depends on that was discarded before it (its step toward a cause). */
  because: string | null;
  cause: RollbackCause;
  /**
   * For a version rolled back for a dependency: the recovery plan's path from its node's first
   * rolled-back version to a lost one, led by this version when it is a later one (a version below the
   * first, which the plan did not know, gets the path as it is). Empty otherwise, and in traces without
   * plans.
   */
  path: VersionRef[];
  reason: string;
}

export interface RollbackExplanation {
  record: RollbackRecord;
  /** Discarded versions in causal order: causes first, then each dependent after what it depended on. */
  steps: CascadeStep[];
  /** The dependency edges that explain the steps: the plan's paths, or the shortest paths for traces without plans. */
  why: DepEdge[];
  /** Uncommitted versions the recovery kept (precise recovery: they depend on no lost state). */
  kept: string[];
}

function label(ref: VersionRef): string {
  return `${ref.node} v${ref.version}`;
}

/** The causal order of one recovery's discards and, for each, why: from its plan when the trace has one. */
export function explainRollback(model: PlaygroundModel, index: DepIndex, record: RollbackRecord): RollbackExplanation {
  const x = record.plan === null ? deriveRollback(model, index, record) : explainFromPlan(model, record, record.plan);
  const opened = (k: string): number => model.versions.get(k)?.openedAt ?? 0;
  x.steps.sort((a, b) => (a.depth ?? Number.MAX_SAFE_INTEGER) - (b.depth ?? Number.MAX_SAFE_INTEGER) || opened(a.key) - opened(b.key));
  return { record, steps: x.steps, why: x.why, kept: record.kept };
}

/** A plan's entry for one node, with the world-line the plan started (its paths name versions from before it). */
interface PlanEntry {
  rolled: RolledBackVersions;
  worldLine: WorldLine;
}

/**
 * The plan that explains a node's discards in `record`: the record's own, or an earlier one the node
 * had not carried out yet. A second recovery can start before a node heard of the first; the node then
 * rolls back once, under the newer world-line, to the restore point the earlier plan gave it. (Had it
 * carried out the earlier plan, nothing above that plan's restore point would have been left to discard.)
 */
function planEntry(model: PlaygroundModel, record: RollbackRecord, v: VersionView): PlanEntry | undefined {
  for (let i = model.rollbacks.length - 1; i >= 0; i--) {
    const rec = model.rollbacks[i]!;
    if (rec.worldLine > record.worldLine || rec.plan === null) continue;
    const rolled = rec.plan.rolledBack.find((r) => r.node === v.node);
    if (rolled !== undefined && (rec === record || (v.worldLine < rec.worldLine && v.version > rolled.above))) return { rolled, worldLine: rec.worldLine };
  }
  return undefined;
}

/**
 * The plan names, per node, why its versions went. A node rolled back for a dependency starts at its
 * first rolled-back version, which depends along the plan's path on a lost one; a later version of the
 * node follows that first one, so its path is one step longer.
 */
function explainFromPlan(model: PlaygroundModel, record: RollbackRecord, plan: RecoveryPlanView): { steps: CascadeStep[]; why: DepEdge[] } {
  const discarded = new Set(record.discarded);
  const perNode = new Map<NodeId, VersionView[]>();
  for (const k of record.discarded) {
    const v = model.versions.get(k);
    if (v === undefined) continue;
    let l = perNode.get(v.node);
    if (l === undefined) perNode.set(v.node, (l = []));
    l.push(v);
  }
  const cause = new Map<string, RollbackCause>();
  const entries = new Map<NodeId, PlanEntry>();
  const paths = new Map<string, { path: VersionRef[]; keys: (string | undefined)[] }>();
  /** Versions below their node's first rolled-back one (the plan did not know them): they go with it. */
  const withHead = new Map<string, string | undefined>();
  for (const [node, vs] of perNode) {
    vs.sort((a, b) => a.version - b.version);
    const e = planEntry(model, record, vs[0]!);
    if (e !== undefined) entries.set(node, e);
    for (const v of vs) {
      // Recovery `cut` asks no node what it holds, so its plan names only the nodes whose uncommitted
      // versions the coordinator knew of; every other node goes back to the cut all the same.
      const c: RollbackCause = e !== undefined ? e.rolled.reason : plan.recovery === 'cut' ? 'cut' : 'unexplained';
      cause.set(v.key, c);
      if (e === undefined || c !== 'dependency') continue;
      // The plan's versions are those of the world-lines before it.
      const keyOf = (r: VersionRef): string | undefined => resolveVersion(model, r.node, r.version, e.worldLine - 1)?.key;
      const head = e.rolled.path[0];
      let path = e.rolled.path;
      if (head !== undefined && head.node === v.node && v.version < head.version) withHead.set(v.key, keyOf(head));
      else if (head !== undefined && (head.node !== v.node || head.version !== v.version)) path = [{ node: v.node, version: v.version }, ...path];
      paths.set(v.key, { path, keys: path.map(keyOf) });
    }
  }
  const because = (k: string): string | undefined => (withHead.has(k) ? undefined : paths.get(k)?.keys[1]);
  const depth = new Map<string, number | null>();
  const depthOf = (k: string, seen: Set<string>): number | null => {
    const known = depth.get(k);
    if (known !== undefined) return known;
    seen.add(k);
    const c = cause.get(k);
    const b = because(k);
    const head = withHead.get(k);
    let d: number | null = null;
    if (c === 'lost') d = 0;
    else if (head !== undefined && discarded.has(head) && !seen.has(head)) d = depthOf(head, seen);
    else if (c === 'dependency' && b !== undefined && discarded.has(b) && !seen.has(b)) {
      const db = depthOf(b, seen);
      d = db === null ? null : db + 1;
    } else if (c === 'dependency') {
      // What it depends on went in another recovery, or is no longer retained: count the plan's hops.
      d = Math.max(1, (paths.get(k)?.path.length ?? 2) - 1);
    }
    depth.set(k, d);
    return d;
  };

  const steps: CascadeStep[] = record.discarded.map((key) => {
    const v = model.versions.get(key);
    const c = cause.get(key) ?? 'unexplained';
    const path = paths.get(key)?.path ?? [];
    let reason: string;
    if (v === undefined) reason = 'no longer in the retained history';
    else if (c === 'lost')
      reason =
        v.persistedAt !== null && plan.recovery === 'cut'
          ? 'lost with its failed node: recovery cut restores the node to the cut'
          : 'lost: not persisted when its node failed';
    else if (c === 'cut') reason = 'recovery cut: everything uncommitted rolls back';
    else if (c === 'unexplained') {
      // The plan lists the versions the coordinator knew of; a node's others above its restore point go unnamed.
      const above = model.worldLines.findLast((w) => w.worldLine === record.worldLine)?.kept[v.node];
      reason = `above ${v.node}'s restore point${above === undefined ? '' : ` v${above}`}; the recovery plan gives no reason (the coordinator did not know of this version)`;
    } else {
      const lostRef = path.at(-1);
      const why = lostRef === undefined ? 'depends on lost state' : `depends on ${label(lostRef)}, which was lost: ${path.map(label).join(' → ')}`;
      const e = entries.get(v.node);
      reason =
        withHead.has(key) && e !== undefined
          ? `above ${v.node}'s restore point v${e.rolled.above}, which the recovery put below ${label(path[0]!)}: that version ${why}`
          : why;
      if (e !== undefined && e.worldLine !== record.worldLine) reason += ` (the plan of world-line ${e.worldLine}, carried out late)`;
    }
    return { key, depth: depthOf(key, new Set()), because: because(key) ?? null, cause: c, path, reason };
  });

  // The why: every step of every path, as the plan gives it.
  const why: DepEdge[] = [];
  const inWhy = new Set<string>();
  for (const { keys } of paths.values()) {
    for (let i = 0; i + 1 < keys.length; i++) {
      const from = keys[i];
      const to = keys[i + 1];
      if (from === undefined || to === undefined || inWhy.has(`${from}>${to}`)) continue;
      inWhy.add(`${from}>${to}`);
      why.push({ from, to, kind: model.versions.get(from)?.node === model.versions.get(to)?.node ? 'prefix' : 'node' });
    }
  }
  return { steps, why };
}

/** For traces without plans: breadth-first from the lost versions along dependencies, shortest paths first. */
function deriveRollback(model: PlaygroundModel, index: DepIndex, record: RollbackRecord): { steps: CascadeStep[]; why: DepEdge[] } {
  const discarded = new Set(record.discarded);
  const depth = new Map<string, number>();
  const because = new Map<string, DepEdge>();
  let frontier = record.roots.filter((k) => discarded.has(k));
  for (const k of frontier) depth.set(k, 0);
  // Breadth-first from the causes along "is depended on by": the first visit is a shortest path.
  for (let d = 1; frontier.length > 0; d++) {
    const next: string[] = [];
    for (const k of frontier) {
      for (const e of index.in.get(k) ?? []) {
        if (!discarded.has(e.from) || depth.has(e.from)) continue;
        depth.set(e.from, d);
        because.set(e.from, e);
        next.push(e.from);
      }
    }
    frontier = next;
  }
  const steps: CascadeStep[] = record.discarded.map((key) => {
    const d = depth.get(key) ?? null;
    const v = model.versions.get(key);
    const b = because.get(key);
    let reason: string;
    if (v === undefined) reason = 'no longer in the retained history';
    else if (d === 0) reason = `${v.node} failed; v${v.version} was above its cut version ${record.cut[v.node] ?? 0}`;
    else if (b !== undefined) {
      const dep = model.versions.get(b.to);
      const on = dep === undefined ? b.to : `${dep.node} v${dep.version}`;
      reason = b.kind === 'prefix' ? `follows ${on}, which was discarded (per node, versions are a prefix)` : `depends on ${on}, which was discarded`;
    } else reason = 'not committed when the world-line changed: the recovery restores every node to the cut';
    const cause: RollbackCause = d === 0 ? 'lost' : b !== undefined ? 'dependency' : 'unexplained';
    return { key, depth: d, because: b?.to ?? null, cause, path: [], reason };
  });
  const opened = (k: string): number => model.versions.get(k)?.openedAt ?? 0;
  const ordered = [...steps].sort((a, b) => (a.depth ?? Number.MAX_SAFE_INTEGER) - (b.depth ?? Number.MAX_SAFE_INTEGER) || opened(a.key) - opened(b.key));
  const why: DepEdge[] = [];
  const inWhy = new Set<DepEdge>();
  for (const s of ordered) {
    let k: string | undefined = s.key;
    while (k !== undefined) {
      const e = because.get(k);
      if (e === undefined || inWhy.has(e)) break;
      inWhy.add(e);
      why.push(e);
      k = e.to;
    }
  }
  return { steps, why };
}
