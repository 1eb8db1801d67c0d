import type { Cut, CutKind, Mode, NodeId, Version, WorldLine } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { cheapCut, exactCut } from './cut';
import type { PendingGraph } from './cut';
import { cutsEqual } from './deps';
import type { WireMessage } from './messages';
import type { Clock, CoordinatorRecord, Network, Observer, Storage, TimerId } from './ports';

export interface CoordinatorConfig {
  mode: Mode;
  cutKind: CutKind;
  /** A node silent for this long is failed; null: only explicit `nodeFailed` calls (process exits). */
  heartbeatTimeoutMs: number | null;
  /** How often the cut is saved and committed versions below it pruned. */
  pruneIntervalMs: number;
  storageRetryMs: number;
  recoveryCutsMax: number;
}

export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = {
  mode: 'speculative',
  cutKind: 'exact',
  heartbeatTimeoutMs: null,
  pruneIntervalMs: 1000,
  storageRetryMs: 50,
  recoveryCutsMax: 64,
};

export interface CoordinatorPorts {
  clock: Clock;
  network: Network;
  storage: Storage;
  observer: Observer;
}

export type MemberStatus = 'up' | 'down';

/**
 * The coordinator (the paper's "finder"): gathers persisted versions, computes the committed cut,
 * broadcasts it, and runs recovery when a node fails.
 */
export class Coordinator {
  private readonly cfg: CoordinatorConfig;
  private readonly clock: Clock;
  private readonly network: Network;
  private readonly storage: Storage;
  private readonly observer: Observer;

  worldLine: WorldLine = 0;
  cut: Cut = {};
  readonly members = new Map<NodeId, MemberStatus>();
  private graph: PendingGraph = new Map();
  private recoveryCuts: { worldLine: WorldLine; cut: Cut }[] = [];
  /** Highest version each node reported (in `none` mode a restarted node continues above it). */
  private maxSeen = new Map<NodeId, Version>();
  private lastHeard = new Map<NodeId, number>();
  private clients = new Set<string>();
  /** Nodes that restarted and wait for their `recover`. */
  private waiting = new Set<NodeId>();
  private failedSinceRecovery: NodeId[] = [];
  private recovering = false;
  private recoveryWanted = false;
  private savedCut: Cut = {};
  private timers: TimerId[] = [];
  private stopped = false;

  constructor(ports: CoordinatorPorts, cfg: Partial<CoordinatorConfig> = {}) {
    this.cfg = { ...DEFAULT_COORDINATOR_CONFIG, ...cfg };
    this.clock = ports.clock;
    this.network = ports.network;
    this.storage = ports.storage;
    this.observer = ports.observer;
  }

  get mode(): Mode {
    return this.cfg.mode;
  }

  /**
   * Starts from storage: a first start begins world-line 1; a restart (the coordinator's record exists)
   * begins a new world-line from the saved cut, since nodes may have run ahead of it meanwhile.
   */
  async start(nodes: readonly NodeId[]): Promise<void> {
    const rec = await this.retrying(() => this.storage.loadCoordinator());
    for (const n of nodes) this.members.set(n, 'down');
    if (rec === null) {
      this.worldLine = 1;
      for (const n of nodes) this.cut[n] = 0;
      this.recoveryCuts = [{ worldLine: 1, cut: { ...this.cut } }];
    } else {
      for (const n of rec.nodes) if (!this.members.has(n)) this.members.set(n, 'down');
      // The saved cut may lag the one announced before the restart (it is saved periodically). The
      // persisted rows of that world-line are still in storage (nothing above the saved cut is pruned):
      // the cut recomputed from them covers everything that was ever announced.
      const base: Cut = { ...rec.cut };
      for (const n of this.members.keys()) base[n] ??= 0;
      const rows = await this.retrying(() => this.storage.listCheckpoints(rec.worldLine));
      const graph: PendingGraph = new Map();
      for (const r of rows) {
        if (!this.members.has(r.node) || r.version <= (base[r.node] ?? 0)) continue;
        let pending = graph.get(r.node);
        if (pending === undefined) graph.set(r.node, (pending = new Map()));
        pending.set(r.version, { prevVersion: r.prevVersion, deps: r.deps });
      }
      const members = [...this.members.keys()];
      this.cut = this.cfg.cutKind === 'exact' ? exactCut(members, base, graph) : cheapCut(members, base, graph);
      this.worldLine = rec.worldLine + 1;
      this.recoveryCuts = [...rec.recoveryCuts, { worldLine: this.worldLine, cut: { ...this.cut } }].slice(-this.cfg.recoveryCutsMax);
    }
    const first = this.record();
    await this.retrying(() => this.storage.saveCoordinator(first));
    this.savedCut = { ...this.cut };
    this.timers.push(this.clock.setTimer(this.cfg.pruneIntervalMs, () => this.onPruneTimer()));
    if (this.cfg.heartbeatTimeoutMs !== null) {
      this.timers.push(this.clock.setTimer(this.cfg.heartbeatTimeoutMs / 2, () => this.onHeartbeatCheck()));
    }
    this.observer.emit({ type: 'worldLineChanged', t: this.clock.now(), worldLine: this.worldLine, cut: { ...this.cut }, failed: [] });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearTimer(t);
    this.timers = [];
  }

