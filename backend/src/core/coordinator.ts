import type { Cut, CutKind, Mode, NodeId, RecoveryKind, Version, WorldLine, WorldLineReason } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { CutIndex } from './coordinator-cut';
import { cheapCut, exactCut } from './cut';
import type { PendingGraph, PendingVersion } from './cut';
import { cutsEqual } from './deps';
import type { WireMessage, WorldLineStart } from './messages';
import { keptOf } from './messages';
import type { Clock, CoordinatorRecord, Network, Observer, Storage, TimerId } from './ports';
import type { ChainVersion, NodeHistory, RepairPlan } from './repair';
import { planCutRepair, planPreciseRepair } from './repair';

export interface CoordinatorConfig {
  mode: Mode;
  cutKind: CutKind;
  recovery: RecoveryKind;
  /** A node silent for this long is failed; null: only explicit `nodeFailed` calls (process exits). */
  heartbeatTimeoutMs: number | null;
  /** How often the cut is saved and committed versions below it pruned. */
  pruneIntervalMs: number;
  storageRetryMs: number;
  recoveryCutsMax: number;
  /** A node that does not answer a recovery's `prepare` within this long is taken as failed. */
  prepareTimeoutMs: number;
  /** Keep the cut up to date report by report (coordinator-cut.ts); false: recompute it from the whole graph on every report (the way before; for benchmarks). */
  cutIndex: boolean;
  /** Every report's cut from the cut index is checked against the cut of the whole graph (slow: the simulator's `DSE_CHECK_CUT=1`). */
  checkCut: boolean;
}

export const DEFAULT_COORDINATOR_CONFIG: CoordinatorConfig = {
  mode: 'speculative',
  cutKind: 'exact',
  recovery: 'precise',
  heartbeatTimeoutMs: null,
  pruneIntervalMs: 1000,
  storageRetryMs: 50,
  recoveryCutsMax: 64,
  prepareTimeoutMs: 2000,
  cutIndex: true,
  checkCut: false,
};

export interface CoordinatorPorts {
  clock: Clock;
  network: Network;
  storage: Storage;
  observer: Observer;
  /**
   * The coordinator stopped on an error it cannot handle (a failed assertion, a storage refusal it does
   * not expect). Its host starts a new one from storage (`start(nodes, {resume: true})`). Without it the
   * error is thrown.
   */
  onFatal?: (error: unknown) => void;
}

export type MemberStatus = 'up' | 'down';

export interface CoordinatorStartOptions {
  /**
   * This coordinator replaces one that stopped while the nodes ran on: every member is asked for its
   * state (`prepare`), those that answer keep what survives, the silent ones are taken as failed. Without
   * it every member is taken as down until it says hello (the nodes start too).
   */
  resume?: boolean;
  /** Why this coordinator starts a world-line over (shown in the inspection stream); default `coordinatorRestart`. */
  reason?: WorldLineReason;
}

/** A recovery round under way: the world-line it prepares and the reports gathered so far. */
interface Round {
  target: WorldLine;
  reports: Map<NodeId, Extract<WireMessage, { kind: 'prepared' }>>;
  timer: TimerId | null;
  done: () => void;
}

/**
 * The coordinator (the paper's "finder"): gathers persisted versions, computes the committed cut,
 * broadcasts it, and repairs the cluster when a node fails.
 */
export class Coordinator {
  private readonly cfg: CoordinatorConfig;
  private readonly clock: Clock;
  private readonly network: Network;
  private readonly storage: Storage;
  private readonly observer: Observer;
  private readonly onFatal: ((error: unknown) => void) | undefined;

