import type { InspectionEvent, Json, NodeId, NodeInfo, NodeStateBase, Version, WorldLine } from '@dse/shared';
import { StateMirror } from '@dse/shared';
import type { NodeView, StateChange } from './views';

type Event<T extends InspectionEvent['type']> = Extract<InspectionEvent, { type: T }>;

/** The events about a node's process and membership (not its versions). */
export type NodeLifecycleEvent = Event<'nodeFailed' | 'nodeRestarted' | 'nodeProcess' | 'nodeAdded' | 'nodeRemoved'>;

/** One collator for every comparison: `localeCompare` with options builds one per call. */
const ID_ORDER = new Intl.Collator('en', { numeric: true });

/**
 * The nodes as the events tell them: status, process, versions reached, and app state (a committed
 * base and the uncommitted changes, each with the world-line it was made in, so that a killed node's
 * lost changes are told apart before its `rollback` comes). A node is known from the first event that
 * names it; a removed one stays known (its history is still drawn) but has no lane.
 */
export class NodeTable {
  readonly nodes = new Map<NodeId, NodeView>();
  /** Every node's app state (the shared mirror the server keeps too). */
  readonly appState: StateMirror<StateChange>;

  constructor(stateChangesPerNodeMax: number) {
    this.appState = new StateMirror<StateChange>(stateChangesPerNodeMax);
  }

  /** The node, known from now on if it was not. */
  get(id: NodeId): NodeView {
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = {
        id,
        status: 'down',
        pid: null,
        version: 0,
        persistedVersion: 0,
        committedVersion: 0,
        worldLine: 0,
        failures: 0,
        starts: 0,
        removed: false,
        lastChange: null,
      };
      this.nodes.set(id, n);
    }
    return n;
  }

  /** Node ids with a lane (not removed), in a stable order. */
  ids(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => !n.removed)
      .map((n) => n.id)
      .sort((a, b) => ID_ORDER.compare(a, b));
  }

  /** The node's state as the events tell it: committed base plus uncommitted changes, in order. */
  state(id: NodeId): Record<string, Json> {
    return this.nodes.has(id) ? this.appState.current(id) : {};
  }

  /** Starts each node's app state from the server's account of it (before any event is applied). */
  loadBases(bases: Readonly<Record<NodeId, NodeStateBase>>): void {
    for (const [id, b] of Object.entries(bases)) {
      const n = this.get(id);
      n.committedVersion = Math.max(n.committedVersion, b.committedVersion);
      // The world-line of these changes is not told; 0 never names a version the model tracks, so
      // only a `rollback` event (by version) discards them, as it discards any change above its version.
      const pending = b.pending.map((c) => ({ worldLine: 0, version: c.version, set: c.set, deleted: c.deleted }));
      this.appState.load(id, { committedVersion: n.committedVersion, committed: b.committed, pending });
    }
  }

  /** The server's current facts about its nodes: those it does not list are removed. */
  loadInfo(infos: readonly NodeInfo[]): void {
    const present = new Set(infos.map((n) => n.id));
    for (const info of infos) {
      const n = this.get(info.id);
      n.removed = false;
      n.status = info.status;
      n.pid = info.pid;
      n.version = info.version;
      n.persistedVersion = info.persistedVersion;
      n.committedVersion = info.committedVersion;
      n.worldLine = info.worldLine;
      n.starts = info.starts;
    }
    for (const n of this.nodes.values()) if (!present.has(n.id)) n.removed = true;
  }

  /** The node opened a version in world-line `worldLine`. */
  opened(id: NodeId, worldLine: WorldLine, version: Version): void {
    const node = this.get(id);
    node.version = version;
    node.worldLine = Math.max(node.worldLine, worldLine);
    if (node.status === 'recovering') node.status = 'up';
  }

  /** The cut commits the node's versions up to `version`, and its state's changes up to it. */
  committed(id: NodeId, version: Version): void {
    this.get(id).committedVersion = version;
    this.appState.commit(id, version);
  }

  /** World-line `worldLine` began: the failed nodes are down, the others running in an older one recover. */
  worldLineStarted(worldLine: WorldLine, failed: ReadonlySet<NodeId>): void {
    for (const node of this.nodes.values()) {
      if (node.removed) continue;
      if (failed.has(node.id)) node.status = 'down';
      else if (node.status === 'up' && node.worldLine < worldLine) node.status = 'recovering';
    }
  }

  /** The node's state changed (in its current world-line). */
  changed(id: NodeId, version: Version, set: Record<string, Json>, deleted: string[]): void {
    const node = this.get(id);
    const change: StateChange = { worldLine: node.worldLine, version, set, deleted };
    node.lastChange = change;
    // Past `stateChangesPerNodeMax` uncommitted changes the oldest is folded into the base (shown as known state).
    this.appState.change(id, change);
  }

  /**
   * A process or membership event. True when the node's process ended (failed or exited): the version
   * it was in closes.
   */
  lifecycle(e: NodeLifecycleEvent): boolean {
    const node = this.get(e.node);
    switch (e.type) {
      case 'nodeFailed':
        node.status = 'down';
        node.failures++;
        return true;
      case 'nodeRestarted':
        node.status = 'recovering';
        return false;
      case 'nodeProcess':
        if (e.state === 'exited') {
          node.pid = null;
          node.status = 'down';
          return true;
        }
        node.pid = e.pid;
        if (e.state === 'spawned') node.starts++;
        if (node.status === 'down') node.status = 'recovering';
        return false;
      case 'nodeAdded':
        node.removed = false;
        return false;
      case 'nodeRemoved':
        node.removed = true;
        return false;
    }
  }
}
