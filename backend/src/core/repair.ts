import type { Cut, Deps, NodeId, RolledBackVersions, Version, VersionRef } from '@dse/shared';

/** One uncommitted version of a node, as the repair sees it. */
export interface ChainVersion {
  version: Version;
  deps: Deps;
}

/**
 * What the coordinator knows of one node at recovery: its uncommitted versions above the cut, in order
 * (a prefix per node, each following the one before it), and whether the node itself survived.
 *
 * - A survivor reported every version it holds, persisted or not, and the open one (`versions`).
 * - A failed node (or one down, or silent) lost its memory: only its persisted versions are known (from
 *   the coordinator's graph), and everything above the last of them is lost.
 */
export interface NodeHistory {
  versions: ChainVersion[];
  survived: boolean;
}

export interface RepairPlan {
  /** Each node's restore point: it keeps every version up to it, at or above the cut. */
  kept: Cut;
  /** Per node with anything rolled back: what and why. */
  rolledBack: RolledBackVersions[];
  /** Uncommitted versions that survive. */
  keptVersions: VersionRef[];
  /** State lost with failed nodes: versions of `node` above `version`. */
  lost: VersionRef[];
}

/**
 * Precise recovery (DESIGN.md §3): lost state is a failed node's versions above its last persisted one;
 * every version that depends on lost state, transitively and across nodes, rolls back, per node from
 * the first such version on (versions stay a prefix). Everything else survives.
 *
 * A greatest fixpoint, like the exact cut: start with every node keeping all it has (a failed node: its
 * persisted versions), and move a node's restore point back below any version that depends on a version
 * above another node's restore point, until nothing moves. Restore points only move down, so it ends; a
 * committed version never depends on anything above the cut, so no restore point goes below the cut.
 */
export function planPreciseRepair(members: readonly NodeId[], cut: Readonly<Cut>, histories: ReadonlyMap<NodeId, NodeHistory>): RepairPlan {
  const kept: Cut = {};
  /** Why a node's first rolled-back version rolled back: the version it depends on that is gone. */
  const cause = new Map<NodeId, { first: Version; on: VersionRef }>();
  const chain = (n: NodeId): ChainVersion[] => histories.get(n)?.versions ?? [];
  for (const n of members) {
    const c = chain(n);
    kept[n] = c.length > 0 ? c[c.length - 1]!.version : (cut[n] ?? 0);
  }
  // A dependency on a node that is not a member (a removed one) is satisfied by its frozen committed versions.
  const limit = (m: NodeId): Version => kept[m] ?? cut[m] ?? 0;
  for (let changed = true; changed;) {
    changed = false;
    for (const n of members) {
      const c = chain(n);
      for (let i = 0; i < c.length && c[i]!.version <= kept[n]!; i++) {
        const deps = c[i]!.deps;
        let on: VersionRef | null = null;
        for (const m in deps) {
          if (m === n) continue;
          if (deps[m]! > limit(m)) {
            on = { node: m, version: deps[m]! };
            break;
          }
        }
        if (on === null) continue;
        kept[n] = i > 0 ? c[i - 1]!.version : (cut[n] ?? 0);
        cause.set(n, { first: c[i]!.version, on });
        changed = true;
        break;
      }
    }
  }
  for (const n of members) {
    if ((kept[n] ?? 0) < (cut[n] ?? 0)) throw new Error(`repair: the restore point of ${n} (${kept[n]}) fell below its committed ${cut[n]}`);
  }

  const lost: VersionRef[] = [];
  for (const n of members) if (histories.get(n)?.survived !== true) lost.push({ node: n, version: kept[n]! });

  /**
   * The path from a node's first rolled-back version to a lost one: each version depends on the next,
   * or (within one node) comes after it. A version depended on is gone because its node lost it, or
   * because it rolled back in turn (then the path goes on from that node's first rolled-back version).
   */
  const pathOf = (n: NodeId): VersionRef[] => {
    const path: VersionRef[] = [];
    const seen = new Set<NodeId>();
    for (let cur: NodeId | undefined = n; cur !== undefined && !seen.has(cur);) {
      seen.add(cur);
      const c = cause.get(cur);
      if (c === undefined) break;
      const last = path[path.length - 1];
      if (last === undefined || last.node !== cur || last.version !== c.first) path.push({ node: cur, version: c.first });
      path.push(c.on);
      cur = cause.has(c.on.node) ? c.on.node : undefined;
    }
    return path;
  };

  const rolledBack: RolledBackVersions[] = [];
  const keptVersions: VersionRef[] = [];
  for (const n of members) {
    const c = chain(n);
    const above = kept[n]!;
    for (const v of c) if (v.version > (cut[n] ?? 0) && v.version <= above) keptVersions.push({ node: n, version: v.version });
    const versions = c.filter((v) => v.version > above).map((v) => v.version);
    const survived = histories.get(n)?.survived === true;
    if (cause.has(n)) rolledBack.push({ node: n, above, versions, reason: 'dependency', path: pathOf(n) });
    else if (!survived) rolledBack.push({ node: n, above, versions: [], reason: 'lost', path: [] });
  }
  return { kept, rolledBack, keptVersions, lost };
}

/** Recovery `cut`: every node back to the committed cut, whatever its uncommitted versions depend on. */
export function planCutRepair(members: readonly NodeId[], cut: Readonly<Cut>, histories: ReadonlyMap<NodeId, NodeHistory>): RepairPlan {
  const kept: Cut = {};
  const rolledBack: RolledBackVersions[] = [];
  const lost: VersionRef[] = [];
  for (const n of members) {
    kept[n] = cut[n] ?? 0;
    const h = histories.get(n);
    if (h?.survived !== true) lost.push({ node: n, version: kept[n] });
    const versions = (h?.versions ?? []).filter((v) => v.version > kept[n]!).map((v) => v.version);
    if (versions.length > 0 || h?.survived !== true)
      rolledBack.push({ node: n, above: kept[n], versions, reason: h?.survived === true ? 'cut' : 'lost', path: [] });
  }
  return { kept, rolledBack, keptVersions: [], lost };
}
