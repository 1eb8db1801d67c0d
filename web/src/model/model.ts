import type {
  ClusterConfig,
  ClusterInfo,
  Cut,
  InspectionEvent,
  Json,
  Limits,
  Mode,
  NodeId,
  NodeStateBase,
  NumberedEvent,
  RecoveryKind,
  Version,
  WorkloadConfig,
  WorldLine,
} from '@dse/shared';
import { requestOfMessageId, type StateMirror } from '@dse/shared';
import { MessageLog } from './messages';
import { MigrationLog } from './migrations';
import { NodeTable } from './nodes';
import { migrationMoves, unitsOfState } from './placement';
import { SessionLog } from './sessions';
import { VersionLanes, mergeDeps } from './versions';

/**
 * The playground's view state, computed only from inspection events (and the server's snapshot of
 * them). `apply` is deterministic: the same events give the same model, which is what makes traces
 * replayable and the model unit-testable. It mutates in place for speed; `revision` counts changes.
 *
 * The model reads each event and hands it to the parts it concerns: the version lanes (`versions.ts`),
 * the nodes and their app state (`nodes.ts`), the messages (`messages.ts`), the sessions' requests
 * (`sessions.ts`) and membership (`migrations.ts`). World-lines, the cut and the recoveries' records,
 * which tie versions and nodes together, are kept here.
 */

export * from './views';
import {
  DEFAULT_MODEL_LIMITS,
  type CompressedHistory,
  type MessageView,
  type MigrationView,
  type ModelLimits,
  type NodeView,
  type PlacementInfo,
  type RollbackRecord,
  type SessionRequestView,
  type StateChange,
  type VersionView,
  type WorldLineView,
} from './views';

export class PlaygroundModel {
  revision = 0;
  readonly limits: ModelLimits;
  private readonly versionLanes: VersionLanes;
  private readonly nodeTable: NodeTable;
  private readonly messageLog: MessageLog;
  private readonly sessionLog: SessionLog;
  private readonly migrationLog = new MigrationLog();
  worldLine: WorldLine = 0;
  worldLines: WorldLineView[] = [];
  cut: Cut = {};
  cutHistory: { t: number; worldLine: WorldLine; total: number }[] = [];
  rollbacks: RollbackRecord[] = [];
  mode: Mode | null = null;
  config: ClusterConfig | null = null;
  workload: WorkloadConfig | null = null;
  serverLimits: Limits | null = null;
  storage: string | null = null;
  /** Retained events (newest last), numbered; the event table and trace export read these. */
  events: NumberedEvent[] = [];
  /** Events dropped from `events` to keep it bounded. */
  eventsDropped = 0;
  /** Number of the last event applied (server numbering; local numbering for unnumbered events). */
  lastEvent = 0;
  firstT: number | null = null;
  lastT = 0;
  totals = { events: 0, committed: 0, rolledBack: 0, rejected: 0, lost: 0, messages: 0, checkpoints: 0 };
  /**
   * Messages the network did not deliver, by why: the receiver was down, had not joined (no connection
   * to it yet: a node starting, or one the sender does not know yet), or the configured loss took it.
   */
  lostBy = { down: 0, notJoined: 0, loss: 0 };

  constructor(limits: Partial<ModelLimits> = {}) {
    this.limits = { ...DEFAULT_MODEL_LIMITS, ...limits };
    this.versionLanes = new VersionLanes(this.limits.versionsPerNodeMax);
    this.nodeTable = new NodeTable(this.limits.stateChangesPerNodeMax);
    this.messageLog = new MessageLog(this.limits.messagesMax);
    this.sessionLog = new SessionLog(this.limits.sessionRequestsMax);
  }

  /** The nodes the events named (a removed one too). */
  get nodes(): ReadonlyMap<NodeId, NodeView> {
    return this.nodeTable.nodes;
  }

