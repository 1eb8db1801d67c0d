import type {
  ClusterConfig,
  ClusterInfo,
  Cut,
  Deps,
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
import { requestOfMessageId, StateMirror } from '@dse/shared';
import { MessageLog } from './messages';
import { SessionLog } from './sessions';
import { VIEW_KEY, migrationMoves, unitsOfState } from './placement';

/**
 * The playground's view state, computed only from inspection events (and the server's snapshot of
 * them). `apply` is deterministic: the same events give the same model, which is what makes traces
 * replayable and the model unit-testable. It mutates in place for speed; `revision` counts changes.
 */

/** Event time after `handedOver` until a change's moves are fixed (a node reports its state when it closes a version). */
const MOVES_SETTLE_MS = 2000;

export * from './views';
import {
  DEFAULT_MODEL_LIMITS,
  versionKey,
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

/** One collator for every comparison: `localeCompare` with options builds one per call. */
const ID_ORDER = new Intl.Collator('en', { numeric: true });

function compareIds(a: string, b: string): number {
  return ID_ORDER.compare(a, b);
}

export class PlaygroundModel {
  revision = 0;
  readonly limits: ModelLimits;
  nodes = new Map<NodeId, NodeView>();
  versions = new Map<string, VersionView>();
  /** Per node, its versions in the order they were opened (every world-line). */
  lanes = new Map<NodeId, VersionView[]>();
  compressed = new Map<NodeId, CompressedHistory>();
  private readonly messageLog: MessageLog;
  worldLine: WorldLine = 0;
  worldLines: WorldLineView[] = [];
  cut: Cut = {};
  cutHistory: { t: number; worldLine: WorldLine; total: number }[] = [];
  rollbacks: RollbackRecord[] = [];
  private readonly sessionLog: SessionLog;
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
  /** The placement the server routes by, when the snapshot or a `placementChanged` told it. */
  placement: PlacementInfo | null = null;
  /** Membership changes seen (newest last, a few kept); the last one runs while its phase is not `handedOver`. */
  migrations: MigrationView[] = [];
  /** Per node: its units just before its state took placement version `version` (what moved is measured from these). */
  unitsBeforeView = new Map<NodeId, { version: number; units: ReadonlySet<string> }>();

  /**
   * Every node's app state as far as the events since this page joined tell: a committed base and the
   * uncommitted changes, each with the world-line it was made in (a killed node's lost changes are
   * told apart before its `rollback` comes).
   */
  readonly appState: StateMirror<StateChange>;

  constructor(limits: Partial<ModelLimits> = {}) {
    this.limits = { ...DEFAULT_MODEL_LIMITS, ...limits };
    this.appState = new StateMirror<StateChange>(this.limits.stateChangesPerNodeMax);
    this.messageLog = new MessageLog(this.limits.messagesMax);
    this.sessionLog = new SessionLog(this.limits.sessionRequestsMax);
  }

  /** The messages in the diagram by their own number, oldest first. */
  get messages(): ReadonlyMap<number, MessageView> {
    return this.messageLog.messages;
  }

  /** The sessions' requests by `session#seq`, oldest first. */
  get sessions(): ReadonlyMap<string, SessionRequestView> {
    return this.sessionLog.requests;
  }

  /** Node ids with a lane, in a stable order. */
  laneIds(): NodeId[] {
    return [...this.nodes.values()]
      .filter((n) => !n.removed)
      .map((n) => n.id)
      .sort(compareIds);
  }

  lane(node: NodeId): readonly VersionView[] {
    return this.lanes.get(node) ?? [];
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
    const m = this.migrations.at(-1);
    if (m === undefined || m.phase === 'handedOver') return null;
    const at = m.committedAt ?? m.sentAt;
    return at === null || this.lastT - at < 120_000 ? m : null;
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
    if (baseStates !== undefined) this.loadBaseStates(baseStates);
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
    const present = new Set(cluster.nodes.map((n) => n.id));
    for (const info of cluster.nodes) {
      const n = this.node(info.id);
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
    if (cluster.placement !== undefined && (this.placement === null || cluster.placement.version >= this.placement.version)) {
      this.placement = { version: cluster.placement.version, members: [...cluster.placement.members] };
    }
    this.lastEvent = Math.max(this.lastEvent, cluster.lastEvent);
    this.revision++;
  }

  /** Starts each node's app state from the server's account of it (before any event is applied). */
  private loadBaseStates(bases: Readonly<Record<NodeId, NodeStateBase>>): void {
    for (const [id, b] of Object.entries(bases)) {
      const n = this.node(id);
      n.committedVersion = Math.max(n.committedVersion, b.committedVersion);
      // The world-line of these changes is not told; 0 never names a version the model tracks, so
      // only a `rollback` event (by version) discards them, as it discards any change above its version.
      const pending = b.pending.map((c) => ({ worldLine: 0, version: c.version, set: c.set, deleted: c.deleted }));
      this.appState.load(id, { committedVersion: n.committedVersion, committed: b.committed, pending });
    }
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
    const last = this.migrations.at(-1);
    if (last !== undefined && last.moves === null && last.handedOverAt !== null && e.t - last.handedOverAt >= MOVES_SETTLE_MS) {
      last.moves = migrationMoves(this, last.version) ?? { version: last.version, gained: {}, lost: {}, moves: [] };
    }
    this.reduce(e);
  }

  private reduce(e: InspectionEvent): void {
    switch (e.type) {
      case 'versionOpened': {
        const node = this.node(e.node);
        this.closeOpenVersion(e.node, e.t);
        node.version = e.version;
        node.worldLine = Math.max(node.worldLine, e.worldLine);
        if (node.status === 'recovering') node.status = 'up';
        const key = versionKey(e.node, e.worldLine, e.version);
        const old = this.versions.get(key);
        if (old !== undefined) this.dropVersion(old);
        const v = newVersion(key, e.node, e.worldLine, e.version, e.prevVersion, e.t);
        this.versions.set(key, v);
        this.laneOf(e.node).push(v);
        this.commitCovered(e.node, e.t);
        this.compress(e.node);
        return;
      }
      case 'checkpointStarted': {
        this.totals.checkpoints++;
        const v = this.versionOrStub(e.node, e.worldLine, e.version, e.prevVersion, e.t);
        if (v.closedAt === null) v.closedAt = e.t;
        v.checkpointAt = e.t;
        v.changedKeys = e.changedKeys;
        mergeDeps(v.deps, e.deps, e.node);
        if (v.state === 'speculative') v.state = 'persisting';
        return;
      }
      case 'checkpointPersisted': {
        const node = this.node(e.node);
        const v = this.lineageVersion(e.node, e.worldLine, e.version);
        if (v !== undefined) {
          v.persistedAt = e.t;
          mergeDeps(v.deps, e.deps, e.node);
        }
        if (e.worldLine === node.worldLine && e.version > node.persistedVersion) node.persistedVersion = e.version;
        return;
      }
      case 'checkpointFailed': {
        const v = this.lineageVersion(e.node, e.worldLine, e.version);
        if (v !== undefined) v.checkpointFailures++;
        return;
      }
      case 'dependencyRecorded': {
        const node = this.node(e.node);
        const v = this.lineageVersion(e.node, node.worldLine, e.version);
        if (v !== undefined) mergeDeps(v.deps, e.on, e.node);
        return;
      }
      case 'cutAdvanced':
        this.setCut(e.worldLine, e.cut, e.t);
        return;
      case 'worldLineChanged': {
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
        const failed = new Set(e.failed);
        for (const id of Object.keys(e.cut)) this.node(id);
        for (const node of this.nodes.values()) {
          if (node.removed) continue;
          if (failed.has(node.id)) node.status = 'down';
          else if (node.status === 'up' && node.worldLine < e.worldLine) node.status = 'recovering';
        }
        if (e.failed.length > 0) {
          const rec = this.rollbackRecord(e.worldLine, e.t);
          // A failed node's versions above its restore point died with its process: the causes of this
          // recovery. Those up to it were persisted and (with precise recovery) survive.
          for (const id of e.failed) this.discardLost(rec, id, kept[id] ?? e.cut[id] ?? 0, e.t);
        }
        return;
      }
      case 'recoveryPlan': {
        const anything = e.lost.length > 0 || e.rolledBack.length > 0 || e.kept.length > 0;
        const rec = anything ? this.rollbackRecord(e.worldLine, e.t) : this.rollbacks.find((r) => r.worldLine === e.worldLine);
        if (rec === undefined) return;
        rec.plan = { recovery: e.recovery, lost: e.lost, rolledBack: e.rolledBack, kept: e.kept };
        rec.recovery = e.recovery;
        // Lost state can belong to a node that was down already (not in this world-line's `failed`).
        for (const l of e.lost) this.discardLost(rec, l.node, l.version, e.t);
        for (const k of e.kept) {
          const v = this.lineageVersion(k.node, e.worldLine - 1, k.version);
          if (v === undefined) continue;
          v.keptBy = e.worldLine;
          if (!rec.kept.includes(v.key)) rec.kept.push(v.key);
        }
        return;
      }
      case 'rollback': {
        const node = this.node(e.node);
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
        return;
      }
      case 'stateChanged': {
        const node = this.node(e.node);
        this.noteViewChange(e.node, e.set);
        const change: StateChange = { worldLine: node.worldLine, version: e.version, set: e.set, deleted: e.deleted };
        node.lastChange = change;
        // Past `stateChangesPerNodeMax` uncommitted changes the oldest is folded into the base (shown as known state).
        this.appState.change(e.node, change);
        return;
      }
      case 'nodeFailed': {
        const node = this.node(e.node);
        node.status = 'down';
        node.failures++;
        const open = this.lane(e.node).at(-1);
        if (open !== undefined && open.closedAt === null) open.closedAt = e.t;
        return;
      }
      case 'nodeRestarted': {
        const node = this.node(e.node);
        node.status = 'recovering';
        return;
      }
      case 'nodeProcess': {
        const node = this.node(e.node);
        if (e.state === 'exited') {
          node.pid = null;
          node.status = 'down';
          const open = this.lane(e.node).at(-1);
          if (open !== undefined && open.closedAt === null) open.closedAt = e.t;
        } else {
          node.pid = e.pid;
          if (e.state === 'spawned') node.starts++;
          if (node.status === 'down') node.status = 'recovering';
        }
        return;
      }
      case 'nodeAdded':
        this.node(e.node).removed = false;
        return;
      case 'nodeRemoved':
        this.node(e.node).removed = true;
        return;
      case 'placementChanged': {
        // Traces are checked only for type and time: a malformed one is skipped, not drawn.
        if (typeof e.version !== 'number' || !Array.isArray(e.members)) return;
        const members = e.members.filter((x): x is NodeId => typeof x === 'string');
        let m = this.migrations.findLast((x) => x.version === e.version);
        if (m === undefined) {
          const prev = this.placement;
          m = {
            version: e.version,
            change: typeof e.change === 'string' ? e.change : '',
            members,
            prevMembers: prev !== null && prev.version < e.version ? [...prev.members] : null,
            phase: e.phase,
            sentAt: null,
            committedAt: null,
            handedOverAt: null,
            moves: null,
          };
          this.migrations.push(m);
          if (this.migrations.length > 10) this.migrations.shift();
        }
        m.members = members;
        if (e.phase === 'sent') m.sentAt ??= e.t;
        else if (e.phase === 'committed') m.committedAt ??= e.t;
        else m.handedOverAt ??= e.t;
        // Phases only go forward (an event of an earlier phase never comes later, but a trace may be odd).
        const order = { sent: 0, committed: 1, handedOver: 2 } as const;
        if ((order[e.phase] ?? 0) >= (order[m.phase] ?? 0)) m.phase = e.phase;
        // The server routes by a version once it is committed (a change never committed never took effect).
        if (e.phase !== 'sent' && (this.placement === null || e.version >= this.placement.version))
          this.placement = { version: e.version, members: [...members] };
        return;
      }
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

  node(id: NodeId): NodeView {
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

  /**
   * A node's state takes a newer placement view (`pl/view`): keep its units just before, to tell what
   * moved in that change.
   */
  private noteViewChange(node: NodeId, set: Readonly<Record<string, Json>>): void {
    if (!(VIEW_KEY in set)) return;
    const v = set[VIEW_KEY];
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof v.v !== 'number') return;
    const known = this.unitsBeforeView.get(node);
    if (known !== undefined && known.version >= v.v) return;
    this.unitsBeforeView.set(node, { version: v.v, units: unitsOfState(this.nodeState(node)) });
  }

  /** The node's state as the events tell it: committed base plus uncommitted changes, in order. */
  nodeState(id: NodeId): Record<string, Json> {
    return this.nodes.has(id) ? this.appState.current(id) : {};
  }

  private laneOf(node: NodeId): VersionView[] {
    let l = this.lanes.get(node);
    if (l === undefined) this.lanes.set(node, (l = []));
    return l;
  }

  private closeOpenVersion(node: NodeId, t: number): void {
    const l = this.lanes.get(node);
    if (l === undefined) return;
    for (let i = l.length - 1; i >= 0 && i >= l.length - 4; i--) {
      const v = l[i]!;
      if (v.closedAt === null) v.closedAt = t;
    }
  }

  /**
   * The node's `version` as world-line `worldLine` knows it: its own, or one an earlier world-line's
   * precise recovery kept. A node goes on closing and writing a kept version under the new world-line,
   * so those events name the new one.
   */
  lineageVersion(node: NodeId, worldLine: WorldLine, version: Version): VersionView | undefined {
    const own = this.versions.get(versionKey(node, worldLine, version));
    if (own !== undefined) return own;
    let kept: VersionView | undefined;
    for (const v of this.lane(node)) {
      if (v.version === version && v.worldLine < worldLine && v.state !== 'rolled-back' && (kept === undefined || v.worldLine > kept.worldLine)) kept = v;
    }
    return kept;
  }

  private versionOrStub(node: NodeId, worldLine: WorldLine, version: Version, prevVersion: Version, t: number): VersionView {
    let v = this.lineageVersion(node, worldLine, version);
    if (v === undefined) {
      const key = versionKey(node, worldLine, version);
      // Its opening is older than the history this page has: show it from now.
      v = newVersion(key, node, worldLine, version, prevVersion, t);
      this.versions.set(key, v);
      const lane = this.laneOf(node);
      lane.push(v);
      lane.sort((a, b) => a.openedAt - b.openedAt);
      this.node(node);
    }
    return v;
  }

  private discard(v: VersionView, byWorldLine: WorldLine, t: number): boolean {
    if (v.state === 'committed' || v.state === 'rolled-back') return false;
    v.state = 'rolled-back';
    v.rolledBackAt = t;
    v.rolledBackBy = byWorldLine;
    if (v.closedAt === null) v.closedAt = t;
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
      const node = this.node(id);
      node.committedVersion = v;
      this.commitCovered(id, t);
      this.appState.commit(id, v);
    }
    this.cutHistory.push({ t, worldLine, total });
    if (this.cutHistory.length > this.limits.cutHistoryMax * 1.25) this.cutHistory = this.cutHistory.slice(-this.limits.cutHistoryMax);
  }

  /** Marks the node's versions the cut covers as committed (never a rolled-back one). */
  private commitCovered(node: NodeId, t: number): void {
    const c = this.cut[node] ?? 0;
    const lane = this.lanes.get(node);
    if (lane === undefined) return;
    for (let i = lane.length - 1; i >= 0; i--) {
      const v = lane[i]!;
      if (v.state === 'committed') break;
      if (v.state === 'rolled-back' || v.version > c) continue;
      v.state = 'committed';
      v.committedAt = t;
      this.totals.committed++;
    }
  }

  private dropVersion(v: VersionView): void {
    this.versions.delete(v.key);
    const lane = this.lanes.get(v.node);
    if (lane !== undefined) {
      const i = lane.indexOf(v);
      if (i >= 0) lane.splice(i, 1);
    }
  }

  /** Keeps each lane bounded: the oldest settled versions become counts. */
  private compress(node: NodeId): void {
    const lane = this.lanes.get(node);
    if (lane === undefined || lane.length <= this.limits.versionsPerNodeMax) return;
    const keep = Math.floor(this.limits.versionsPerNodeMax * 0.8);
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
}

function mergeDeps(into: Deps, from: Readonly<Deps>, self: NodeId): void {
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
