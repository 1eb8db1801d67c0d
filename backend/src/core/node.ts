import type { CallerId, Cut, CutKind, Deps, Header, Json, MessageKind, Mode, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError, fromJson, isDseError, messageIds, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest, Sthread } from './app';
import { PENDING } from './app';
import type { CallerReply, CallerTable } from './caller-table';
import { readRemovedReply, removedReplyJson, withReply, withSettled } from './caller-table';
import { CheckpointWriter, SnapshotSchedule } from './checkpoint';
import type { DedupWindow } from './dedup';
import { EMPTY_DEDUP_WINDOW, wasApplied, withApplied } from './dedup';
import { maxVersion, mergeInto } from './deps';
import { normalizeStoredRecords } from './stored-records';
import type { ReportedVersion, WireMessage } from './messages';
import { COORDINATOR } from './messages';
import type { CheckpointRecord, Clock, Network, Observer, Storage, TimerId } from './ports';
import {
  appEntries,
  appKey,
  appKeyName,
  callerKey,
  dedupKey,
  goneKey,
  outboxKey,
  outboxRecordJson,
  parseOutboxKey,
  readOutboxRecord,
  seqKey,
} from './state-keys';
import type { SthreadHost, SthreadImpl } from './sthread';
import { Sthreads } from './sthread';

export interface NodeConfig {
  mode: Mode;
  cutKind: CutKind;
  checkpointIntervalMs: number;
  /** Unacknowledged messages and unanswered sthread calls are sent again after this long. */
  retransmitMs: number;
  /** Heartbeats to the coordinator; null: none (failures are then reported by whoever runs the node). */
  heartbeatMs: number | null;
  storageRetryMs: number;
  /** Emit `stateChanged` events with the app keys a version changed (the playground wants them; the simulator does not). */
  emitStateChanges: boolean;
  /** Messages from a newer world-line held while waiting for the coordinator's `recover`. */
  bufferedMessagesMax: number;
  /**
   * Checkpoint batches written at once. Two: a version closed on demand (a flush, durable mode) goes to
   * storage at once even while a periodic checkpoint is being written; they are reported in order.
   */
  writesInFlight: number;
}

export const DEFAULT_NODE_CONFIG: NodeConfig = {
  mode: 'speculative',
  cutKind: 'exact',
  checkpointIntervalMs: 10,
  retransmitMs: 200,
  heartbeatMs: null,
  storageRetryMs: 50,
  emitStateChanges: false,
  bufferedMessagesMax: 10_000,
  writesInFlight: 2,
};

export interface NodePorts {
  clock: Clock;
  network: Network;
  storage: Storage;
  observer: Observer;
  /**
   * Names this process of the node: higher for each start (default: the clock at construction), so that
   * the coordinator tells a late message of a dead process from one of its successor.
   */
  incarnation?: number;
  /**
   * An error the runtime could not handle in an asynchronous step (a failed internal assertion, a
   * corrupt checkpoint). The node has stopped; whoever runs it decides (the live node process exits,
   * the simulator records a violation). Without it the error is rethrown.
   */
  onFatal?: (error: unknown) => void;
}

/**
 * `starting`: a fresh process, waiting for its `recover`; `up`: running; `frozen`: a recovery is being
 * prepared, new work waits; `restoring`: loading its restore point from storage; `stopped`: dead.
 */
export type NodeStatus = 'starting' | 'up' | 'frozen' | 'restoring' | 'stopped';

/**
 * A closed version above the cut as this node knows it: what it needs to report it to a recovery and to
 * roll back below it in memory.
 */
interface ClosedVersion {
  version: Version;
  prevVersion: Version;
  deps: Deps;
  /** The keys this version changed, with their values before it (`undefined`: absent). */
  undo: Map<string, Json | undefined>;
  /** Its checkpoint record (retagged with the world-line it is written in). */
  record: CheckpointRecord;
  persisted: boolean;
}

interface OutboxEntry {
  to: NodeId;
  seq: number;
  payload: Json;
  srcVersion: Version;
  lastSentAt: number;
}

/**
 * One DSE node: runs the app's actions in versions, tracks dependencies, checkpoints asynchronously,
 * keeps an outbox until acknowledged, and when the coordinator says so rolls back to its restore point
 * (in memory while it runs, from storage when it starts fresh). Pure: everything it touches comes
 * through its ports.
 */
export class DseNode implements SthreadHost {
  readonly id: NodeId;
  readonly incarnation: number;
  private readonly cfg: NodeConfig;
  private readonly clock: Clock;
  private readonly network: Network;
  private readonly storage: Storage;
  private readonly observer: Observer;
  private readonly app: App;
  private readonly onFatal: ((error: unknown) => void) | undefined;

  status: NodeStatus = 'starting';
  worldLine: WorldLine = 0;
  version: Version = 0;
  /** Highest version known durable (in `none` mode: closed); versions up to it are all durable. */
  persistedVersion: Version = 0;
  /** The cut as last heard from the coordinator, in this world-line. */
  cut: Cut = {};

  private state = new Map<string, Json>();
  /** Keys changed in the open version; `undefined` marks a delete. */
  private dirty = new Map<string, Json | undefined>();
  /** The open version's undo log: each key it changed, with its value before the version. */
  private openUndo = new Map<string, Json | undefined>();
  private versionDeps: Deps = {};
  /** Something happened in the open version that others may depend on. */
  private active = false;
  private lastCheckpointVersion: Version = 0;
  /** Full snapshot or delta, for each checkpoint. */
  private readonly snapshots: SnapshotSchedule;
  /** Closed versions above the cut this node knows, oldest first; undoing all of them reaches `baseVersion`. */
  private closed: ClosedVersion[] = [];
  /** The committed (or restored) version the closed versions follow: the lowest this node can roll back to in memory. */
  private baseVersion: Version = 0;

  /** Checkpoints on their way to storage. */
  private readonly writer: CheckpointWriter;
  /** A restore waiting to read storage again (it was unreachable). */
  private restoreRetryTimer: TimerId | null = null;
  /** In `durable` mode, messages of a version wait here until that version is persisted. */
  private held = new Map<Version, [string, HeaderedMessage, MessageKind][]>();

  private outbox = new Map<string, OutboxEntry>();
  private buffered: WireMessage[] = [];
  private pendingRecover: Extract<WireMessage, { kind: 'recover' }> | null = null;
  /** The world-line of the restore under way (status `restoring`). */
  private restoringWorldLine: WorldLine = 0;
  /** The world-line of a recover whose restore point was missing from storage (asked again once). */
  private missingFor: WorldLine = 0;
  /** The world-line a recovery is being prepared for (status `frozen`), or asked of a restore under way. */
  private preparingFor: WorldLine = 0;
  /** Bumped on every restore: callbacks of older storage operations and sthreads are ignored. */
  private epoch = 0;
  private readonly sthreads: Sthreads;
  /** See `setHeld`. */
  private holding = false;
  /** Left the cluster (`leave`): no input is taken any more. */
  private leaving = false;
  /** The highest version of each other node this node already asked to flush (it asks once per version). */
  private flushAsked = new Map<NodeId, Version>();
  // One handle per periodic timer, replaced on each tick.
  private checkpointTimer: TimerId | null = null;
  private retransmitTimer: TimerId | null = null;
  private heartbeatTimer: TimerId | null = null;