  /** Every version in the diagram, by `versionKey`. */
  get versions(): ReadonlyMap<string, VersionView> {
    return this.versionLanes.versions;
  }

  /** Per node, its versions in the order they were opened (every world-line). */
  get lanes(): ReadonlyMap<NodeId, readonly VersionView[]> {
    return this.versionLanes.lanes;
  }

  /** Per node, the counts of the versions dropped from its lane. */
  get compressed(): ReadonlyMap<NodeId, CompressedHistory> {
    return this.versionLanes.compressed;
  }

  /**
   * Every node's app state as far as the events since this page joined tell: a committed base and the
   * uncommitted changes, each with the world-line it was made in (a killed node's lost changes are
   * told apart before its `rollback` comes).
   */
  get appState(): StateMirror<StateChange> {
    return this.nodeTable.appState;
  }

  /** The messages in the diagram by their own number, oldest first. */
  get messages(): ReadonlyMap<number, MessageView> {
    return this.messageLog.messages;
  }

  /** The sessions' requests by `session#seq`, oldest first. */
  get sessions(): ReadonlyMap<string, SessionRequestView> {
    return this.sessionLog.requests;
  }

  /** The placement the server routes by, when the snapshot or a `placementChanged` told it. */
  get placement(): PlacementInfo | null {
    return this.migrationLog.placement;
  }

  /** Membership changes seen (newest last, a few kept); the last one runs while its phase is not `handedOver`. */
  get migrations(): readonly MigrationView[] {
    return this.migrationLog.migrations;
  }

  /** Per node: its units just before its state took placement version `version` (what moved is measured from these). */
  get unitsBeforeView(): ReadonlyMap<NodeId, { version: number; units: ReadonlySet<string> }> {
    return this.migrationLog.unitsBeforeView;
  }

  /** Node ids with a lane, in a stable order. */
  laneIds(): NodeId[] {
    return this.nodeTable.ids();
  }

  lane(node: NodeId): readonly VersionView[] {
    return this.versionLanes.lane(node);
  }

  /** The node, known from now on if it was not. */
  node(id: NodeId): NodeView {
    return this.nodeTable.get(id);
  }

  /** The node's state as the events tell it: committed base plus uncommitted changes, in order. */
  nodeState(id: NodeId): Record<string, Json> {
    return this.nodeTable.state(id);
  }

  /**
   * The node's `version` as world-line `worldLine` knows it: its own, or one an earlier world-line's
   * precise recovery kept. A node goes on closing and writing a kept version under the new world-line,
   * so those events name the new one.
   */
  lineageVersion(node: NodeId, worldLine: WorldLine, version: Version): VersionView | undefined {
    return this.versionLanes.lineage(node, worldLine, version);
  }

  /** The world-line the cluster is on, when its start is in the retained history. */
  currentWorldLine(): WorldLineView | undefined {
    return this.worldLines.findLast((w) => w.worldLine === this.worldLine);
  }

  /**
   * The membership change running now (sent, not yet handed over), if any. One not heard of for two
   * minutes of event time has given up (the server's membership gives up sooner) and no longer counts.
   */
  migrationRunning(): MigrationView | null {
    return this.migrationLog.running(this.lastT);
  }

  /** The recovery the next failure gets: the cluster's setting, else the kind the latest recovery used. */
  nextRecovery(): RecoveryKind | null {
    return this.config?.recovery ?? this.worldLines.at(-1)?.recovery ?? null;
  }

