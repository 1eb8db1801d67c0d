import type { InspectionEvent } from './events';
import type { Json, NodeId, Version } from './protocol';

/** One version's changes to a node's app state, as a `stateChanged` event tells them. */
export interface StateDelta {
  version: Version;
  set: Record<string, Json>;
  deleted: string[];
}

/**
 * A node's app state as the inspection stream tells it: the committed base (every change at or below
 * `committedVersion`) and the changes above it, oldest first, that a rollback may still discard.
 */
export interface NodeStateBase {
  committedVersion: Version;
  committed: Record<string, Json>;
  pending: StateDelta[];
}

/** A node's state in a mirror whose changes carry more than the delta (the playground's carry their world-line). */
export interface MirroredState<D extends StateDelta> {
  committedVersion: Version;
  committed: Record<string, Json>;
  pending: D[];
}

/**
 * Follows every node's app state from the inspection events alone: `stateChanged` adds a change,
 * `rollback` discards the changes above the restored version, `cutAdvanced` and `worldLineChanged`
 * fold the changes the cut now covers into the committed base. The server keeps one over the events
 * that fell out of its history, so that a browser joining late gets the state its history starts from.
 */
export class StateMirror<D extends StateDelta = StateDelta> {
  private readonly nodes = new Map<NodeId, MirroredState<D>>();

  /** At most this many uncommitted changes per node; older ones are folded into the base (a node whose cut never moves). */
  constructor(private readonly pendingMax = 1000) {}

  /** Follows one event (a mirror of plain deltas; one whose changes carry more calls the methods below). */
  apply(this: StateMirror<StateDelta>, e: InspectionEvent): void {
    switch (e.type) {
      case 'stateChanged':
        this.change(e.node, { version: e.version, set: e.set, deleted: e.deleted });
        return;
      case 'rollback':
        this.rollback(e.node, e.toVersion);
        return;
      case 'cutAdvanced':
      case 'worldLineChanged':
        for (const [id, v] of Object.entries(e.cut)) this.commit(id, v);
        return;
      default:
        return;
    }
  }

  /** A node's change (its `stateChanged`), uncommitted until the cut covers its version. */
  change(node: NodeId, c: D): void {
    const n = this.node(node);
    n.pending.push(c);
    if (n.pending.length > this.pendingMax) applyDelta(n.committed, n.pending.shift()!);
    this.fold(n);
  }

  /** The node rolled back to `toVersion`: its changes above it are gone. */
  rollback(node: NodeId, toVersion: Version): void {
    const n = this.node(node);
    n.pending = n.pending.filter((c) => c.version <= toVersion);
  }

  /** The cut covers the node's `version`: its changes up to it join the committed base. */
  commit(node: NodeId, version: Version): void {
    const n = this.node(node);
    n.committedVersion = Math.max(n.committedVersion, version);
    this.fold(n);
  }

  /** Starts a node from a known state (a snapshot's base states), replacing what the mirror had. */
  load(node: NodeId, s: MirroredState<D>): void {
    const n: MirroredState<D> = { committedVersion: s.committedVersion, committed: { ...s.committed }, pending: [...s.pending] };
    this.nodes.set(node, n);
    this.fold(n);
  }

  /** The node's committed base and uncommitted changes (read only: the mirror goes on changing them). */
  stateOf(node: NodeId): Readonly<MirroredState<D>> {
    return this.nodes.get(node) ?? { committedVersion: 0, committed: {}, pending: [] };
  }

  /** A deep copy of every node's state (safe to send or to keep applying events to the mirror). */
  states(): Record<NodeId, NodeStateBase> {
    const out: Record<NodeId, NodeStateBase> = {};
    for (const [id, n] of this.nodes) {
      out[id] = {
        committedVersion: n.committedVersion,
        committed: { ...n.committed },
        pending: n.pending.map((c) => ({ version: c.version, set: c.set, deleted: c.deleted })),
      };
    }
    return out;
  }

  /** A mirror that starts where this one is and then goes its own way. */
  clone(): StateMirror<D> {
    const m = new StateMirror<D>(this.pendingMax);
    for (const [id, n] of this.nodes) m.nodes.set(id, { committedVersion: n.committedVersion, committed: { ...n.committed }, pending: [...n.pending] });
    return m;
  }

  /** The node's current state: the committed base with every pending change applied. */
  current(node: NodeId): Record<string, Json> {
    const n = this.nodes.get(node);
    if (n === undefined) return {};
    const s = { ...n.committed };
    for (const c of n.pending) applyDelta(s, c);
    return s;
  }

  private node(id: NodeId): MirroredState<D> {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = { committedVersion: 0, committed: {}, pending: [] };
      this.nodes.set(id, n);
    }
    return n;
  }

  private fold(n: MirroredState<D>): void {
    while (n.pending.length > 0 && n.pending[0]!.version <= n.committedVersion) applyDelta(n.committed, n.pending.shift()!);
  }
}

export function applyDelta(state: Record<string, Json>, c: StateDelta): void {
  for (const [k, v] of Object.entries(c.set)) state[k] = v;
  for (const k of c.deleted) delete state[k];
}
