import type { Deps, NodeId, Version, WorldLine } from '@dse/shared';
import { versionKey, type CompressedHistory, type VersionView } from './views';

/**
 * The version lanes: every node's versions in the order they were opened (every world-line), by key
 * and by node, each lane bounded (its oldest settled versions become counts). What a version is at a
 * time (speculative, persisting, committed, rolled back) is set here; the events that decide it are
 * read by the model.
 */
export class VersionLanes {
  readonly versions = new Map<string, VersionView>();
  /** Per node, its versions in the order they were opened (every world-line). */
  readonly lanes = new Map<NodeId, VersionView[]>();
  readonly compressed = new Map<NodeId, CompressedHistory>();

  constructor(private readonly perNodeMax: number) {}

  lane(node: NodeId): readonly VersionView[] {
    return this.lanes.get(node) ?? [];
  }

  /**
   * A node opened a version: the one it was in closes, and a version of the same key (a trace that
   * opens it twice) is replaced.
   */
  open(node: NodeId, worldLine: WorldLine, version: Version, prevVersion: Version, t: number): VersionView {
    this.closeOpen(node, t);
    const key = versionKey(node, worldLine, version);
    const old = this.versions.get(key);
    if (old !== undefined) this.drop(old);
    const v = newVersion(key, node, worldLine, version, prevVersion, t);
    this.versions.set(key, v);
    this.laneOf(node).push(v);
    return v;
  }

  /**
   * The node's `version` as world-line `worldLine` knows it: its own, or one an earlier world-line's
   * precise recovery kept. A node goes on closing and writing a kept version under the new world-line,
   * so those events name the new one.
   */
  lineage(node: NodeId, worldLine: WorldLine, version: Version): VersionView | undefined {
    const own = this.versions.get(versionKey(node, worldLine, version));
    if (own !== undefined) return own;
    let kept: VersionView | undefined;
    for (const v of this.lane(node)) {
      if (v.version === version && v.worldLine < worldLine && v.state !== 'rolled-back' && (kept === undefined || v.worldLine > kept.worldLine)) kept = v;
    }
    return kept;
  }

  /** The version as `lineage` finds it, or one made now when its opening is older than the history this page has. */
  lineageOrStub(node: NodeId, worldLine: WorldLine, version: Version, prevVersion: Version, t: number): VersionView {
    let v = this.lineage(node, worldLine, version);
    if (v === undefined) {
      const key = versionKey(node, worldLine, version);
      // Its opening is older than the history this page has: show it from now.
      v = newVersion(key, node, worldLine, version, prevVersion, t);
      this.versions.set(key, v);
      const lane = this.laneOf(node);
      lane.push(v);
      lane.sort((a, b) => a.openedAt - b.openedAt);
    }
    return v;
  }

  /** The node's newest version closes now if it is still open (its process ended). */
  closeLatest(node: NodeId, t: number): void {
    const open = this.lanes.get(node)?.at(-1);
    if (open !== undefined && open.closedAt === null) open.closedAt = t;
  }

  /** Marks the version discarded by world-line `byWorldLine`'s recovery; false when it was settled already. */
  discard(v: VersionView, byWorldLine: WorldLine, t: number): boolean {
    if (v.state === 'committed' || v.state === 'rolled-back') return false;
    v.state = 'rolled-back';
    v.rolledBackAt = t;
    v.rolledBackBy = byWorldLine;
    if (v.closedAt === null) v.closedAt = t;
    return true;
  }

  /** Marks the node's versions up to `upTo` committed (never a rolled-back one); returns how many it marked. */
  commitUpTo(node: NodeId, upTo: Version, t: number): number {
    const lane = this.lanes.get(node);
    if (lane === undefined) return 0;
    let count = 0;
    for (let i = lane.length - 1; i >= 0; i--) {
      const v = lane[i]!;
      if (v.state === 'committed') break;
      if (v.state === 'rolled-back' || v.version > upTo) continue;
      v.state = 'committed';
      v.committedAt = t;
      count++;
    }
    return count;
  }

  /** Keeps the node's lane bounded: the oldest settled versions become counts. */
  compress(node: NodeId): void {
    const lane = this.lanes.get(node);
    if (lane === undefined || lane.length <= this.perNodeMax) return;
    const keep = Math.floor(this.perNodeMax * 0.8);
    let c = this.compressed.get(node);
    if (c === undefined) this.compressed.set(node, (c = { versions: 0, committed: 0, rolledBack: 0, fromT: lane[0]!.openedAt, toT: lane[0]!.openedAt }));
    const kept: VersionView[] = [];
    const dropCount = lane.length - keep;
    for (let i = 0; i < lane.length; i++) {
      const v = lane[i]!;
      if (i < dropCount && (v.state === 'committed' || v.state === 'rolled-back')) {
        c.versions++;
        if (v.state === 'committed') c.committed++;
        else c.rolledBack++;
        c.toT = Math.max(c.toT, v.closedAt ?? v.openedAt);
        this.versions.delete(v.key);
      } else kept.push(v);
    }
    this.lanes.set(node, kept);
  }

  private laneOf(node: NodeId): VersionView[] {
    let l = this.lanes.get(node);
    if (l === undefined) this.lanes.set(node, (l = []));
    return l;
  }

  /** Closes the node's recent versions still open (the last few: an older one is closed already). */
  private closeOpen(node: NodeId, t: number): void {
    const l = this.lanes.get(node);
    if (l === undefined) return;
    for (let i = l.length - 1; i >= 0 && i >= l.length - 4; i--) {
      const v = l[i]!;
      if (v.closedAt === null) v.closedAt = t;
    }
  }

  private drop(v: VersionView): void {
    this.versions.delete(v.key);
    const lane = this.lanes.get(v.node);
    if (lane !== undefined) {
      const i = lane.indexOf(v);
      if (i >= 0) lane.splice(i, 1);
    }
  }
}

/** Adds `from`'s dependencies to `into` (the highest version per node), leaving out the node's own. */
export function mergeDeps(into: Deps, from: Readonly<Deps>, self: NodeId): void {
  // for…in, not Object.entries: this runs for most events and allocates nothing.
  for (const n in from) {
    if (n === self) continue;
    const v = from[n]!;
    if ((into[n] ?? 0) < v) into[n] = v;
  }
}

/** A version just opened (or first seen): speculative, nothing known about it yet. */
function newVersion(key: string, node: NodeId, worldLine: WorldLine, version: Version, prevVersion: Version, t: number): VersionView {
  return {
    key,
    node,
    worldLine,
    version,
    prevVersion,
    openedAt: t,
    closedAt: null,
    state: 'speculative',
    checkpointAt: null,
    persistedAt: null,
    committedAt: null,
    rolledBackAt: null,
    rolledBackBy: null,
    keptBy: null,
    checkpointFailures: 0,
    changedKeys: null,
    deps: {},
  };
}