  /**
   * Seeds the model from a server snapshot: each node's app state as of just before the history
   * (`baseStates`, when the server sends it), then the history, then the cluster's current facts.
   */
  loadSnapshot(
    cluster: ClusterInfo,
    config: ClusterConfig | null,
    workload: WorkloadConfig | null,
    limits: Limits | null,
    history: readonly NumberedEvent[],
    baseStates?: Readonly<Record<NodeId, NodeStateBase>>,
  ): void {
    if (baseStates !== undefined) this.nodeTable.loadBases(baseStates);
    this.applyAll(history);
    if (!history.some((e) => e.type === 'modeChanged' || e.type === 'configChanged')) {
      // No mode change in the history: every answer in it came in the cluster's current mode.
      for (const r of this.sessions.values()) r.mode ??= cluster.mode;
    }
    this.storage = cluster.storage;
    this.mode = cluster.mode;
    this.config = config;
    this.workload = workload;
    this.serverLimits = limits;
    if (cluster.worldLine > this.worldLine) this.worldLine = cluster.worldLine;
    this.setCut(cluster.worldLine, cluster.cut, this.lastT);
    this.nodeTable.loadInfo(cluster.nodes);
    this.migrationLog.loadPlacement(cluster.placement);
    this.lastEvent = Math.max(this.lastEvent, cluster.lastEvent);
    this.revision++;
  }

  applyAll(events: readonly (InspectionEvent | NumberedEvent)[]): void {
    for (const e of events) this.apply(e);
  }

  apply(input: InspectionEvent | NumberedEvent): void {
    const n = 'n' in input && typeof input.n === 'number' ? input.n : this.lastEvent + 1;
    const e: NumberedEvent = 'n' in input && typeof input.n === 'number' ? input : { ...input, n };
    this.lastEvent = Math.max(this.lastEvent, n);
    this.revision++;
    this.totals.events++;
    if (this.firstT === null) this.firstT = e.t;
    if (e.t > this.lastT) this.lastT = e.t;
    this.events.push(e);
    if (this.events.length > this.limits.eventsMax * 1.25) {
      const drop = this.events.length - this.limits.eventsMax;
      this.events = this.events.slice(drop);
      this.eventsDropped += drop;
    }
    // The first event past the settle time fixes what moved in the last change (before it counts itself).
    this.migrationLog.settle(e.t, (version) => migrationMoves(this, version));
    this.reduce(e);
  }