  // The open action, if any.
  private inAction = false;
  private undo: Map<string, Json | undefined> | null = null;
  private actionSends: [NodeId, Json][] = [];
  private actionSpawns: [string, (st: Sthread) => Promise<void>, NodeId | undefined][] = [];
  /** Nodes the running action recorded as removed (`targetRemoved`): their waiting calls are answered after it. */
  private actionGone: NodeId[] = [];
  /** Replies completed by the open action: they leave only if it succeeds. */
  private actionReplies: [string, CallerId, number, Json, Version, Version | undefined][] = [];
  private readonly ctx: ActionContext;

  /** Errors thrown by sthread bodies other than a world-line change: bugs in the app. */
  get sthreadErrors(): unknown[] {
    return this.sthreads.errors;
  }

  constructor(id: NodeId, app: App, ports: NodePorts, cfg: Partial<NodeConfig> = {}) {
    this.id = id;
    this.app = app;
    this.cfg = { ...DEFAULT_NODE_CONFIG, ...cfg };
    this.clock = ports.clock;
    this.network = ports.network;
    this.storage = ports.storage;
    this.observer = ports.observer;
    this.onFatal = ports.onFatal;
    this.incarnation = ports.incarnation ?? ports.clock.now();
    this.ctx = this.makeContext();
    this.snapshots = new SnapshotSchedule();
    this.sthreads = new Sthreads(this);
    this.writer = new CheckpointWriter({
      id,
      clock: this.clock,
      storage: this.storage,
      observer: this.observer,
      writesInFlight: this.cfg.writesInFlight,
      storageRetryMs: this.cfg.storageRetryMs,
      canWrite: () => this.status === 'up' || this.status === 'frozen',
      epoch: () => this.epoch,
      guarded: (fn) => this.guarded(fn),
      onPersisted: (batch) => this.onPersisted(batch),
    });
  }

  get mode(): Mode {
    return this.cfg.mode;
  }

  /** Starts with empty memory: asks the coordinator where to restore from. */
  start(): void {
    this.network.send(COORDINATOR, { kind: 'hello', node: this.id, incarnation: this.incarnation });
    this.checkpointTimer = this.clock.setTimer(this.cfg.checkpointIntervalMs, () => this.onCheckpointTimer());
    this.retransmitTimer = this.clock.setTimer(this.cfg.retransmitMs, () => this.onRetransmitTimer());
    if (this.cfg.heartbeatMs !== null) this.heartbeatTimer = this.clock.setTimer(this.cfg.heartbeatMs, () => this.onHeartbeatTimer());
  }

  /** Stops everything this node does (its process died). */
  stop(): void {
    this.status = 'stopped';
    this.epoch++;
    for (const t of [this.checkpointTimer, this.retransmitTimer, this.heartbeatTimer, this.restoreRetryTimer]) if (t !== null) this.clock.clearTimer(t);
    this.checkpointTimer = this.retransmitTimer = this.heartbeatTimer = this.restoreRetryTimer = null;
    this.writer.stop();
    this.sthreads.abandonAll();
  }

  /** Timers this node holds (a leak shows here first). */
  get timersHeld(): number {
    return [this.checkpointTimer, this.retransmitTimer, this.heartbeatTimer, this.restoreRetryTimer].filter((t) => t !== null).length + this.writer.timersHeld;
  }

  /** Live reconfiguration (the playground's slider): the next checkpoint timer uses the new interval. */
  setCheckpointInterval(ms: number): void {
    this.cfg.checkpointIntervalMs = ms;
  }

  /**
   * Holds the node (the playground's hold, while a learner thinks): it closes no version, answers no
   * flush and resends nothing until released. Messages that arrive are still applied, in the open
   * version, and writes already queued still complete: what is on screen then stands still.
   */
  setHeld(held: boolean): void {
    this.holding = held;
  }

  /**
   * Leaves the cluster quietly (a drained node, before it is stopped): from now on it takes no input (app
   * messages, acknowledgements, requests and replies are dropped, as if the network had lost them) and
   * opens no version with anything in it; the coordinator's messages it still follows. Returns its last
   * version: once that has committed, nothing of it can roll back, and the coordinator can forget it
   * without a world-line (`Coordinator.retireLeft`, in the same world-line). Null when it is not up
   * (restoring or recovering). It cannot be undone: the caller stops the node either way.
   */
  leave(): { version: Version; worldLine: WorldLine } | null {
    if (this.status !== 'up') return null;
    this.leaving = true;
    if (this.active) this.closeVersion(0);
    return { version: this.lastCheckpointVersion, worldLine: this.worldLine };
  }

  /** Closes the open version now (checkpoint on demand). */
  checkpointNow(): void {
    if (this.status === 'up' && this.active) this.closeVersion(0);
  }

  /** App state, without runtime keys (for inspection and checks). */
  appState(): Map<string, Json> {
    return new Map(appEntries(this.state));
  }

  /** Versions of the outbox entries still unacknowledged (for inspection and checks). */
  outboxVersions(): Version[] {
    return [...this.outbox.values()].map((e) => e.srcVersion);
  }

  // ---------------------------------------------------------------- receiving

  /** Handles one message; a failed assertion of the runtime stops the node (see `onFatal`). */
  receive(msg: WireMessage): void {
    if (this.status === 'stopped') return;
    this.guarded(() => this.dispatch(msg));
  }