  worldLine: WorldLine = 0;
  cut: Cut = {};
  readonly members = new Map<NodeId, MemberStatus>();
  /** Persisted, uncommitted versions of the current world-line (and those kept from earlier ones). */
  private graph: PendingGraph = new Map();
  /**
   * The cut kept up to date report by report (coordinator-cut.ts); `cutIndexFresh` false when the graph,
   * the cut or the members changed otherwise (then the next report recomputes from the whole graph).
   */
  private cutIndex: CutIndex;
  private cutIndexFresh = false;
  private recoveryCuts: WorldLineStart[] = [];
  /** Each node's restore point in the current world-line (a node that comes back restores to it). */
  private restorePoints: Cut = {};
  /** Highest version each node reported (in `none` mode a restarted node continues above it). */
  private maxSeen = new Map<NodeId, Version>();
  private lastHeard = new Map<NodeId, number>();
  /** The process of each member that the coordinator knows (from its hello or its report); they only grow. */
  private incarnations = new Map<NodeId, number>();
  private clients = new Set<string>();
  /** Nodes that restarted and wait for their `recover`. */
  private waiting = new Set<NodeId>();
  private failedSinceRecovery: NodeId[] = [];
  /** Nodes being removed: down for good, their versions above the cut dropped; forgotten once a world-line has rolled those back. */
  private retiring = new Set<NodeId>();
  /** Nodes removed for good (saved in the record as `gone`): never counted as members again. */
  private readonly gone = new Set<NodeId>();
  /**
   * Retired nodes ready to be forgotten, once a record without them is saved: until then the cut is
   * computed with them (a coordinator restarted from an older record would count them again, and the
   * cheap cut, a minimum over the members, must not have moved past what it would compute).
   */
  private readonly forgetOnceSaved = new Set<NodeId>();
  /** The member list changed since the record was saved: the next prune-time save is due even if the cut did not move. */
  private membersChanged = false;
  private recovering = false;
  private recoveryWanted = false;
  private recoveryReason: WorldLineReason = 'failure';
  private round: Round | null = null;
  /** The world-line of a record being saved (reports of the old one are no longer taken). */
  private savingWorldLine: WorldLine = 0;
  private savedCut: Cut = {};
  /** A prune-time save (then its prune) in flight: the next one waits, so that saves land in order. */
  private pruning = false;
  private pruneTimer: TimerId | null = null;
  private heartbeatTimer: TimerId | null = null;
  private stopped = false;
  /** False until `start` knows the world-line: nothing is served before (a recover of world-line 0 would be garbage). */
  private ready = false;
  /**
   * True once this coordinator saved a world-line itself. Until then it commits nothing: a coordinator
   * that died may still have a save in flight that starts a world-line with a lower cut, and its fence
   * would delete rows this one had committed. Its own first save either lands first (and fences the dead
   * one's off) or is refused (and it starts again from what the dead one saved).
   */
  private owns = false;
  /** Persisted reports that came while this coordinator could not take them (not owning, or saving): judged after its save. */
  private deferred: Extract<WireMessage, { kind: 'persisted' }>[] = [];

  constructor(ports: CoordinatorPorts, cfg: Partial<CoordinatorConfig> = {}) {
    this.cfg = { ...DEFAULT_COORDINATOR_CONFIG, ...cfg };
    this.clock = ports.clock;
    this.network = ports.network;
    this.storage = ports.storage;
    this.observer = ports.observer;
    this.onFatal = ports.onFatal;
    this.cutIndex = new CutIndex(this.cfg.cutKind);
  }

  get mode(): Mode {
    return this.cfg.mode;
  }

  get recovery(): RecoveryKind {
    return this.cfg.recovery;
  }

  /** Live reconfiguration: the next recovery repairs this way. */
  setRecovery(recovery: RecoveryKind): void {
    this.cfg.recovery = recovery;
  }

  get isRecovering(): boolean {
    return this.recovering;
  }

  /**
   * Starts from storage. A first start begins world-line 1. A restart (the coordinator's record exists)
   * begins a new world-line: it rebuilds the graph of persisted versions from the rows storage still
   * holds (nothing above the saved cut is ever pruned, so the cut it recomputes covers every cut that was
   * announced), and repairs from there like after a failure.
   */
  async start(nodes: readonly NodeId[], opts: CoordinatorStartOptions = {}): Promise<void> {
    try {
      await this.startFromStorage(nodes, opts);
    } catch (e) {
      // Stopped meanwhile (the process died): whatever failed no longer matters.
      if (!this.stopped) throw e;
    }
  }

  private async startFromStorage(nodes: readonly NodeId[], opts: CoordinatorStartOptions): Promise<void> {
    const rec = await this.retrying(() => this.storage.loadCoordinator());
    if (this.stopped) return;
    for (const n of nodes) this.members.set(n, 'down');
    if (rec === null) {
      this.worldLine = 1;
      for (const n of nodes) this.cut[n] = 0;
      this.restorePoints = { ...this.cut };
      this.recoveryCuts = [{ worldLine: 1, cut: { ...this.cut }, kept: { ...this.cut } }];
      const first: CoordinatorRecord = { ...this.record(), starts: true };
      await this.saveStart(first);
      if (this.stopped) return;
      this.owns = true;
      this.replayDeferred();
      this.savedCut = { ...this.cut };
      this.ready = true;
      this.observer.emit({
        type: 'worldLineChanged',
        t: this.clock.now(),
        worldLine: 1,
        cut: { ...this.cut },
        failed: [],
        kept: { ...this.cut },
        reason: 'start',
        recovery: this.cfg.recovery,
      });
    } else {
      for (const n of rec.gone ?? []) {
        this.gone.add(n);
        this.members.delete(n);
      }
      for (const n of rec.nodes) if (!this.members.has(n)) this.members.set(n, 'down');
      const base: Cut = { ...rec.cut };
      for (const n of this.members.keys()) base[n] ??= 0;
      // Every row storage holds is valid: a world-line change deletes what it rolls back, in the same
      // transaction, and fences off later writes of older world-lines.
      const rows = await this.retrying(() => this.storage.listCheckpoints(rec.worldLine));
      if (this.stopped) return;
      for (const r of rows) {
        if (!this.members.has(r.node) || r.version <= (base[r.node] ?? 0)) continue;
        this.pendingOf(r.node).set(r.version, { prevVersion: r.prevVersion, deps: r.deps });
      }
      this.cut = base;
      this.worldLine = rec.worldLine;
      this.recoveryCuts = rec.recoveryCuts;
      this.restorePoints = { ...(rec.kept ?? rec.cut) };
      this.recompute(false);
      // Nodes that said hello while this coordinator loaded are waiting: they hold no memory to ask about.
      if (opts.resume === true) for (const n of this.members.keys()) if (!this.waiting.has(n)) this.members.set(n, 'up');
      this.recoveryReason = opts.reason ?? 'coordinatorRestart';
      this.recoveryWanted = true;
      this.ready = true;
      await this.runRecovery();
      if (this.stopped) return;
    }
    this.pruneTimer = this.clock.setTimer(this.cfg.pruneIntervalMs, () => this.onPruneTimer());
    if (this.cfg.heartbeatTimeoutMs !== null) {
      this.heartbeatTimer = this.clock.setTimer(this.cfg.heartbeatTimeoutMs / 2, () => this.onHeartbeatCheck());
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of [this.pruneTimer, this.heartbeatTimer, this.round?.timer ?? null]) if (t !== null) this.clock.clearTimer(t);
    this.pruneTimer = this.heartbeatTimer = null;
    const round = this.round;
    this.round = null;
    round?.done();
  }