  private reduce(e: InspectionEvent): void {
    const lanes = this.versionLanes;
    switch (e.type) {
      case 'versionOpened': {
        lanes.open(e.node, e.worldLine, e.version, e.prevVersion, e.t);
        this.nodeTable.opened(e.node, e.worldLine, e.version);
        this.commitCovered(e.node, e.t);
        lanes.compress(e.node);
        return;
      }
      case 'checkpointStarted': {
        this.totals.checkpoints++;
        const v = lanes.lineageOrStub(e.node, e.worldLine, e.version, e.prevVersion, e.t);
        this.nodeTable.get(e.node);
        if (v.closedAt === null) v.closedAt = e.t;
        v.checkpointAt = e.t;
        v.changedKeys = e.changedKeys;
        mergeDeps(v.deps, e.deps, e.node);
        if (v.state === 'speculative') v.state = 'persisting';
        return;
      }
      case 'checkpointPersisted': {
        const node = this.nodeTable.get(e.node);
        const v = lanes.lineage(e.node, e.worldLine, e.version);
        if (v !== undefined) {
          v.persistedAt = e.t;
          mergeDeps(v.deps, e.deps, e.node);
        }
        if (e.worldLine === node.worldLine && e.version > node.persistedVersion) node.persistedVersion = e.version;
        return;
      }
      case 'checkpointFailed': {
        const v = lanes.lineage(e.node, e.worldLine, e.version);
        if (v !== undefined) v.checkpointFailures++;
        return;
      }
      case 'dependencyRecorded': {
        const node = this.nodeTable.get(e.node);
        const v = lanes.lineage(e.node, node.worldLine, e.version);
        if (v !== undefined) mergeDeps(v.deps, e.on, e.node);
        return;
      }
      case 'cutAdvanced':
        this.setCut(e.worldLine, e.cut, e.t);
        return;
      case 'worldLineChanged':
        this.worldLineChanged(e);
        return;
      case 'recoveryPlan': {
        const anything = e.lost.length > 0 || e.rolledBack.length > 0 || e.kept.length > 0;
        const rec = anything ? this.rollbackRecord(e.worldLine, e.t) : this.rollbacks.find((r) => r.worldLine === e.worldLine);
        if (rec === undefined) return;
        rec.plan = { recovery: e.recovery, lost: e.lost, rolledBack: e.rolledBack, kept: e.kept };
        rec.recovery = e.recovery;
        // Lost state can belong to a node that was down already (not in this world-line's `failed`).
        for (const l of e.lost) this.discardLost(rec, l.node, l.version, e.t);
        for (const k of e.kept) {
          const v = lanes.lineage(k.node, e.worldLine - 1, k.version);
          if (v === undefined) continue;
          v.keptBy = e.worldLine;
          if (!rec.kept.includes(v.key)) rec.kept.push(v.key);
        }
        return;
      }
      case 'rollback':
        this.rollback(e);
        return;
      case 'stateChanged': {
        this.nodeTable.get(e.node);
        this.migrationLog.noteViewChange(e.node, e.set, () => unitsOfState(this.nodeState(e.node)));
        this.nodeTable.changed(e.node, e.version, e.set, e.deleted);
        return;
      }
      case 'nodeFailed':
      case 'nodeRestarted':
      case 'nodeProcess':
      case 'nodeAdded':
      case 'nodeRemoved':
        if (this.nodeTable.lifecycle(e)) lanes.closeLatest(e.node, e.t);
        return;
      case 'placementChanged':
        this.migrationLog.placementChanged(e);
        return;
      case 'messageSent': {
        this.totals.messages++;
        this.messageLog.sent(e);
        if (e.kind === 'request' && !this.nodes.has(e.from) && !e.resend) {
          // A session's request: its id names the session and the request's number.
          const req = requestOfMessageId(e.id);
          if (req !== null && req.seq === e.seq) {
            const r = this.sessionLog.request(req.caller, e.seq);
            r.sentAt ??= e.t;
          }
        }
        return;
      }
      case 'messageDelivered':
        this.messageLog.delivered(e);
        return;
      case 'messageRejected':
        this.totals.rejected++;
        this.messageLog.rejected(e);
        return;
      case 'messageLost':
        this.totals.lost++;
        if (e.reason === 'loss') this.lostBy.loss++;
        else if (this.nodes.get(e.to)?.status === 'down') this.lostBy.down++;
        else this.lostBy.notJoined++;
        this.messageLog.lost(e);
        return;
      case 'sessionResult':
        this.sessionLog.result(e.session, e.seq, e.status, e.t, this.mode);
        return;
      case 'modeChanged':
        this.mode = e.mode;
        return;
      case 'configChanged':
        this.config = e.config;
        this.mode = e.config.mode;
        return;
      case 'workloadChanged':
        this.workload = e.workload;
        return;
    }
  }

  private worldLineChanged(e: Extract<InspectionEvent, { type: 'worldLineChanged' }>): void {
    if (e.worldLine > this.worldLine) this.worldLine = e.worldLine;
    // Traces recorded before precise recovery carry no restore points, reason or recovery kind.
    const kept: Cut = e.kept ?? e.cut;
    this.worldLines.push({
      worldLine: e.worldLine,
      startAt: e.t,
      cut: { ...e.cut },
      failed: [...e.failed],
      kept: { ...kept },
      reason: e.reason ?? null,
      recovery: e.recovery ?? null,
    });
    if (this.worldLines.length > this.limits.worldLinesMax) this.worldLines.shift();
    this.setCut(e.worldLine, e.cut, e.t);
    for (const id of Object.keys(e.cut)) this.nodeTable.get(id);
    this.nodeTable.worldLineStarted(e.worldLine, new Set(e.failed));
    if (e.failed.length > 0) {
      const rec = this.rollbackRecord(e.worldLine, e.t);
      // A failed node's versions above its restore point died with its process: the causes of this
      // recovery. Those up to it were persisted and (with precise recovery) survive.
      for (const id of e.failed) this.discardLost(rec, id, kept[id] ?? e.cut[id] ?? 0, e.t);
    }
  }