  /** An endpoint hosting sessions: it hears every cut and world-line. */
  addClient(endpoint: string, opts: { announce?: boolean } = {}): void {
    this.clients.add(endpoint);
    // A host that joins a running coordinator (say, one that replaced another) learns the world-line at once.
    if (opts.announce === true && this.worldLine > 0 && this.recoveryCuts.length > 0) {
      this.sendWorldLine(endpoint, 0);
      this.network.send(endpoint, { kind: 'cut', worldLine: this.worldLine, cut: { ...this.cut } });
    }
  }

  addNode(node: NodeId): void {
    if (this.members.has(node)) return;
    this.members.set(node, 'down');
    this.cut[node] ??= 0;
  }

  /** Removes a node that is down: its committed state stays in the cut's history but it no longer holds the cut back. */
  removeNode(node: NodeId): void {
    if (!this.members.has(node)) return;
    // Its uncommitted versions are gone with it: whatever depends on them must roll back, as after a failure.
    if (this.members.get(node) === 'up') this.nodeFailed(node, 'killed');
    this.members.delete(node);
    this.graph.delete(node);
    this.waiting.delete(node);
    // Its committed versions stay in the cut, frozen: dependencies on them remain satisfied (dropping
    // them would hold back every version that ever heard from it, for good), and a node added again
    // under the same id restores from there.
    this.recompute();
  }

  private record(): CoordinatorRecord {
    return { worldLine: this.worldLine, cut: { ...this.cut }, recoveryCuts: this.recoveryCuts, nodes: [...this.members.keys()] };
  }

  receive(msg: WireMessage): void {
    if (this.stopped) return;
    switch (msg.kind) {
      case 'persisted': {
        this.lastHeard.set(msg.node, this.clock.now());
        if ((this.maxSeen.get(msg.node) ?? 0) < msg.version) this.maxSeen.set(msg.node, msg.version);
        // Reports from an ended world-line, or arriving while one ends, describe discarded versions.
        if (msg.worldLine !== this.worldLine || this.recovering || !this.members.has(msg.node)) return;
        if (msg.version <= (this.cut[msg.node] ?? 0)) return;
        let pending = this.graph.get(msg.node);
        if (pending === undefined) this.graph.set(msg.node, (pending = new Map()));
        pending.set(msg.version, { prevVersion: msg.prevVersion, deps: msg.deps });
        this.recompute();
        return;
      }
      case 'hello':
        this.onHello(msg.node);
        return;
      case 'sync':
        if (msg.role === 'node') {
          if (this.members.get(msg.from) === 'up' && !this.recovering) this.sendRecover(msg.from);
          else this.rejoin(msg.from);
        } else {
          this.sendWorldLine(msg.from, msg.since);
          this.network.send(msg.from, { kind: 'cut', worldLine: this.worldLine, cut: { ...this.cut } });
        }
        return;
      case 'heartbeat':
        this.lastHeard.set(msg.node, this.clock.now());
        this.rejoin(msg.node);
        return;
      case 'app':
      case 'ack':
      case 'request':
      case 'reply':
      case 'reject':
      case 'cut':
      case 'worldLine':
      case 'recover':
        return;
    }
  }

  /** A node's process is gone (it exited, was killed, or missed its heartbeats). */
  nodeFailed(node: NodeId, reason: 'exit' | 'heartbeat' | 'restart' | 'killed' = 'exit'): void {
    // A node that dies between its hello and its recover is no longer waiting to be served.
    if (this.members.get(node) !== 'up') this.waiting.delete(node);
    if (this.stopped || this.members.get(node) !== 'up') return;
    this.members.set(node, 'down');
    this.waiting.delete(node);
    this.observer.emit({ type: 'nodeFailed', t: this.clock.now(), node, reason });
    if (this.cfg.mode === 'none') return; // nothing persisted, nothing to restore: survivors carry on
    this.failedSinceRecovery.push(node);
    this.recoveryWanted = true;
    void this.runRecovery();
  }

  private onHello(node: NodeId): void {
    if (!this.members.has(node)) return;
    // A node that says hello has empty memory: if we thought it up, it failed in between.
    if (this.members.get(node) === 'up') this.nodeFailed(node, 'restart');
    this.waiting.add(node);
    this.serveWaiting();
  }

  /**
   * A node we failed (say, it missed heartbeats while only slow) is still alive: it is recovered like a
   * restarted one. Its restore replaces its whole memory with the committed cut, so nothing it did
   * meanwhile survives.
   */
  private rejoin(node: NodeId): void {
    if (this.members.get(node) !== 'down' || this.waiting.has(node)) return;
    this.waiting.add(node);
    this.serveWaiting();
  }