  private dispatch(msg: WireMessage): void {
    switch (msg.kind) {
      case 'recover':
        this.onRecover(msg);
        return;
      case 'prepare':
        this.onPrepare(msg.worldLine);
        return;
      case 'flush':
        if (msg.worldLine === this.worldLine) this.onFlush(msg.upTo);
        return;
      case 'cut':
        if (msg.worldLine === this.worldLine) this.onCut(msg.cut);
        return;
      case 'worldLine':
      case 'persisted':
      case 'prepared':
      case 'hello':
      case 'sync':
      case 'heartbeat':
        return;
      case 'app':
      case 'ack':
      case 'request':
      case 'reply':
      case 'reject':
        break;
    }
    if (this.leaving) return;
    if (this.status !== 'up' || msg.h.worldLine > this.worldLine) {
      // Rule 2: a newer world-line (or a restore or a recovery under way): move to it first, via the coordinator's recover.
      if (msg.h.worldLine > this.worldLine && this.status === 'up') {
        this.network.send(COORDINATOR, { kind: 'sync', from: this.id, role: 'node', since: this.worldLine });
      }
      if (this.buffered.length < this.cfg.bufferedMessagesMax) this.buffered.push(msg);
      return;
    }
    if (msg.h.worldLine < this.worldLine) {
      // Rule 1: the sender lives in a rolled-back world. Never apply; tell it.
      this.observer.emit({
        type: 'messageRejected',
        t: this.clock.now(),
        id: messageId(msg),
        kind: msg.kind,
        from: msg.h.src,
        to: this.id,
        worldLine: msg.h.worldLine,
        receiverWorldLine: this.worldLine,
      });
      if (msg.kind === 'app' || msg.kind === 'request') {
        this.network.send(msg.h.src, { kind: 'reject', h: this.header(0), rejected: msg.kind, rejectedSeq: msg.h.seq });
      }
      return;
    }
    switch (msg.kind) {
      case 'app':
        this.onApp(msg);
        return;
      case 'ack':
        this.onAck(msg);
        return;
      case 'request':
        this.onRequest(msg);
        return;
      case 'reply':
        this.onReply(msg);
        return;
      case 'reject':
        // Only possible from a newer world-line, handled above; same world-line rejects do not exist.
        return;
    }
  }

  private delivered(msg: HeaderedMessage, duplicate: boolean): void {
    this.observer.emit({
      type: 'messageDelivered',
      t: this.clock.now(),
      id: messageId(msg),
      kind: msg.kind,
      from: msg.h.src,
      to: this.id,
      version: this.version,
      duplicate,
    });
  }

  private onApp(msg: Extract<WireMessage, { kind: 'app' }>): void {
    const { src, seq, srcVersion } = msg.h;
    this.jumpTo(srcVersion); // rule 3: commit ordering
    // Rule 4; and a late copy from a node removed for good is not applied: what it sent within the cut
    // went to its heirs with its committed state (`inherit`), anything else rolled back with it.
    const duplicate = this.dedupHas(src, seq) || this.state.has(goneKey(src));
    this.delivered(msg, duplicate);
    this.runAction(() => {
      if (!duplicate) {
        this.recordDeps({ [src]: srcVersion });
        this.dedupAdd(src, seq);
        this.app.onMessage?.(this.ctx, src, msg.payload);
      }
      this.active = true;
    });
    this.sendNow(src, { kind: 'ack', h: this.header(0), ackSeq: seq }, 'ack');
    this.afterAction();
  }

  private onAck(msg: Extract<WireMessage, { kind: 'ack' }>): void {
    const key = outboxKey(msg.h.src, msg.ackSeq);
    if (!this.state.has(key)) return; // already dropped
    this.jumpTo(msg.h.srcVersion);
    this.delivered(msg, false);
    // The drop depends on the receiver's version: if that rolls back, the entry comes back and is resent.
    this.recordDeps({ [msg.h.src]: msg.h.srcVersion });
    this.writeKey(key, undefined);
    this.outbox.delete(`${msg.h.src}:${msg.ackSeq}`);
    this.active = true;
    this.afterAction();
  }

  private onRequest(msg: Extract<WireMessage, { kind: 'request' }>): void {
    const { caller, h } = msg;
    const seq = h.seq;
    this.jumpTo(Math.max(h.srcVersion, maxVersion(msg.deps)));
    const entry = this.callerTable(caller);
    const known = entry?.replies[seq];
    if (known === undefined && seq <= Math.max(entry?.settledUpTo ?? 0, msg.settled ?? 0)) {
      // A late copy of a request the caller has settled: it ran (or was refused) already. Never run it again.
      this.delivered(msg, true);
      return;
    }
    this.delivered(msg, known !== undefined);
    if (known !== undefined) {
      // To whoever asks (an sthread taken over by another node asks from there).
      if (known.status === 'done') this.sendReply(h.src, caller, seq, 'ok', known.result ?? null, known.version ?? this.version, false, known.acceptedAt);
      else if (known.status === 'aborted') this.sendReply(entry!.endpoint, caller, seq, 'aborted', null, this.version, false);
      // 'pending': in progress, the reply follows when it completes.
      return;
    }
    // The caller will never ask again about requests up to `settled`: their replies are forgotten with this action.
    const settled = msg.settled !== undefined && msg.settled > (entry?.settledUpTo ?? 0) ? msg.settled : 0;
    const begin = (reply: CallerReply): void => {
      if (settled > 0) this.settleCaller(caller, h.src, settled);
      this.setCallerReply(caller, h.src, seq, reply);
    };
    if (msg.probe) {
      // A caller asking after a recovery whether this request survived: it did not, and now never will.
      this.runAction(() => begin({ status: 'aborted' }));
      this.sendReply(h.src, caller, seq, 'aborted', null, this.version, true);
      this.afterAction();
      return;
    }
    let result: Json | typeof PENDING = null;
    this.runAction(() => {
      this.recordDeps(msg.deps);
      begin({ status: 'pending', acceptedAt: this.version });
      const req: AppRequest = { caller, seq, payload: msg.payload };
      try {
        result = this.app.onRequest(this.ctx, req);
      } catch (e) {
        if (!isDseError(e)) throw e;
        // A typed refusal by the app is the request's result; the app changed nothing before it (undone below).
        this.rollbackActionChanges();
        begin({ status: 'pending', acceptedAt: this.version });
        const body = e.toBody();
        result = { error: { code: body.code, message: body.message, definite: body.definite } };
      }
      if (result !== PENDING) this.completeRequest(caller, seq, result);
    });
    this.afterAction();
  }

  private onReply(msg: Extract<WireMessage, { kind: 'reply' }>): void {
    const st = this.sthreads.get(msg.caller);
    this.delivered(msg, st === undefined);
    st?.onReply(msg);
  }

  // ---------------------------------------------------------------- actions

  /**
   * Runs `fn` atomically in the open version. If it throws, nothing it did remains (state, sends,
   * replies, sthreads) and the error goes on to the caller.
   */
  private runAction(fn: () => void): void {
    assert(!this.leaving, `${this.id} left the cluster: no action runs on it any more`);
    this.inAction = true;
    this.undo = new Map();
    this.actionSends = [];
    this.actionSpawns = [];
    this.actionReplies = [];
    this.actionGone = [];
    try {
      fn();
    } catch (e) {
      this.rollbackActionChanges();
      this.inAction = false;
      this.undo = null;
      throw e;
    }
    this.inAction = false;
    this.undo = null;
    const sends = this.actionSends;
    const replies = this.actionReplies;
    const spawns = this.actionSpawns;
    const gone = this.actionGone;
    this.actionSends = [];
    this.actionReplies = [];
    this.actionSpawns = [];
    this.actionGone = [];
    for (const [to, payload] of sends) this.sendApp(to, payload);
    for (const [to, caller, seq, result, at, acceptedAt] of replies) this.sendReply(to, caller, seq, 'ok', result, at, true, acceptedAt);
    for (const [key, body, as] of spawns) this.startSthread(key, body, as);
    for (const removed of gone) for (const st of this.sthreads.waitingOn(removed)) this.answerFromGone(st, removed, st.pendingCall!.seq);
  }