  private rollback(e: Extract<InspectionEvent, { type: 'rollback' }>): void {
    const node = this.nodeTable.get(e.node);
    let rec: RollbackRecord | null = null;
    // `toVersion` is the node's restore point, which precise recovery may put above the cut: it
    // keeps every version up to it. What it discarded is the range it names, in its own lineage.
    const discarded = e.discarded;
    if (discarded !== null) {
      for (const v of this.lane(e.node)) {
        if (v.worldLine <= e.worldLine && v.version >= discarded.from && v.version <= discarded.to && this.discard(v, e.worldLine, e.t)) {
          rec ??= this.rollbackRecord(e.worldLine, e.t);
          rec.discarded.push(v.key);
        }
      }
    }
    const open = this.lane(e.node).at(-1);
    if (open !== undefined && open.closedAt === null && open.state === 'rolled-back') open.closedAt = e.t;
    node.worldLine = Math.max(node.worldLine, e.worldLine);
    // A node that kept everything goes on in its open version, even an empty one above its restore point.
    node.version = open !== undefined && open.closedAt === null && open.state !== 'rolled-back' ? open.version : e.toVersion;
    node.persistedVersion = Math.min(node.persistedVersion, Math.max(e.toVersion, node.committedVersion));
    this.appState.rollback(e.node, e.toVersion);
    if (node.status !== 'down') node.status = 'up';
  }

  private discard(v: VersionView, byWorldLine: WorldLine, t: number): boolean {
    if (!this.versionLanes.discard(v, byWorldLine, t)) return false;
    this.totals.rolledBack++;
    return true;
  }

  /** Discards a lost node's versions above `keptUpTo` from the world-lines before the record's: the recovery's causes. */
  private discardLost(rec: RollbackRecord, node: NodeId, keptUpTo: Version, t: number): void {
    for (const v of this.lane(node)) {
      if (v.worldLine < rec.worldLine && v.version > keptUpTo && this.discard(v, rec.worldLine, t)) {
        rec.roots.push(v.key);
        rec.discarded.push(v.key);
      }
    }
  }

  private rollbackRecord(worldLine: WorldLine, t: number): RollbackRecord {
    let rec = this.rollbacks.find((r) => r.worldLine === worldLine);
    if (rec === undefined) {
      const w = this.worldLines.findLast((x) => x.worldLine === worldLine);
      rec = {
        worldLine,
        t,
        failed: [...(w?.failed ?? [])],
        cut: { ...(w?.cut ?? this.cut) },
        reason: w?.reason ?? null,
        recovery: w?.recovery ?? null,
        roots: [],
        discarded: [],
        plan: null,
        kept: [],
      };
      this.rollbacks.push(rec);
      if (this.rollbacks.length > this.limits.rollbackRecordsMax) this.rollbacks.shift();
    }
    return rec;
  }

  private setCut(worldLine: WorldLine, cut: Cut, t: number): void {
    if (worldLine < this.worldLine) return;
    this.cut = { ...cut };
    let total = 0;
    for (const [id, v] of Object.entries(cut)) {
      total += v;
      this.nodeTable.committed(id, v);
      this.commitCovered(id, t);
    }
    this.cutHistory.push({ t, worldLine, total });
    if (this.cutHistory.length > this.limits.cutHistoryMax * 1.25) this.cutHistory = this.cutHistory.slice(-this.limits.cutHistoryMax);
  }

  /** Marks the node's versions the cut covers as committed (never a rolled-back one). */
  private commitCovered(node: NodeId, t: number): void {
    this.totals.committed += this.versionLanes.commitUpTo(node, this.cut[node] ?? 0, t);
  }
}
