import type { NodeId, Version } from '@dse/shared';
import type { PlaygroundModel, RollbackRecord, VersionView } from './model';
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
export function closure(index: DepIndex, start: Iterable<string>, dir: 'out' | 'in', keep: (key: string) => boolean = () => true, follow: (e: DepEdge) => boolean = () => true): Set<string> {
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
  /** The node's own uncommitted versions: lost with its process (persisted ones are discarded by the recovery). */
  lost: string[];
  /** Versions on other nodes that depend, transitively, on a lost one: they must roll back. */
  dependent: string[];
  /** Other uncommitted versions: the whole-cluster recovery restores every node to the cut, so they go too. */
  collateral: string[];
  /** In `none` mode there is no recovery: only the node's own state is lost. */
  recovery: boolean;
}

/** What would roll back if `node` died now. */
export function killPreview(model: PlaygroundModel, index: DepIndex, node: NodeId): KillPreview {
  const current = model.worldLine;
  const uncommitted = (v: VersionView | undefined): boolean => v !== undefined && v.worldLine === current && (v.state === 'speculative' || v.state === 'persisting');
  const lost = model.lane(node).filter((v) => uncommitted(v)).map((v) => v.key);
  const recovery = model.mode !== 'none';
  if (!recovery) return { node, lost, dependent: [], collateral: [], recovery };
  const reach = closure(index, lost, 'in', (k) => uncommitted(model.versions.get(k)));
  const lostSet = new Set(lost);
  const dependent = [...reach].filter((k) => !lostSet.has(k));
  const dependentSet = new Set(dependent);
  const collateral: string[] = [];
  for (const id of model.laneIds()) {
    if (id === node) continue;
    for (const v of model.lane(id)) if (uncommitted(v) && !dependentSet.has(v.key)) collateral.push(v.key);
  }
  return { node, lost, dependent, collateral, recovery };
}

export interface CascadeStep {
  key: string;
  /** Dependency hops from a lost version; 0 for a lost version itself; null when no dependency path explains it. */
  depth: number | null;
  /** The version this one depends on that was discarded before it (its step toward a cause). */
  because: string | null;
  reason: string;
}

export interface RollbackExplanation {
  record: RollbackRecord;
  /** Discarded versions in causal order: causes first, then each dependent after what it depended on. */
  steps: CascadeStep[];
  /** The smallest set of dependency edges (shortest paths) that explains every explained step. */
  why: DepEdge[];
}

/** The causal order of one recovery's discards and, for each, the shortest dependency path to a cause. */
export function explainRollback(model: PlaygroundModel, index: DepIndex, record: RollbackRecord): RollbackExplanation {
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
  const opened = (k: string): number => model.versions.get(k)?.openedAt ?? 0;
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
    return { key, depth: d, because: b?.to ?? null, reason };
  });
  steps.sort((a, b) => (a.depth ?? Number.MAX_SAFE_INTEGER) - (b.depth ?? Number.MAX_SAFE_INTEGER) || opened(a.key) - opened(b.key));
  const why: DepEdge[] = [];
  const inWhy = new Set<DepEdge>();
  for (const s of steps) {
    let k: string | undefined = s.key;
    while (k !== undefined) {
      const e = because.get(k);
      if (e === undefined || inWhy.has(e)) break;
      inWhy.add(e);
      why.push(e);
      k = e.to;
    }
  }
  return { record, steps, why };
}