  private rollbackActionChanges(): void {
    if (this.undo === null) return;
    for (const [k, v] of this.undo) this.writeKeyRaw(k, v);
    this.undo.clear();
    this.actionSends = [];
    this.actionSpawns = [];
    this.actionReplies = [];
    this.actionGone = [];
  }

  /** In durable mode every action is its own version. */
  private afterAction(): void {
    if (this.cfg.mode === 'durable' && this.active) this.closeVersion(0);
  }

  private makeContext(): ActionContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const node = this;
    // Reads are refused outside an action too: a read there records no dependency and sees later state.
    const mustBeInAction = (): void => {
      if (!node.inAction) throw new Error(`node ${node.id}: the action context was used outside an action (after an await?)`);
    };
    return {
      get nodeId() {
        return node.id;
      },
      get version() {
        return node.version;
      },
      get worldLine() {
        return node.worldLine;
      },
      get now() {
        return node.clock.now();
      },
      get(key) {
        mustBeInAction();
        return node.state.get(appKey(key));
      },
      put(key, value) {
        mustBeInAction();
        node.writeKey(appKey(key), value);
      },
      delete(key) {
        mustBeInAction();
        const k = appKey(key);
        if (node.state.has(k)) node.writeKey(k, undefined);
      },
      keys(prefix = '') {
        mustBeInAction();
        const p = appKey(prefix);
        const out: string[] = [];
        for (const k of node.state.keys()) if (k.startsWith(p)) out.push(appKeyName(k)!);
        return out;
      },
      send(to, payload) {
        mustBeInAction();
        node.actionSends.push([to, payload]);
      },
      completeRequest(caller, seq, result) {
        mustBeInAction();
        node.completeRequest(caller, seq, result);
      },
      isPending(caller, seq) {
        return node.callerTable(caller)?.replies[seq]?.status === 'pending';
      },
      detach(key, body, opts) {
        mustBeInAction();
        node.actionSpawns.push([key, body, opts?.as]);
      },
      targetRemoved(removed, replies) {
        mustBeInAction();
        if (removed === node.id) throw new Error(`node ${node.id}: targetRemoved names this node`);
        const byCaller: { [caller: string]: { [seq: string]: Json } } = {};
        for (const r of replies) (byCaller[r[0]] ??= {})[r[1]] = removedReplyJson(r)[2];
        node.writeKey(goneKey(removed), byCaller);
        node.actionGone.push(removed);
      },
      takeUndelivered(removed, applied) {
        mustBeInAction();
        const w = applied ?? EMPTY_DEDUP_WINDOW;
        const out: { seq: number; payload: Json }[] = [];
        for (const [k, e] of [...node.outbox]) {
          if (e.to !== removed) continue;
          node.writeKey(outboxKey(e.to, e.seq), undefined);
          node.outbox.delete(k);
          if (!wasApplied(w, e.seq)) out.push({ seq: e.seq, payload: e.payload });
        }
        return out.sort((a, b) => a.seq - b.seq).map((o) => o.payload);
      },
    };
  }

  private writeKey(key: string, value: Json | undefined): void {
    if (this.undo !== null && !this.undo.has(key)) this.undo.set(key, this.state.get(key));
    this.writeKeyRaw(key, value);
    this.active = true;
  }

  private writeKeyRaw(key: string, value: Json | undefined): void {
    if (!this.openUndo.has(key)) this.openUndo.set(key, this.state.get(key));
    if (value === undefined) this.state.delete(key);
    else this.state.set(key, value);
    this.dirty.set(key, value);
  }

  private recordDeps(deps: Readonly<Deps>): void {
    let changed: Deps | null = null;
    for (const n in deps) {
      if (n === this.id) continue;
      const v = deps[n]!;
      // The commit-ordering rule (3) moved this node to at least every version it hears of.
      assert(v <= this.version, `node ${this.id}: a dependency on ${n}@${v} recorded in version ${this.version} (rule 3 broken)`);
      if ((this.versionDeps[n] ?? 0) < v) {
        this.versionDeps[n] = v;
        (changed ??= {})[n] = v;
      }
    }
    if (changed !== null) {
      this.active = true;
      this.observer.emit({ type: 'dependencyRecorded', t: this.clock.now(), node: this.id, version: this.version, on: changed });
    }
  }

  /**
   * The caller table of `caller`. The state holds it in the named form, as this node wrote it (a restore
   * reads and checks every stored table once, in either form: `normalizeStoredRecords`); a request's hot
   * path neither parses nor copies it.
   */
  private callerTable(caller: CallerId): CallerTable | undefined {
    return fromJson<CallerTable | undefined>(this.state.get(callerKey(caller)));
  }

  private setCallerReply(caller: CallerId, endpoint: string, seq: number, reply: CallerReply): void {
    this.writeKey(callerKey(caller), toJson<CallerTable>(withReply(this.callerTable(caller), endpoint, seq, reply)));
  }

  /** Forgets the replies of requests the caller has settled (it never asks about them again). */
  private settleCaller(caller: CallerId, endpoint: string, settled: number): void {
    this.writeKey(callerKey(caller), toJson<CallerTable>(withSettled(this.callerTable(caller), endpoint, settled)));
  }

  private completeRequest(caller: CallerId, seq: number, result: Json): void {
    const entry = this.callerTable(caller);
    const known = entry?.replies[seq];
    if (entry === undefined || known === undefined || known.status !== 'pending') {
      throw new Error(`node ${this.id}: completeRequest(${caller}, ${seq}) for a request not in progress`);
    }
    const reply: CallerReply = { status: 'done', result, version: this.version };
    if (known.acceptedAt !== undefined) reply.acceptedAt = known.acceptedAt;
    this.setCallerReply(caller, entry.endpoint, seq, reply);
    // The reply leaves with the action's other messages, only if the action succeeds.
    this.actionReplies.push([entry.endpoint, caller, seq, result, this.version, known.acceptedAt]);
  }

  private sendReply(
    to: string,
    caller: CallerId,
    seq: number,
    status: 'ok' | 'aborted',
    result: Json,
    at: Version,
    fresh: boolean,
    acceptedAt?: Version,
  ): void {
    const msg: WireMessage = {
      kind: 'reply',
      h: this.header(seq),
      caller,
      seq,
      status,
      result,
      deps: status === 'ok' ? { [this.id]: at } : {},
    };
    if (status === 'ok' && acceptedAt !== undefined) msg.acceptedAt = acceptedAt;
    this.active = true;
    this.sendNow(to, msg, 'reply', !fresh);
  }

  // ---------------------------------------------------------------- sending

  private header(seq: number, srcVersion: Version = this.version): Header {
    return { src: this.id, srcVersion, worldLine: this.worldLine, seq };
  }

  private sendApp(to: NodeId, payload: Json): void {
    const last = this.state.get(seqKey(to));
    const seq = (typeof last === 'number' ? last : 0) + 1;
    this.writeKey(seqKey(to), seq);
    this.writeKey(outboxKey(to, seq), outboxRecordJson({ payload, version: this.version }));
    this.outbox.set(`${to}:${seq}`, { to, seq, payload, srcVersion: this.version, lastSentAt: this.clock.now() });
    this.sendNow(to, { kind: 'app', h: this.header(seq), payload }, 'app');
  }

  /**
   * Sends, or in durable mode holds until version `waitFor` of this node is persisted: nothing leaves
   * before the state it depends on is durable.
   */
  private sendNow(to: string, msg: HeaderedMessage, kind: MessageKind, resend = false, waitFor: Version = msg.h.srcVersion): void {
    if (this.cfg.mode === 'durable' && waitFor > this.persistedVersion) {
      const v = waitFor;
      let list = this.held.get(v);
      if (list === undefined) this.held.set(v, (list = []));
      list.push([to, msg, kind]);
      return;
    }
    this.transmit(to, msg, kind, resend);
  }

  private transmit(to: string, msg: HeaderedMessage, kind: MessageKind, resend: boolean): void {
    // Whoever hears of the open version may depend on it: it must be closed under its own number.
    if (msg.h.srcVersion === this.version && msg.h.worldLine === this.worldLine) this.active = true;
    const label = msg.kind === 'app' ? this.app.describeMessage?.(msg.payload) : undefined;
    this.observer.emit({
      ...(label !== undefined ? { label } : {}),
      type: 'messageSent',
      t: this.clock.now(),
      id: messageId(msg),
      kind,
      from: this.id,
      to,
      worldLine: msg.h.worldLine,
      srcVersion: msg.h.srcVersion,
      seq: msg.h.seq,
      resend,
    });
    this.network.send(to, msg);
  }

  /** Sends every unacknowledged outbox message (in durable mode only those of persisted versions). */
  private resendOutbox(now: number, olderThanMs: number): void {
    for (const e of this.outbox.values()) {
      if (now - e.lastSentAt < olderThanMs) continue;
      if (this.cfg.mode === 'durable' && e.srcVersion > this.persistedVersion) continue;
      e.lastSentAt = now;
      this.transmit(e.to, { kind: 'app', h: this.header(e.seq, e.srcVersion), payload: e.payload }, 'app', true);
    }
  }

  private onRetransmitTimer(): void {
    this.retransmitTimer = this.clock.setTimer(this.cfg.retransmitMs, () => this.onRetransmitTimer());
    if (this.status === 'frozen') {
      // The coordinator may have missed the report (or restarted): say it again.
      this.sendPrepared();
      return;
    }
    if (this.status === 'starting') {
      // The hello may have been lost (a coordinator restarting), or overtaken by a dead predecessor's.
      this.network.send(COORDINATOR, { kind: 'hello', node: this.id, incarnation: this.incarnation });
      return;
    }
    if (this.status !== 'up' || this.holding) return;
    const now = this.clock.now();
    this.resendOutbox(now, this.cfg.retransmitMs);
    // A node that left takes no reply: its sthreads wait, for good (whoever takes over its state resumes them).
    if (!this.leaving) this.sthreads.retransmit(now);
  }

  private onHeartbeatTimer(): void {
    this.heartbeatTimer = this.clock.setTimer(this.cfg.heartbeatMs!, () => this.onHeartbeatTimer());
    this.network.send(COORDINATOR, { kind: 'heartbeat', node: this.id, worldLine: this.worldLine, version: this.version });
  }

  // ---------------------------------------------------------------- versions and checkpoints

  /** The version a newly opened version gets: the next number, or later under the cheap cut's shared clock. */
  private nextVersionNumber(atLeast: Version): Version {
    let v = Math.max(this.version + 1, atLeast);
    if (this.cfg.cutKind === 'cheap') v = Math.max(v, Math.floor(this.clock.now() / this.cfg.checkpointIntervalMs));
    return v;
  }

  /** Rule 3: never let a dependency point at a higher version than the one that records it. */
  private jumpTo(target: Version): void {
    if (target <= this.version) return;
    if (this.active) this.closeVersion(target);
    else this.openVersion(target);
  }

  private openVersion(v: Version): void {
    const prev = this.version;
    this.version = v;
    this.observer.emit({ type: 'versionOpened', t: this.clock.now(), node: this.id, worldLine: this.worldLine, version: v, prevVersion: prev });
  }

  private onCheckpointTimer(): void {
    this.checkpointTimer = this.clock.setTimer(this.cfg.checkpointIntervalMs, () => this.onCheckpointTimer());
    if (this.status !== 'up' || this.holding) return;
    if (this.active) this.closeVersion(0);
    else if (this.cfg.cutKind === 'cheap' && !this.leaving) {
      // The cheap cut needs idle nodes to move with the shared clock too.
      const v = this.nextVersionNumber(0);
      if (this.writer.idle) {
        this.active = true;
        this.closeVersion(v);
      }
    }
  }

  /** Captures the open version synchronously, queues its checkpoint, and opens the next one. */
  private closeVersion(atLeast: Version): void {
    const v = this.version;
    const { full, changes } = this.snapshots.capture(this.state, this.dirty, this.lastCheckpointVersion === 0);
    const record: CheckpointRecord = {
      node: this.id,
      worldLine: this.worldLine,
      version: v,
      prevVersion: this.lastCheckpointVersion,
      deps: this.versionDeps,
      full,
      changes,
    };
    if (this.cfg.emitStateChanges) this.emitStateChanged(v);
    this.observer.emit({
      type: 'checkpointStarted',
      t: this.clock.now(),
      node: this.id,
      worldLine: this.worldLine,
      version: v,
      prevVersion: record.prevVersion,
      deps: record.deps,
      changedKeys: this.dirty.size,
      full,
    });
    this.closed.push({ version: v, prevVersion: record.prevVersion, deps: record.deps, undo: this.openUndo, record, persisted: false });
    this.lastCheckpointVersion = v;
    this.dirty = new Map();
    this.openUndo = new Map();
    this.versionDeps = {};
    this.active = false;
    this.openVersion(this.nextVersionNumber(atLeast));
    if (this.cfg.mode === 'none') {
      this.onPersisted([record]);
      return;
    }
    this.writer.enqueue(record);
  }

  private emitStateChanged(v: Version): void {
    const set: Record<string, Json> = {};
    const deleted: string[] = [];
    for (const [k, val] of this.dirty) {
      const name = appKeyName(k);
      if (name === null) continue;
      if (val === undefined) deleted.push(name);
      else set[name] = val;
    }
    this.observer.emit({ type: 'stateChanged', t: this.clock.now(), node: this.id, version: v, set, deleted });
  }

  private onPersisted(batch: CheckpointRecord[]): void {
    for (const r of batch) {
      assert(
        r.version > this.persistedVersion,
        `node ${this.id}: version ${r.version} persisted after ${this.persistedVersion} (persisted versions only grow)`,
      );
      this.persistedVersion = r.version;
      const c = this.closed.find((x) => x.version === r.version);
      if (c !== undefined) c.persisted = true;
      this.observer.emit({ type: 'checkpointPersisted', t: this.clock.now(), node: this.id, worldLine: r.worldLine, version: r.version, deps: r.deps });
      this.network.send(COORDINATOR, {
        kind: 'persisted',
        node: this.id,
        worldLine: r.worldLine,
        version: r.version,
        prevVersion: r.prevVersion,
        deps: r.deps,
      });
    }
    this.releaseHeld();
  }

  /** Durable mode: messages of versions now persisted leave. */
  private releaseHeld(): void {
    for (const [v, held] of this.held) {
      if (v > this.persistedVersion) continue;
      this.held.delete(v);
      for (const [to, msg, kind] of held) this.transmit(to, msg, kind, false);
    }
  }

  /** The coordinator's cut grew: closed versions it covers are committed and can no longer roll back. */
  private onCut(cut: Cut): void {
    this.cut = mergeInto({ ...this.cut }, cut);
    const c = this.cut[this.id] ?? 0;
    let drop = 0;
    while (drop < this.closed.length && this.closed[drop]!.version <= c) drop++;
    if (drop === 0) return;
    this.baseVersion = this.closed[drop - 1]!.version;
    this.closed = this.closed.slice(drop);
  }

  /**
   * Commit on demand: versions up to `upTo` are awaited. Close the open version now if it is one of them
   * (checkpoints are written at once, one batch in flight), and pass the request on to what those
   * versions depend on: they can commit only once their dependencies do.
   */
  private onFlush(upTo: Version): void {
    if (this.holding || this.status !== 'up' || upTo <= (this.cut[this.id] ?? 0)) return;
    const deps: Deps = {};
    if (this.version <= upTo && this.active) {
      mergeInto(deps, this.versionDeps);
      this.closeVersion(0);
    }
    for (const c of this.closed) if (c.version <= upTo) mergeInto(deps, c.deps);
    for (const n in deps) {
      if (n === this.id || deps[n]! <= (this.cut[n] ?? 0) || deps[n]! <= (this.flushAsked.get(n) ?? 0)) continue;
      this.flushAsked.set(n, deps[n]!);
      this.network.send(n, { kind: 'flush', worldLine: this.worldLine, upTo: deps[n]! });
    }
  }

  // ---------------------------------------------------------------- dedup

  // (The state holds windows in the named form, as this node wrote them: see `normalizeStoredRecords`.)
  private dedupHas(src: NodeId, seq: number): boolean {
    const w = fromJson<DedupWindow | undefined>(this.state.get(dedupKey(src)));
    return w !== undefined && wasApplied(w, seq);
  }

  private dedupAdd(src: NodeId, seq: number): void {
    const w = fromJson<DedupWindow | undefined>(this.state.get(dedupKey(src)));
    this.writeKey(dedupKey(src), toJson<DedupWindow>(withApplied(w ?? EMPTY_DEDUP_WINDOW, seq)));
  }

  // ---------------------------------------------------------------- recovery

  /**
   * The coordinator prepares a recovery into `worldLine`: hold new work (a dependency recorded now could
   * reach lost state) and report every uncommitted version with its dependencies. Writes of closed
   * versions go on: what they persist may be kept.
   */
  private onPrepare(worldLine: WorldLine): void {
    if (this.status === 'starting') {
      // A fresh process whose hello went unheard (say, by a coordinator that then restarted): say it again.
      this.network.send(COORDINATOR, { kind: 'hello', node: this.id, incarnation: this.incarnation });
      return;
    }
    if (worldLine <= this.worldLine || worldLine < this.preparingFor) return;
    this.preparingFor = worldLine;
    if (this.status === 'up') this.status = 'frozen';
    // A node restoring from storage reports once it has its state (`finishRestore`); a fresh one is not asked.
    if (this.status === 'frozen') this.sendPrepared();
  }

  private sendPrepared(): void {
    const versions: ReportedVersion[] = this.closed.map((c) => ({ version: c.version, prevVersion: c.prevVersion, deps: c.deps, persisted: c.persisted }));
    // The open version counts only if something happened in it: an empty one would make a restore
    // point that never gets a checkpoint (the node moves past it without closing it).
    if (this.active) versions.push({ version: this.version, prevVersion: this.lastCheckpointVersion, deps: { ...this.versionDeps }, persisted: false });
    this.network.send(COORDINATOR, {
      kind: 'prepared',
      node: this.id,
      incarnation: this.incarnation,
      worldLine: this.preparingFor,
      from: this.worldLine,
      base: this.baseVersion,
      versions,
    });
  }

  private onRecover(msg: Extract<WireMessage, { kind: 'recover' }>): void {
    if (msg.incarnation !== undefined && msg.incarnation !== this.incarnation) {
      // Meant for another process of this node: what it says to keep, this one never had. If the
      // coordinator takes an older (dead) process for us, it heard a late hello: say ours again.
      if (msg.incarnation < this.incarnation) this.network.send(COORDINATOR, { kind: 'hello', node: this.id, incarnation: this.incarnation });
      return;
    }
    // A fresh process (`starting`) takes any recover; a running one only a newer world-line, or (in `none`
    // mode, where world-lines never change) nothing at all; a frozen one only the world-line it prepared
    // for, or a newer one. While restoring, the world-line being restored to counts: an older recover
    // arriving late must not replace it.
    const current = this.status === 'restoring' ? Math.max(this.worldLine, this.restoringWorldLine) : this.worldLine;
    if (this.status !== 'starting' && msg.worldLine <= current && this.pendingRecover === null) return;
    if (this.pendingRecover !== null && msg.worldLine <= this.pendingRecover.worldLine) return;
    if (msg.worldLine < this.preparingFor) return;
    if ((this.status === 'up' || this.status === 'frozen') && this.restorePoint(msg) >= this.baseVersion) {
      // A running node holds every version above its base: it rolls back in memory.
      this.rollBackInMemory(msg);
      return;
    }
    // A fresh process, or a restore point below what this node holds in memory (every version up to its
    // base is persisted): from storage.
    this.pendingRecover = msg;
    if (this.status !== 'restoring') this.restore();
  }

  /** The version `rec` tells this node to keep. */
  private restorePoint(rec: Extract<WireMessage, { kind: 'recover' }>): Version {
    return rec.restore?.[this.id] ?? rec.cut[this.id] ?? 0;
  }

  /**
   * Rolls back to the restore point without reading storage: undo the open version, then every closed
   * version above the point, newest first. The point is a version boundary this node holds (its base, a
   * closed version, or the open one, which is then kept as it is). Closed versions kept but not yet
   * persisted are written again under the new world-line (writes of the old one are fenced off).
   */
  private rollBackInMemory(rec: Extract<WireMessage, { kind: 'recover' }>): void {
    const target = this.restorePoint(rec);
    const oldVersion = this.version;
    assert(target <= this.version, `node ${this.id}: restore point ${target} is above its open version ${this.version}`);
    // Keeping everything: the open version itself, or everything but an open version in which nothing happened.
    const keepOpen = target === this.version || (target === this.lastCheckpointVersion && !this.active);
    if (!keepOpen) {
      for (const [k, v] of this.openUndo) {
        if (v === undefined) this.state.delete(k);
        else this.state.set(k, v);
      }
      while (this.closed.length > 0 && this.closed[this.closed.length - 1]!.version > target) {
        const c = this.closed.pop()!;
        for (const [k, v] of c.undo) {
          if (v === undefined) this.state.delete(k);
          else this.state.set(k, v);
        }
      }
      const top = this.closed.length > 0 ? this.closed[this.closed.length - 1]!.version : this.baseVersion;
      assert(top === target, `node ${this.id}: restore point ${target} is not a version it holds (closed up to ${top})`);
      this.openUndo = new Map();
      this.dirty = new Map();
      this.versionDeps = {};
      this.active = false;
      this.lastCheckpointVersion = target;
      let persisted = this.baseVersion;
      for (const c of this.closed) if (c.persisted) persisted = c.version;
      this.persistedVersion = persisted;
    }
    this.epoch++;
    this.sthreads.abandonAll();
    this.held.clear();
    const oldWorldLine = this.worldLine;
    this.worldLine = rec.worldLine;
    this.cut = { ...rec.cut };
    this.preparingFor = 0;
    this.flushAsked.clear();
    // Kept versions not yet persisted (including those whose write is in flight) are written again, under the new world-line.
    const rewrite: CheckpointRecord[] = [];
    for (const c of this.closed) {
      if (c.record.worldLine !== rec.worldLine) c.record = { ...c.record, worldLine: rec.worldLine };
      if (!c.persisted) rewrite.push(c.record);
    }
    this.writer.reset(rewrite);
    this.rebuildOutbox();
    this.observer.emit({
      type: 'rollback',
      t: this.clock.now(),
      node: this.id,
      worldLine: rec.worldLine,
      toVersion: target,
      discarded: keepOpen ? null : { from: target + 1, to: oldVersion },
    });
    if (!keepOpen) {
      this.version = Math.max(target, rec.resumeVersion - 1);
      this.openVersion(this.nextVersionNumber(rec.resumeVersion));
    }
    void oldWorldLine;
    this.status = 'up';
    this.onCut(rec.cut);
    // Kept versions already persisted are reported again under the new world-line.
    for (const c of this.closed) {
      if (c.persisted)
        this.network.send(COORDINATOR, {
          kind: 'persisted',
          node: this.id,
          worldLine: this.worldLine,
          version: c.version,
          prevVersion: c.prevVersion,
          deps: c.deps,
          again: true,
        });
    }
    this.resumeAfterRestore();
  }

  /** The outbox as the (restored) state holds it. */
  private rebuildOutbox(): void {
    this.outbox.clear();
    for (const [k, v] of this.state) {
      const key = parseOutboxKey(k);
      if (key === null) continue;
      const e = readOutboxRecord(v);
      this.outbox.set(`${key.to}:${key.seq}`, { to: key.to, seq: key.seq, payload: e.payload, srcVersion: e.version, lastSentAt: -Infinity });
    }
  }

  /** After a restore: resend the outbox, restart sthreads from state, write what is queued, replay what was buffered. */
  private resumeAfterRestore(): void {
    // Messages still unacknowledged go out again, under the new world-line; receivers deduplicate.
    this.resendOutbox(this.clock.now(), -Infinity);
    // A node that left resumes nothing: what it holds under way goes on where its units went.
    if (this.app.onRestore !== undefined && !this.leaving) {
      this.runAction(() => this.app.onRestore!(this.ctx));
      this.afterAction();
    }
    this.writer.pump();
    const buffered = this.buffered;
    this.buffered = [];
    for (const m of buffered) this.dispatch(m);
  }

  /** A fresh process: load the restore point from storage. */
  private restore(): void {
    const rec = this.pendingRecover!;
    this.pendingRecover = null;
    const fresh = this.status === 'starting';
    this.status = 'restoring';
    // A prepare for a world-line after the one restored to still stands (it may have come while an
    // earlier attempt to load waited for storage); older ones are answered by this recover.
    if (this.preparingFor <= rec.worldLine) this.preparingFor = 0;
    this.restoringWorldLine = rec.worldLine;
    this.epoch++;
    const epoch = this.epoch;
    this.sthreads.abandonAll();
    this.writer.reset();
    this.held.clear();
    if (this.restoreRetryTimer !== null) {
      this.clock.clearTimer(this.restoreRetryTimer);
      this.restoreRetryTimer = null;
    }
    const target = this.restorePoint(rec);
    const load =
      target === 0 || this.cfg.mode === 'none'
        ? Promise.resolve(null)
        : this.storage.loadCheckpoint(this.id, target).then((cp) => {
            if (cp === null) throw new DseError('StorageCorrupt', `node ${this.id}: checkpoint ${target} to restore is missing`);
            return cp;
          });
    load.then(
      (cp) => {
        if (epoch !== this.epoch) return;
        if (this.pendingRecover !== null) {
          this.restore();
          return;
        }
        this.guarded(() => this.finishRestore(rec, cp?.state ?? new Map<string, Json>(), cp === null ? 0 : target, fresh));
      },
      (err: unknown) => {
        if (epoch !== this.epoch) return;
        if (isDseError(err) && err.code === 'StorageCorrupt') {
          if (this.missingFor !== rec.worldLine) {
            // Perhaps a recover that came late: a newer world-line deleted that version since (a fresh
            // process takes any recover). Ask the coordinator again, as a process with no memory; only the
            // same world-line's restore point missing twice is a storage fault.
            this.missingFor = rec.worldLine;
            this.status = 'starting';
            this.network.send(COORDINATOR, { kind: 'hello', node: this.id, incarnation: this.incarnation });
            return;
          }
          this.guarded(() => {
            throw err;
          });
          return;
        }
        // Storage unreachable: try again; messages wait in the buffer meanwhile.
        this.pendingRecover ??= rec;
        this.restoreRetryTimer = this.clock.setTimer(this.cfg.storageRetryMs, () => {
          this.restoreRetryTimer = null;
          if (this.status === 'restoring' && epoch === this.epoch) this.restore();
        });
      },
    );
  }

  private finishRestore(rec: Extract<WireMessage, { kind: 'recover' }>, state: Map<string, Json>, restoredVersion: Version, fresh: boolean): void {
    const oldVersion = this.version;
    const oldWorldLine = this.worldLine;
    normalizeStoredRecords(state);
    this.state = state;
    this.dirty = new Map();
    this.openUndo = new Map();
    this.versionDeps = {};
    this.active = false;
    this.closed = [];
    this.baseVersion = restoredVersion;
    this.lastCheckpointVersion = restoredVersion;
    this.snapshots.reset();
    this.persistedVersion = restoredVersion;
    this.worldLine = rec.worldLine;
    this.cut = { ...rec.cut };
    this.flushAsked.clear();
    this.rebuildOutbox();
    const restoredTo = this.cfg.mode === 'none' ? restoredVersion : this.restorePoint(rec);
    this.observer.emit({
      type: 'rollback',
      t: this.clock.now(),
      node: this.id,
      worldLine: rec.worldLine,
      toVersion: restoredTo,
      discarded: !fresh && oldVersion > restoredTo ? { from: restoredTo + 1, to: oldVersion } : null,
    });
    if (oldWorldLine !== rec.worldLine || fresh) {
      this.version = Math.max(restoredVersion, rec.resumeVersion - 1);
    }
    this.openVersion(this.nextVersionNumber(rec.resumeVersion));
    this.status = 'up';
    if (this.preparingFor > this.worldLine) {
      // A recovery was being prepared while this node restored: it reports now, with its restored state.
      this.status = 'frozen';
      this.sendPrepared();
    } else {
      this.preparingFor = 0;
    }
    this.resumeAfterRestore();
  }

  /** Runs an asynchronous step; an error it throws stops the node and goes to `onFatal`. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.stop();
      if (this.onFatal === undefined) throw e;
      this.onFatal(e);
    }
  }

  // ---------------------------------------------------------------- sthreads

  private startSthread(key: string, body: (st: Sthread) => Promise<void>, as: NodeId = this.id): void {
    const id = `${as}~${key}`;
    // The sthread's calls depend on the open version: it must be closed under its own number.
    this.active = true;
    this.sthreads.start(id, { worldLine: this.worldLine, version: this.version, deps: { [this.id]: this.version } }, body);
  }

  /** @internal for SthreadImpl */
  sthreadSend(st: SthreadImpl, to: NodeId, seq: number, payload: Json, resend: boolean): void {
    if (this.leaving) return;
    if (this.state.has(goneKey(to))) {
      this.answerFromGone(st, to, seq);
      return;
    }
    // The request is sent "in" the version the sthread's state on this node comes from: the header says
    // so (durable mode holds it until that version is persisted); the deps carry the rest (rule 3 reads both).
    const own = st.deps[this.id] ?? 0;
    const h: Header = { src: this.id, srcVersion: own, worldLine: st.worldLine, seq };
    this.sendNow(to, { kind: 'request', h, caller: st.id, deps: { ...st.deps }, payload, probe: false }, 'request', resend, own);
  }

  /** Answers call `seq` of `st` to `removed`, a node removed for good, from what this node holds of it. */
  private answerFromGone(st: SthreadImpl, removed: NodeId, seq: number): void {
    const byCaller = fromJson<{ [caller: string]: { [seq: string]: Json } } | undefined>(this.state.get(goneKey(removed)));
    const r = readRemovedReply([st.id, seq, byCaller?.[st.id]?.[seq] ?? null]);
    let result: Json;
    if (r?.[2].status === 'done') result = r[2].result;
    else if (r?.[2].status === 'inProgress')
      result = { error: { code: 'Orphaned', message: `${removed} was removed while call ${seq} of ${st.id} was under way there`, node: removed } };
    else result = { error: { code: 'NodeRemoved', message: `${removed} was removed; call ${seq} of ${st.id} did not happen there`, node: removed } };
    st.answerLocally(seq, result);
  }

  /** @internal for SthreadImpl: runs the merge action; returns its result and the version it ran in. */
  sthreadMerge<T>(st: SthreadImpl, fn: (ctx: ActionContext) => T): [T, Version] {
    if (this.status !== 'up' || this.worldLine !== st.worldLine) {
      throw new DseError('WorldLineChanged', `sthread ${st.id}: world-line ${st.worldLine} ended before the merge`);
    }
    // Abandoned as at the end of its world-line: whoever takes over this node's state resumes it.
    if (this.leaving) throw new DseError('WorldLineChanged', `sthread ${st.id}: ${this.id} left the cluster before the merge`);
    this.jumpTo(maxVersion(st.deps));
    let out: T | undefined;
    const version = this.version;
    this.runAction(() => {
      this.recordDeps(st.deps);
      this.active = true;
      out = fn(this.ctx);
    });
    this.afterAction();
    return [out as T, version];
  }

  /** @internal */
  get now(): number {
    return this.clock.now();
  }

  /** @internal */
  get retransmitMs(): number {
    return this.cfg.retransmitMs;
  }

  /** @internal */
  sthreadAlive(st: SthreadImpl): boolean {
    return this.sthreads.isAlive(st);
  }
}

/** An internal assertion: a fact of the protocol that must hold; a violation is a bug and stops the node. */
function assert(cond: boolean, message: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** A stable id for a message, the same on the sending and the receiving side (the playground draws arrows with it). */
export type HeaderedMessage = Extract<WireMessage, { h: Header }>;

export function messageId(msg: HeaderedMessage): string {
  switch (msg.kind) {
    case 'app':
      return messageIds.app(msg.h.src, msg.h.seq);
    case 'request':
      return messageIds.request(msg.caller, msg.h.seq, msg.h.worldLine);
    case 'reply':
      return messageIds.reply(msg.caller, msg.seq, msg.h.worldLine, msg.h.src);
    case 'ack':
      return messageIds.ack(msg.h.src, msg.ackSeq, msg.h.srcVersion);
    case 'reject':
      return messageIds.reject(msg.h.src, msg.rejectedSeq);
  }
}