  private serveWaiting(): void {
    if (this.recovering || this.recoveryWanted) return;
    for (const node of this.waiting) {
      this.waiting.delete(node);
      this.members.set(node, 'up');
      this.lastHeard.set(node, this.clock.now());
      this.observer.emit({ type: 'nodeRestarted', t: this.clock.now(), node });
      this.sendRecover(node);
    }
  }

  private sendRecover(node: NodeId): void {
    const resumeVersion = this.cfg.mode === 'none' ? (this.maxSeen.get(node) ?? 0) + 1 : (this.cut[node] ?? 0) + 1;
    this.network.send(node, { kind: 'recover', worldLine: this.worldLine, cut: { ...this.cut }, resumeVersion });
  }

  private sendWorldLine(to: string, since: WorldLine): void {
    const recoveryCuts = this.recoveryCuts.filter((r) => r.worldLine > since);
    const start = this.recoveryCuts[this.recoveryCuts.length - 1]!;
    this.network.send(to, { kind: 'worldLine', worldLine: this.worldLine, cut: start.cut, recoveryCuts });
  }

  /** Recovery: a new world-line, saved before it is announced; every node restores to its cut version. */
  private async runRecovery(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    while (this.recoveryWanted && !this.stopped) {
      this.recoveryWanted = false;
      const failed = this.failedSinceRecovery;
      this.failedSinceRecovery = [];
      const worldLine = this.worldLine + 1;
      const cut = { ...this.cut };
      const recoveryCuts = [...this.recoveryCuts, { worldLine, cut }].slice(-this.cfg.recoveryCutsMax);
      const record: CoordinatorRecord = { worldLine, cut, recoveryCuts, nodes: [...this.members.keys()] };
      try {
        await this.retrying(() => this.storage.saveCoordinator(record));
      } catch (e) {
        if (this.stopped) return;
        throw e;
      }
      if (this.stopped) return;
      this.worldLine = worldLine;
      this.recoveryCuts = recoveryCuts;
      this.savedCut = { ...cut };
      this.graph.clear();
      this.observer.emit({ type: 'worldLineChanged', t: this.clock.now(), worldLine, cut: { ...cut }, failed });
      for (const [node, status] of this.members) if (status === 'up') this.sendRecover(node);
      for (const c of this.clients) this.sendWorldLine(c, worldLine - 1);
    }
    this.recovering = false;
    this.serveWaiting();
  }

  /** Runs a storage operation until it succeeds; only an unavailable storage is retried (other errors are bugs or corruption). */
  private async retrying<T>(op: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await op();
      } catch (e) {
        if (this.stopped || !isDseError(e) || e.code !== 'StorageUnavailable') throw e;
        await new Promise<void>((resolve) => this.clock.setTimer(this.cfg.storageRetryMs, resolve));
      }
    }
  }

  private recompute(): void {
    const nodes = [...this.members.keys()];
    const next = this.cfg.cutKind === 'exact' ? exactCut(nodes, this.cut, this.graph) : cheapCut(nodes, this.cut, this.graph);
    if (cutsEqual(next, this.cut)) return;
    for (const n of nodes) {
      if ((next[n] ?? 0) < (this.cut[n] ?? 0)) throw new Error(`coordinator: the cut of ${n} went back from ${this.cut[n]} to ${next[n]}`);
      const pending = this.graph.get(n);
      if (pending === undefined) continue;
      for (const v of pending.keys()) if (v <= next[n]!) pending.delete(v);
    }
    this.cut = next;
    this.observer.emit({ type: 'cutAdvanced', t: this.clock.now(), worldLine: this.worldLine, cut: { ...next } });
    const msg: WireMessage = { kind: 'cut', worldLine: this.worldLine, cut: { ...next } };
    for (const n of nodes) if (this.members.get(n) === 'up') this.network.send(n, msg);
    for (const c of this.clients) this.network.send(c, msg);
  }

  /** Saves the cut, then prunes below what was saved: a restarted coordinator never finds a gap. */
  private onPruneTimer(): void {
    this.timers.push(this.clock.setTimer(this.cfg.pruneIntervalMs, () => this.onPruneTimer()));
    if (this.recovering || this.cfg.mode === 'none' || cutsEqual(this.cut, this.savedCut)) return;
    const worldLine = this.worldLine;
    const cut = { ...this.cut };
    this.storage.saveCoordinator({ ...this.record(), cut }).then(
      () => {
        if (this.worldLine !== worldLine) return;
        this.savedCut = cut;
        for (const n in cut) if (cut[n]! > 0) this.storage.prune(n, cut[n]!).catch(() => undefined);
      },
      () => undefined,
    );
  }

  private onHeartbeatCheck(): void {
    const timeout = this.cfg.heartbeatTimeoutMs!;
    this.timers.push(this.clock.setTimer(timeout / 2, () => this.onHeartbeatCheck()));
    const now = this.clock.now();
    for (const [node, status] of this.members) {
      if (status === 'up' && now - (this.lastHeard.get(node) ?? now) > timeout) this.nodeFailed(node, 'heartbeat');
    }
  }
}