  get stoppedOnError(): boolean {
    return this.stopped;
  }

  /** An endpoint hosting sessions: it hears every cut and world-line. */
  addClient(endpoint: string, opts: { announce?: boolean } = {}): void {
    this.clients.add(endpoint);
    // A host that joins a running coordinator (say, one that replaced another) learns the world-line at once.
    if (opts.announce === true && this.ready && this.recoveryCuts.length > 0 && !this.recovering) {
      this.sendWorldLine(endpoint, 0);
      this.network.send(endpoint, { kind: 'cut', worldLine: this.worldLine, cut: { ...this.cut } });
    }
  }

  addNode(node: NodeId): void {
    if (this.members.has(node)) return;
    // Only a node that never committed anything comes back under the same id (the host's rule).
    this.gone.delete(node);
    this.members.set(node, 'down');
    this.cut[node] ??= 0;
    this.cutIndexFresh = false;
  }

  /**
   * Removes a node for good. Its committed versions stay in the cut, frozen: dependencies on them remain
   * satisfied (dropping them would hold back every version that ever heard from it), and whoever takes
   * over its units restores them from storage. Its versions above the cut will never commit (nobody
   * restores them), so if it has any (a precise recovery kept them), a new world-line rolls them back
   * first, with whatever depends on them; the node is forgotten once that world-line is saved. Until
   * then it stays a member, down: `members.has(node)` turns false when the removal is complete, and the
   * cut's entry for it is final from then on.
   */
  removeNode(node: NodeId): void {
    if (this.stopped || !this.members.has(node) || this.retiring.has(node)) return;
    // Its uncommitted versions are gone with it: whatever depends on them must roll back, as after a failure.
    if (this.members.get(node) === 'up') this.nodeFailed(node, 'killed');
    this.members.set(node, 'down');
    this.waiting.delete(node);
    this.retiring.add(node);
    const frozen = this.cut[node] ?? 0;
    const above = (this.graph.get(node)?.size ?? 0) > 0 || (this.restorePoints[node] ?? frozen) > frozen;
    this.graph.delete(node);
    // The cut index still files those versions: rebuilt from the graph at the next report.
    this.cutIndexFresh = false;
    if (above) {
      this.failedSinceRecovery.push(node);
      this.recoveryWanted = true;
      if (this.recoveryReason === 'failure') this.recoveryReason = 'nodeRemoved';
    }
    if (this.recovering || this.recoveryWanted) {
      void this.runRecovery();
      return;
    }
    this.forgetRetired();
  }

  /**
   * Removes a node that left quietly: it takes no input any more (`DseNode.leave`) and its last version,
   * `upTo`, has committed. None of its versions can roll back then, and no version of it that will never
   * commit exists for anything to depend on, so no world-line is needed: it is forgotten as `removeNode`
   * forgets a node, without the failure. `wait`: that version has not committed yet. `refused`: it is not
   * a member up now, a recovery is under way (which may roll its versions back), the world-line is not the
   * one it left in, or nothing is persisted (mode none): the caller stops it and removes it with
   * `removeNode`, as a failure.
   */
  retireLeft(node: NodeId, upTo: Version, worldLine: WorldLine): 'done' | 'wait' | 'refused' {
    // Another world-line since it left: perhaps another process of it, which did not leave (and which a
    // failure started), so its versions are not known to end at `upTo`.
    if (this.stopped || this.members.get(node) !== 'up' || this.retiring.has(node) || this.recovering || this.recoveryWanted) return 'refused';
    if (worldLine !== this.worldLine || this.cfg.mode === 'none') return 'refused';
    const cut = this.cut[node] ?? 0;
    if (cut < upTo || (this.graph.get(node)?.size ?? 0) > 0 || (this.restorePoints[node] ?? cut) > cut) return 'wait';
    this.members.set(node, 'down');
    this.waiting.delete(node);
    this.retiring.add(node);
    this.graph.delete(node);
    this.cutIndexFresh = false;
    this.forgetRetired();
    return 'done';
  }

  /**
   * Forgets the retiring nodes whose versions above the cut no world-line keeps any more, once a record
   * without them is saved: `savedNodes` is the member list of a record just saved (none: mark them, for
   * the next save; see `forgetOnceSaved`).
   */
  private forgetRetired(savedNodes?: readonly NodeId[]): void {
    for (const node of [...this.retiring]) {
      if (!this.members.has(node)) {
        this.retiring.delete(node);
        continue;
      }
      if ((this.restorePoints[node] ?? 0) > (this.cut[node] ?? 0) || (this.graph.get(node)?.size ?? 0) > 0) continue;
      // Without storage (mode none) no record is saved, and no restarted coordinator reads one.
      const unsaved = this.cfg.mode !== 'none' && (savedNodes === undefined || savedNodes.includes(node));
      if (unsaved) {
        if (!this.forgetOnceSaved.has(node)) {
          this.forgetOnceSaved.add(node);
          this.membersChanged = true;
        }
        continue;
      }
      this.retiring.delete(node);
      this.forgetOnceSaved.delete(node);
      this.gone.add(node);
      this.members.delete(node);
      this.graph.delete(node);
      this.waiting.delete(node);
    }
    this.guarded(() => this.recompute());
    // The save that lets them go: now, not at the next prune (a recovery under way saves when it ends).
    if (this.forgetOnceSaved.size > 0) this.saveAndPrune();
  }

  private record(): CoordinatorRecord {
    // A restore point below the cut is the cut: what committed since the world-line started is kept too.
    const kept: Cut = { ...this.restorePoints };
    for (const n in this.cut) kept[n] = Math.max(kept[n] ?? 0, this.cut[n]!);
    const nodes = [...this.members.keys()].filter((n) => !this.forgetOnceSaved.has(n));
    return { worldLine: this.worldLine, cut: { ...this.cut }, kept, recoveryCuts: this.recoveryCuts, nodes, gone: this.goneWith(this.forgetOnceSaved) };
  }

  /** The record's `gone`: the nodes removed for good, with `more`. */
  private goneWith(more: Iterable<NodeId>): NodeId[] {
    return [...new Set([...this.gone, ...more])].sort();
  }

  private pendingOf(node: NodeId): Map<Version, { prevVersion: Version; deps: Record<NodeId, Version> }> {
    let pending = this.graph.get(node);
    if (pending === undefined) this.graph.set(node, (pending = new Map<number, PendingVersion>()));
    return pending;
  }

  /** Handles one message; a failed assertion stops the coordinator (see `onFatal`). */
  receive(msg: WireMessage): void {
    if (this.stopped) return;
    this.guarded(() => this.dispatch(msg));
  }

  private dispatch(msg: WireMessage): void {
    switch (msg.kind) {
      case 'persisted': {
        this.lastHeard.set(msg.node, this.clock.now());
        if ((this.maxSeen.get(msg.node) ?? 0) < msg.version) this.maxSeen.set(msg.node, msg.version);
        // Reports of an ended world-line describe versions that were either deleted with it or are
        // reported again by their node under the new one; while a new record is saved, likewise.
        if (!this.owns || this.savingWorldLine !== 0) {
          // Not judged now (a new world-line may roll it back), not dropped either: nobody may report it again.
          if (this.deferred.length < DEFERRED_REPORTS_MAX) this.deferred.push(msg);
          return;
        }
        if (!this.members.has(msg.node) || this.retiring.has(msg.node)) return;
        if (msg.worldLine !== this.worldLine && !this.keptSince(msg.worldLine, msg.node, msg.version)) return;
        if (msg.version <= (this.cut[msg.node] ?? 0)) return;
        this.pendingOf(msg.node).set(msg.version, { prevVersion: msg.prevVersion, deps: msg.deps });
        this.onReport(msg.node, msg.version);
        return;
      }
      case 'prepared':
        this.onPrepared(msg);
        return;
      case 'hello':
        this.onHello(msg.node, msg.incarnation);
        return;
      case 'sync':
        if (msg.role === 'node') {
          if (this.members.get(msg.from) === 'up' && !this.recovering) this.sendRecover(msg.from);
          else this.rejoin(msg.from);
        } else if (this.ready && !this.recovering) {
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
      case 'prepare':
      case 'flush':
      case 'recover':
        return;
    }
  }

  private onPrepared(msg: Extract<WireMessage, { kind: 'prepared' }>): void {
    this.lastHeard.set(msg.node, this.clock.now());
    const status = this.members.get(msg.node);
    if (status === undefined) return;
    const known = this.incarnations.get(msg.node);
    // Incarnations grow: a report of an older process (which died) arrives late; ignore it.
    if (known !== undefined && msg.incarnation < known) return;
    if (known !== undefined && msg.incarnation > known && status === 'up') {
      // A newer process than the one we served: the one we knew died in between.
      this.nodeFailed(msg.node, 'restart');
      this.rejoin(msg.node, msg.incarnation);
      return;
    }
    const round = this.round;
    if (round !== null && round.target === msg.worldLine && status === 'up') {
      this.incarnations.set(msg.node, msg.incarnation);
      round.reports.set(msg.node, msg);
      this.checkRound();
      return;
    }
    // A late report: a node taken as failed is alive after all (it is recovered like a restarted one);
    // one that missed its recover gets it again.
    if (status === 'down') this.rejoin(msg.node, msg.incarnation);
    else if (!this.recovering && msg.worldLine <= this.worldLine) this.sendRecover(msg.node);
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
    if (this.round !== null) {
      // Its report (if any) described a memory that is now lost.
      this.round.reports.delete(node);
      this.checkRound();
    }
    void this.runRecovery();
  }

  private onHello(node: NodeId, incarnation: number | undefined): void {
    if (!this.members.has(node) || this.retiring.has(node)) return;
    const known = this.incarnations.get(node);
    // Incarnations grow: the hello of an older process (which died since) arrives late; ignore it.
    if (incarnation !== undefined && known !== undefined && incarnation < known) return;
    const status = this.members.get(node);
    if (status === 'up' && incarnation !== undefined && incarnation === this.incarnations.get(node)) {
      // The process we know says hello again: it has no memory yet (its recover is late, or a recovery
      // asked it to prepare before it had one). It holds nothing beyond what is persisted.
      if (this.round !== null) {
        this.members.set(node, 'down');
        this.round.reports.delete(node);
        this.waiting.add(node);
        this.checkRound();
      } else if (!this.recovering) {
        this.sendRecover(node);
      }
      return;
    }
    // A node that says hello has empty memory: if we thought it up, it failed in between.
    if (status === 'up') this.nodeFailed(node, 'restart');
    if (incarnation !== undefined) this.incarnations.set(node, incarnation);
    else this.incarnations.delete(node);
    this.waiting.add(node);
    this.serveWaiting();
  }

  /**
   * A node we failed (say, it missed heartbeats while only slow) is still alive: it is recovered like a
   * restarted one, to its restore point; whatever it did meanwhile is discarded.
   */
  private rejoin(node: NodeId, incarnation?: number): void {
    if (this.members.get(node) !== 'down' || this.waiting.has(node) || this.retiring.has(node)) return;
    if (incarnation !== undefined) this.incarnations.set(node, incarnation);
    this.waiting.add(node);
    this.serveWaiting();
  }

  private serveWaiting(): void {
    if (!this.ready || this.recovering || this.recoveryWanted) return;
    for (const node of this.waiting) {
      this.waiting.delete(node);
      this.members.set(node, 'up');
      this.lastHeard.set(node, this.clock.now());
      this.observer.emit({ type: 'nodeRestarted', t: this.clock.now(), node });
      this.sendRecover(node);
    }
  }

  private sendRecover(node: NodeId): void {
    if (!this.ready) return;
    const restore = { ...this.restorePoints };
    for (const n of this.members.keys()) restore[n] ??= this.cut[n] ?? 0;
    const resumeVersion = this.cfg.mode === 'none' ? (this.maxSeen.get(node) ?? 0) + 1 : (restore[node] ?? 0) + 1;
    const msg: WireMessage = { kind: 'recover', worldLine: this.worldLine, cut: { ...this.cut }, restore, resumeVersion };
    const incarnation = this.incarnations.get(node);
    if (incarnation !== undefined) msg.incarnation = incarnation;
    this.network.send(node, msg);
  }

  private sendWorldLine(to: string, since: WorldLine): void {
    const recoveryCuts = this.recoveryCuts.filter((r) => r.worldLine > since);
    const start = this.recoveryCuts[this.recoveryCuts.length - 1]!;
    this.network.send(to, { kind: 'worldLine', worldLine: this.worldLine, cut: start.cut, recoveryCuts });
  }

  /**
   * Recovery: a new world-line, saved before it is announced. With recovery `precise` the live nodes are
   * first asked for their uncommitted versions (`prepare`); the repair keeps what depends on no lost state.
   * Failures during a recovery are folded in (a failure while the new record is saved starts another).
   */
  private async runRecovery(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    try {
      while (this.recoveryWanted && !this.stopped) {
        const target = this.worldLine + 1;
        // A restarted coordinator asks in every mode: it does not know which nodes are alive.
        const ask = this.cfg.recovery === 'precise' || this.recoveryReason !== 'failure';
        if (ask) await this.gather(target);
        if (this.stopped) return;
        this.recoveryWanted = false;
        const failed = this.failedSinceRecovery;
        this.failedSinceRecovery = [];
        const reason = this.recoveryReason;
        this.recoveryReason = 'failure';
        const reports = ask ? (this.round?.reports ?? new Map<NodeId, Extract<WireMessage, { kind: 'prepared' }>>()) : null;
        this.round = null;
        const plan = this.plan(reports);
        const worldLine = target;
        const cut = { ...this.cut };
        const kept = plan.kept;
        const recoveryCuts = [...this.recoveryCuts, { worldLine, cut, kept }].slice(-this.cfg.recoveryCutsMax);
        // A node being removed whose versions above the cut this world-line drops is out of the record already.
        const gone = (n: NodeId): boolean => this.retiring.has(n) && (kept[n] ?? cut[n] ?? 0) <= (cut[n] ?? 0);
        const nodes = [...this.members.keys()].filter((n) => !gone(n));
        const goneNow = [...this.members.keys()].filter(gone);
        const record: CoordinatorRecord = { worldLine, cut, kept, recoveryCuts, nodes, gone: this.goneWith(goneNow), starts: true };
        this.savingWorldLine = worldLine;
        try {
          await this.saveStart(record);
        } finally {
          this.savingWorldLine = 0;
        }
        if (this.stopped) return;
        this.owns = true;
        for (const n in this.cut)
          assert((cut[n] ?? 0) >= (this.cut[n] ?? 0), `coordinator: world-line ${worldLine} starts ${n} at ${cut[n]}, below the announced ${this.cut[n]}`);
        this.worldLine = worldLine;
        this.recoveryCuts = recoveryCuts;
        this.restorePoints = { ...kept };
        this.savedCut = { ...cut };
        // What was rolled back is gone from storage (deleted with the fence); kept versions stay.
        for (const [n, pending] of this.graph) for (const v of [...pending.keys()]) if (v > (kept[n] ?? this.cut[n] ?? 0)) pending.delete(v);
        this.cutIndexFresh = false;
        this.observer.emit({
          type: 'worldLineChanged',
          t: this.clock.now(),
          worldLine,
          cut: { ...cut },
          failed,
          kept: { ...kept },
          reason,
          recovery: this.cfg.recovery,
        });
        this.observer.emit({
          type: 'recoveryPlan',
          t: this.clock.now(),
          worldLine,
          recovery: this.cfg.recovery,
          lost: plan.lost,
          rolledBack: plan.rolledBack,
          kept: plan.keptVersions,
        });
        for (const [node, status] of this.members) if (status === 'up') this.sendRecover(node);
        for (const c of this.clients) this.sendWorldLine(c, worldLine - 1);
        this.replayDeferred();
        if (this.retiring.size > 0) this.forgetRetired(nodes);
      }
    } catch (e) {
      if (this.stopped) return;
      // The new world-line could not be saved for a reason retrying does not fix: stop, and let a new
      // coordinator start from storage rather than hang here with every report dropped.
      this.fatal(e);
      return;
    } finally {
      this.recovering = false;
    }
    this.serveWaiting();
    if (this.forgetOnceSaved.size > 0) this.saveAndPrune();
  }

  /** Asks every live member for its uncommitted versions; resolves when all answered or the time is up. */
  private gather(target: WorldLine): Promise<void> {
    return new Promise<void>((resolve) => {
      const round: Round = { target, reports: new Map(), timer: null, done: resolve };
      this.round = round;
      round.timer = this.clock.setTimer(this.cfg.prepareTimeoutMs, () => {
        if (this.round !== round) return;
        round.timer = null;
        // Silent members are taken as failed: their unpersisted state is lost.
        for (const [n, s] of this.members) if (s === 'up' && !round.reports.has(n)) this.nodeFailed(n, 'heartbeat');
        this.checkRound();
      });
      for (const [n, s] of this.members) if (s === 'up') this.network.send(n, { kind: 'prepare', worldLine: target });
      this.checkRound();
    });
  }

  private checkRound(): void {
    const round = this.round;
    if (round === null) return;
    for (const [n, s] of this.members) if (s === 'up' && !round.reports.has(n)) return;
    if (round.timer !== null) this.clock.clearTimer(round.timer);
    round.timer = null;
    round.done();
  }

  /**
   * The repair: each member's history (reported, or from the graph for a failed one), then the plan.
   * `reports` null: nobody was asked (recovery `cut` after a failure), the live members survived.
   */
  private plan(reports: ReadonlyMap<NodeId, Extract<WireMessage, { kind: 'prepared' }>> | null): RepairPlan {
    const members = [...this.members.keys()];
    const histories = new Map<NodeId, NodeHistory>();
    for (const n of members) {
      const c = this.cut[n] ?? 0;
      const persisted = this.persistedChain(n);
      const report = this.members.get(n) === 'up' ? reports?.get(n) : undefined;
      if (report === undefined) {
        histories.set(n, { versions: persisted, survived: reports === null && this.members.get(n) === 'up' });
        continue;
      }
      // A node that missed world-lines since `report.from` holds versions those rolled back: only what
      // every one of them kept can survive.
      let cap = Infinity;
      for (const r of this.recoveryCuts) if (r.worldLine > report.from) cap = Math.min(cap, r.kept?.[n] ?? r.cut[n] ?? c);
      if (report.from < this.worldLine && !this.recoveryCuts.some((r) => r.worldLine === report.from + 1)) cap = c;
      // Versions at or below the node's base are persisted (it restored them, or they committed): the
      // graph has them. If it does not reach the base, the node keeps no more than the graph shows.
      const below = persisted.filter((v) => v.version <= report.base);
      const complete = report.base <= c || below.some((v) => v.version === report.base);
      const versions: ChainVersion[] = complete ? [...below, ...report.versions.filter((v) => v.version > Math.max(c, report.base))] : persisted;
      histories.set(n, { versions: versions.filter((v) => v.version <= cap), survived: complete });
    }
    if (this.cfg.recovery === 'cut') return planCutRepair(members, this.cut, histories);
    return planPreciseRepair(members, this.cut, histories);
  }

  /** Reports that waited for a save: each now counts if the world-lines since kept its version. */
  private replayDeferred(): void {
    const reports = this.deferred;
    this.deferred = [];
    for (const m of reports) this.dispatch(m);
  }

  /**
   * Whether version `version` of `node`, persisted in world-line `worldLine`, is still part of the
   * history: every world-line since kept it (its row survived their fences). A report of an ended
   * world-line arrives late (written during a recovery, reported after it); one we cannot judge is dropped.
   */
  private keptSince(worldLine: WorldLine, node: NodeId, version: Version): boolean {
    if (worldLine > this.worldLine) return false;
    const later = this.recoveryCuts.filter((r) => r.worldLine > worldLine);
    if (later.length === 0 || later[0]!.worldLine !== worldLine + 1) return false;
    return later.every((r) => version <= keptOf(r, node));
  }

  /** A node's persisted versions above the cut, without a gap (each follows the one before). */
  private persistedChain(node: NodeId): ChainVersion[] {
    const pending = this.graph.get(node);
    const out: ChainVersion[] = [];
    if (pending === undefined) return out;
    const byPrev = new Map<Version, Version>();
    for (const [v, p] of pending) byPrev.set(p.prevVersion, v);
    for (let v = byPrev.get(this.cut[node] ?? 0); v !== undefined; v = byPrev.get(v)) out.push({ version: v, deps: pending.get(v)!.deps });
    return out;
  }

  /**
   * Saves a record that starts a world-line. After an indefinite failure the first attempt may have
   * landed: a refusal because the world-line "started already" is then our own save, if the stored
   * record is the one we tried to write.
   */
  private async saveStart(record: CoordinatorRecord): Promise<void> {
    let uncertain = false;
    for (;;) {
      try {
        await this.storage.saveCoordinator(record);
        return;
      } catch (e) {
        if (this.stopped || !isDseError(e)) throw e;
        if (e.code === 'StorageUnavailable') {
          uncertain = true;
          await new Promise<void>((resolve) => this.clock.setTimer(this.cfg.storageRetryMs, resolve));
          continue;
        }
        if (uncertain && e.code === 'StaleWorldLine') {
          const stored = await this.retrying(() => this.storage.loadCoordinator());
          if (
            stored !== null &&
            stored.worldLine === record.worldLine &&
            cutsEqual(stored.cut, record.cut) &&
            cutsEqual(stored.kept ?? stored.cut, record.kept ?? record.cut)
          )
            return;
        }
        throw e;
      }
    }
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

  /**
   * A persisted version was added to the graph: the cut index says which nodes' cut it advanced, at a
   * cost that grows with what the report can change (not with N or the graph's length).
   */
  private onReport(node: NodeId, version: Version): void {
    if (!this.cutIndexFresh || !this.cfg.cutIndex) {
      this.recompute();
      return;
    }
    const expected = this.cfg.checkCut ? this.fullCut() : null;
    const advances = this.cutIndex.added(node, version);
    const next = advances.size === 0 ? this.cut : { ...this.cut };
    for (const [n, v] of advances) {
      assert(v >= (this.cut[n] ?? 0), `coordinator: the cut of ${n} went back from ${this.cut[n]} to ${v}`);
      next[n] = v;
    }
    if (expected !== null)
      assert(cutsEqual(expected, next), `coordinator: the cut index gives ${JSON.stringify(next)}, the whole graph ${JSON.stringify(expected)}`);
    if (advances.size === 0) return;
    this.cut = next;
    this.announceCut();
  }

  /** The cut from the whole graph (cut.ts). */
  private fullCut(): Cut {
    const nodes = [...this.members.keys()];
    return this.cfg.cutKind === 'exact' ? exactCut(nodes, this.cut, this.graph) : cheapCut(nodes, this.cut, this.graph);
  }

  /** Recomputes the cut from the whole graph (after a start, a recovery or a change of members), and rebuilds the cut index. */
  private recompute(announce = true): void {
    const next = this.fullCut();
    const changed = !cutsEqual(next, this.cut);
    if (changed) {
      for (const n of this.members.keys()) {
        assert((next[n] ?? 0) >= (this.cut[n] ?? 0), `coordinator: the cut of ${n} went back from ${this.cut[n]} to ${next[n]}`);
        const pending = this.graph.get(n);
        if (pending === undefined) continue;
        for (const v of pending.keys()) if (v <= next[n]!) pending.delete(v);
      }
      this.cut = next;
    }
    if (this.cfg.cutIndex) {
      this.cutIndex.reset(this.members.keys(), this.cut, this.graph);
      this.cutIndexFresh = true;
    }
    if (changed && announce) this.announceCut();
  }

  /** Tells the live members and the clients the new cut (and the inspection stream). */
  private announceCut(): void {
    const next = this.cut;
    this.observer.emit({ type: 'cutAdvanced', t: this.clock.now(), worldLine: this.worldLine, cut: { ...next } });
    const msg: WireMessage = { kind: 'cut', worldLine: this.worldLine, cut: { ...next } };
    for (const [n, status] of this.members) if (status === 'up') this.network.send(n, msg);
    for (const c of this.clients) this.network.send(c, msg);
  }

  /**
   * Saves the cut, then prunes below what was saved: a restarted coordinator never finds a gap. One save
   * at a time, so that an older save never lands after a newer one (storage refuses a lower cut anyway).
   */
  private onPruneTimer(): void {
    this.pruneTimer = this.clock.setTimer(this.cfg.pruneIntervalMs, () => this.onPruneTimer());
    this.saveAndPrune();
  }

  private saveAndPrune(): void {
    if (this.stopped || this.pruning || this.recovering || this.cfg.mode === 'none' || (cutsEqual(this.cut, this.savedCut) && !this.membersChanged)) return;
    const worldLine = this.worldLine;
    const cut = { ...this.cut };
    this.pruning = true;
    // A change of members not saved (the save failed, or came too late) must be saved by a later one.
    const membersChanged = this.membersChanged;
    this.membersChanged = false;
    const record = { ...this.record(), cut };
    this.storage.saveCoordinator(record).then(
      () => {
        if (this.stopped || this.worldLine !== worldLine) {
          this.membersChanged ||= membersChanged;
          this.pruning = false;
          return;
        }
        this.savedCut = cut;
        // (Not while a recovery saves its world-line: the cut must not move under it. Its record leaves them out too.)
        if (this.forgetOnceSaved.size > 0 && !this.recovering) this.forgetRetired(record.nodes);
        const prunes: Promise<void>[] = [];
        for (const n in cut) if (cut[n]! > 0) prunes.push(this.storage.prune(n, cut[n]!).catch(() => undefined));
        void Promise.all(prunes).then(() => {
          this.pruning = false;
          // Removed nodes still waiting to be forgotten (marked while this save was under way) need another.
          if (this.forgetOnceSaved.size > 0 && this.membersChanged) this.saveAndPrune();
        });
      },
      (e: unknown) => {
        this.pruning = false;
        this.membersChanged ||= membersChanged;
        // A recovery saved a newer world-line meanwhile: this save was late, and refused. Fine.
        if (this.stopped || this.worldLine !== worldLine || this.savingWorldLine !== 0) return;
        // Any other refusal but an unavailable storage means someone else saved after us: a bug, or
        // another coordinator. Stop; a new one starts from storage.
        if (isDseError(e) && e.code !== 'StorageUnavailable') this.fatal(e);
      },
    );
  }

  private onHeartbeatCheck(): void {
    const timeout = this.cfg.heartbeatTimeoutMs!;
    this.heartbeatTimer = this.clock.setTimer(timeout / 2, () => this.onHeartbeatCheck());
    const now = this.clock.now();
    for (const [node, status] of this.members) {
      if (status === 'up' && now - (this.lastHeard.get(node) ?? now) > timeout) this.nodeFailed(node, 'heartbeat');
    }
  }

  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.fatal(e);
    }
  }

  /** Stops on an error; the host starts a new coordinator from storage. */
  private fatal(e: unknown): void {
    this.stop();
    if (this.onFatal === undefined) throw e;
    this.onFatal(e);
  }
}

/** Persisted reports kept while a save is under way (bounded: beyond it they are dropped, as before). */
const DEFERRED_REPORTS_MAX = 100_000;

/** An internal assertion: a fact of the protocol; a violation is a bug and stops the coordinator. */
function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
