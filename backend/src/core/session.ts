import type { CallerId, Cut, Deps, Json, NodeId, WorldLine } from '@dse/shared';
import { DseError, messageIds, RolledBack, SessionRolledBack } from '@dse/shared';
import { covers, maxVersion, mergeInto } from './deps';
import type { WireMessage, WorldLineStart } from './messages';
import type { CommittedReply } from './caller-table';
import { COORDINATOR, keptOf } from './messages';
import type { Clock, Network, Observer, TimerId } from './ports';

export interface SessionHostConfig {
  retransmitMs: number;
  /** Requests waiting in one session's queue. */
  queuedRequestsMax: number;
  /** Closed (committed or rolled-back) requests kept per session for `history()`; older ones are dropped. */
  closedRequestsKept: number;
}

/** The replies a removed node's committed state holds, by caller and request number (see `committedReplies`). */
export type RemovedNodeReplies = (caller: CallerId, seq: number) => CommittedReply | null;

export const DEFAULT_SESSION_HOST_CONFIG: SessionHostConfig = { retransmitMs: 200, queuedRequestsMax: 1000, closedRequestsKept: 256 };

export interface SessionHostPorts {
  clock: Clock;
  network: Network;
  observer: Observer;
}

/** A request's answer, given at once; `commit()` waits for the durable outcome. */
export interface SpeculativeResult {
  session: CallerId;
  seq: number;
  result: Json;
  deps: Deps;
  worldLine: WorldLine;
  /**
   * Waits for the durable outcome: resolves with the committed result once the cut covers it; rejects
   * with a definite `RolledBack`. Awaiting it asks the nodes to persist now (commit on demand).
   */
  commit(): Promise<Json>;
  /** The same outcome, observed without asking for it (a tracker, a counter): it comes at the nodes' pace. */
  whenCommitted(): Promise<Json>;
}

/** `refused`: never sent, because the session was rolled back before its turn (`SessionRolledBack`). */
export type RequestStatus = 'queued' | 'sent' | 'answered' | 'committed' | 'rolledBack' | 'refused';

export interface RequestSummary {
  session: CallerId;
  seq: number;
  node: NodeId;
  payload: Json;
  status: RequestStatus;
  result: Json;
  deps: Deps;
  worldLine: WorldLine;
  sentWorldLine: WorldLine;
  closedWorldLine: WorldLine;
  /** How many times the session had been resumed when the request was made (see `Session.resume`). */
  resumes: number;
}

interface RequestRecord {
  seq: number;
  node: NodeId;
  payload: Json;
  status: RequestStatus;
  result: Json;
  deps: Deps;
  /** The world-line the reply (or the last send) belongs to. */
  worldLine: WorldLine;
  sentWorldLine: WorldLine;
  /** The world-line in which the session learned the request was rolled back. */
  closedWorldLine: WorldLine;
  sentAt: number;
  probe: boolean;
  /** The version of `node` the request was accepted in (from its reply), or null when not known. */
  acceptedAt: number | null;
  resumes: number;
  speculative: Deferred<SpeculativeResult>;
  committed: Deferred<Json>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A caller that never asks for the commit must not see an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * An endpoint hosting client sessions (in the simulator one per run, live in the server). It hears
 * every cut and world-line from the coordinator and routes replies to sessions.
 */
export class SessionHost {
  readonly endpoint: string;
  private readonly cfg: SessionHostConfig;
  private readonly clock: Clock;
  private readonly network: Network;
  private readonly observer: Observer;
  private readonly sessions = new Map<CallerId, Session>();
  worldLine: WorldLine = 1;
  cut: Cut = {};
  /**
   * How each world-line started: answers of world-line w survive into w+1 iff its restore points (`kept`)
   * cover their dependencies, and are committed at once iff its cut does.
   */
  private readonly recoveryCuts = new Map<WorldLine, WorldLineStart>();
  private timer: TimerId | null = null;
  private syncAskedAt = -Infinity;
  /**
   * A cut of a world-line this host has not heard start yet (the `cut` overtook the `worldLine`
   * message): applied once the world-line is known, and asked for again until then.
   */
  private ahead: { worldLine: WorldLine; cut: Cut } | null = null;
  /** The highest version of each node this host asked to flush (commit on demand), in this world-line. */
  private readonly flushAsked = new Map<string, number>();
  private nextSession = 1;
  /** Nodes removed for good, with the replies their committed state holds: a request to one is decided from them, never sent. */
  private readonly removed = new Map<NodeId, RemovedNodeReplies>();

  constructor(endpoint: string, ports: SessionHostPorts, cfg: Partial<SessionHostConfig> = {}) {
    this.endpoint = endpoint;
    this.cfg = { ...DEFAULT_SESSION_HOST_CONFIG, ...cfg };
    this.clock = ports.clock;
    this.network = ports.network;
    this.observer = ports.observer;
  }

  start(worldLine: WorldLine = 1): void {
    this.worldLine = worldLine;
    this.timer = this.clock.setTimer(this.cfg.retransmitMs, () => this.onTimer());
    this.network.send(COORDINATOR, { kind: 'sync', from: this.endpoint, role: 'client', since: 0 });
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
  }

  session(id?: CallerId): Session {
    const sid = id ?? `${this.endpoint}.s${this.nextSession++}`;
    let s = this.sessions.get(sid);
    if (s === undefined) {
      s = new Session(this, sid);
      this.sessions.set(sid, s);
    }
    return s;
  }

  allSessions(): Session[] {
    return [...this.sessions.values()];
  }

  /** @internal */
  get now(): number {
    return this.clock.now();
  }
  /** @internal */
  get queuedRequestsMax(): number {
    return this.cfg.queuedRequestsMax;
  }
  /** @internal */
  get closedRequestsKept(): number {
    return this.cfg.closedRequestsKept;
  }

  /**
   * `node` was removed for good while down; `replies` are the replies its committed state holds (its
   * checkpoint at the cut, from storage), all that is left of it. A request in flight to it, or probed
   * there after a recovery, is decided from them: done there, it is answered with the stored reply (and
   * commits, being within the cut); under way there (a `PENDING` answer), it fails with the indefinite
   * `Orphaned`; otherwise it did not happen, and is rolled back. A request not yet
   * sent to it is refused (`NodeRemoved`): it never ran.
   */
  nodeRemoved(node: NodeId, replies: RemovedNodeReplies): void {
    this.removed.set(node, replies);
    for (const s of this.sessions.values()) {
      s.onNodeRemoved(node);
      s.compact();
    }
  }

  /** @internal */
  repliesOfRemoved(node: NodeId): RemovedNodeReplies | undefined {
    return this.removed.get(node);
  }

  /** Forgets a session (its open requests are abandoned: their promises never settle). */
  dropSession(id: CallerId): boolean {
    return this.sessions.delete(id);
  }
  /** @internal */
  emit: Observer['emit'] = (e) => this.observer.emit(e);

  /**
   * @internal Commit on demand: someone awaits an answer with these dependencies. Each node not yet
   * committed that far is asked to close and persist those versions now rather than at its next
   * checkpoint (it passes the request on to what they depend on).
   */
  flushFor(deps: Readonly<Deps>): void {
    for (const n in deps) {
      const v = deps[n]!;
      if (v <= (this.cut[n] ?? 0) || v <= (this.flushAsked.get(n) ?? 0)) continue;
      this.flushAsked.set(n, v);
      this.network.send(n, { kind: 'flush', worldLine: this.worldLine, upTo: v });
    }
  }

  /** @internal */
  transmit(session: CallerId, r: RequestRecord, deps: Deps, resend: boolean, settled: number): void {
    const h = { src: this.endpoint, srcVersion: maxVersion(deps), worldLine: this.worldLine, seq: r.seq };
    this.observer.emit({
      type: 'messageSent',
      t: this.clock.now(),
      id: messageIds.request(session, r.seq, this.worldLine),
      kind: 'request',
      from: this.endpoint,
      to: r.node,
      worldLine: this.worldLine,
      srcVersion: h.srcVersion,
      seq: r.seq,
      resend,
    });
    const msg: WireMessage = { kind: 'request', h, caller: session, deps: { ...deps }, payload: r.payload, probe: r.probe };
    if (settled > 0) msg.settled = settled;
    this.network.send(r.node, msg);
  }

  receive(msg: WireMessage): void {
    switch (msg.kind) {
      case 'reply': {
        if (msg.h.worldLine > this.worldLine) {
          this.askSync();
          return;
        }
        if (msg.h.worldLine < this.worldLine) return; // from a rolled-back world
        this.observer.emit({
          type: 'messageDelivered',
          t: this.clock.now(),
          id: messageIds.reply(msg.caller, msg.seq, msg.h.worldLine, msg.h.src),
          kind: 'reply',
          from: msg.h.src,
          to: this.endpoint,
          version: 0,
          duplicate: false,
        });
        const s = this.sessions.get(msg.caller);
        s?.onReply(msg);
        s?.compact();
        return;
      }
      case 'reject':
        if (msg.h.worldLine > this.worldLine) this.askSync();
        return;
      case 'cut':
        if (msg.worldLine > this.worldLine) {
          if (this.ahead === null || this.ahead.worldLine < msg.worldLine) this.ahead = { worldLine: msg.worldLine, cut: { ...msg.cut } };
          else if (this.ahead.worldLine === msg.worldLine) mergeInto(this.ahead.cut, msg.cut);
          this.askSync();
          return;
        }
        if (msg.worldLine < this.worldLine) return;
        // Cuts only grow within a world-line; an older announcement may arrive late.
        this.cut = { ...this.cut };
        mergeInto(this.cut, msg.cut);
        for (const s of this.sessions.values()) {
          s.onCut();
          s.compact();
        }
        return;
      case 'worldLine':
        this.onWorldLine(msg);
        return;
      case 'app':
      case 'ack':
      case 'request':
      case 'persisted':
      case 'prepare':
      case 'flush':
      case 'prepared':
      case 'recover':
      case 'hello':
      case 'sync':
      case 'heartbeat':
        return;
    }
  }

  private askSync(): void {
    const now = this.clock.now();
    if (now - this.syncAskedAt < this.cfg.retransmitMs) return;
    this.syncAskedAt = now;
    this.network.send(COORDINATOR, { kind: 'sync', from: this.endpoint, role: 'client', since: this.worldLine });
  }

  private onWorldLine(msg: Extract<WireMessage, { kind: 'worldLine' }>): void {
    for (const r of msg.recoveryCuts) this.recoveryCuts.set(r.worldLine, r);
    if (msg.worldLine <= this.worldLine) return;
    // Every world-line since ours: an answer survives only if each of them kept what it depends on.
    const starts: WorldLineStart[] = [];
    for (let w = this.worldLine + 1; w <= msg.worldLine; w++) {
      const start = this.recoveryCuts.get(w);
      if (start === undefined) {
        // We missed a world-line and do not know how it started.
        this.askSync();
        return;
      }
      starts.push(start);
    }
    const old = this.worldLine;
    this.worldLine = msg.worldLine;
    this.cut = msg.cut;
    this.flushAsked.clear();
    // What survived all of them: per node, the lowest restore point; committed at once: the first cut.
    const kept: Cut = {};
    for (const st of starts) {
      for (const n of new Set([...Object.keys(st.kept ?? {}), ...Object.keys(st.cut), ...Object.keys(kept)]))
        kept[n] = Math.min(kept[n] ?? Infinity, keptOf(st, n));
    }
    const committed = starts[0]!.cut;
    for (const s of this.sessions.values()) {
      s.onWorldLine(old, committed, kept);
      s.compact();
    }
    for (const w of [...this.recoveryCuts.keys()]) if (w < old) this.recoveryCuts.delete(w);
    const ahead = this.ahead;
    if (ahead !== null && ahead.worldLine <= this.worldLine) {
      this.ahead = null;
      if (ahead.worldLine === this.worldLine) this.receive({ kind: 'cut', worldLine: ahead.worldLine, cut: ahead.cut });
    }
  }

  private onTimer(): void {
    this.timer = this.clock.setTimer(this.cfg.retransmitMs, () => this.onTimer());
    const now = this.clock.now();
    // A sync asked while the coordinator was busy (a recovery ignores it) is asked again.
    if (this.ahead !== null && this.ahead.worldLine > this.worldLine) this.askSync();
    for (const s of this.sessions.values()) s.retransmit(now, this.cfg.retransmitMs);
  }
}

/**
 * A client's sequence of requests. Requests go one at a time: each carries the dependencies of every
 * earlier answer, which is what makes the surviving requests a prefix after any recovery.
 *
 * As in the paper, a rolled-back session stays rolled back: once a request is rolled back, every request
 * not yet sent (queued, or made later) fails with a definite `SessionRolledBack` until the client
 * acknowledges with `resume()`. So what survives of a session is always a prefix of what it sent, across
 * world-lines, between two resumes.
 */
export class Session {
  readonly id: CallerId;
  private readonly host: SessionHost;
  private readonly requests: RequestRecord[] = [];
  /** Index of the first request not yet committed, rolled back or refused. */
  private firstOpen = 0;
  /** Dependencies of committed requests already dropped from `requests`. */
  private droppedDeps: Deps = {};
  private nextSeq = 1;
  /** Dependencies of every surviving answer. */
  private deps: Deps = {};
  /** A request is on the wire (or being probed); the next waits. */
  private inFlight: RequestRecord | null = null;
  /** Set when a request was rolled back: the session refuses new ones until `resume()`. */
  private rolledBack: SessionRolledBack | null = null;
  private resumes = 0;
  /** Every request up to this number is decided for good (the nodes may forget its reply). */
  private settled = 0;

  constructor(host: SessionHost, id: CallerId) {
    this.host = host;
    this.id = id;
  }

  /**
   * Sends a request; resolves with its speculative answer, or rejects if it is rolled back first. A
   * rolled-back session refuses it at once with `SessionRolledBack` (nothing is sent).
   */
  request(node: NodeId, payload: Json): Promise<SpeculativeResult> {
    if (this.rolledBack !== null) return Promise.reject(this.rolledBack);
    const queued = this.requests.length - this.firstOpen;
    if (queued >= this.host.queuedRequestsMax) {
      return Promise.reject(new DseError('LimitExceeded', `session ${this.id}: ${queued} requests are open already`));
    }
    const r: RequestRecord = {
      seq: this.nextSeq++,
      node,
      payload,
      status: 'queued',
      result: null,
      deps: {},
      worldLine: this.host.worldLine,
      sentWorldLine: 0,
      closedWorldLine: 0,
      sentAt: 0,
      probe: false,
      acceptedAt: null,
      resumes: this.resumes,
      speculative: deferred(),
      committed: deferred(),
    };
    this.requests.push(r);
    this.pump();
    return r.speculative.promise;
  }

  /** The refusal in force, or null when the session takes requests. */
  get rolledBackError(): SessionRolledBack | null {
    return this.rolledBack;
  }

  /**
   * The client acknowledges the rollback: the session takes requests again, going on from what survived
   * (its later requests carry only the dependencies of surviving answers). No-op when not rolled back.
   */
  resume(): void {
    if (this.rolledBack === null) return;
    this.rolledBack = null;
    this.resumes++;
  }

  /** Requests not yet committed, rolled back or refused. */
  get openRequests(): number {
    return this.requests.length - this.firstOpen;
  }

  /** Every request with its status (for checks and inspection). */
  history(): RequestSummary[] {
    return this.requests.map((r) => ({
      session: this.id,
      seq: r.seq,
      node: r.node,
      payload: r.payload,
      status: r.status,
      result: r.result,
      deps: r.deps,
      worldLine: r.worldLine,
      sentWorldLine: r.sentWorldLine,
      closedWorldLine: r.closedWorldLine,
      resumes: r.resumes,
    }));
  }

  private pump(): void {
    if (this.inFlight !== null) return;
    const next = this.requests.find((r) => r.status === 'queued' || (r.status === 'sent' && r.probe));
    if (next === undefined) return;
    this.send(next);
  }

  private send(r: RequestRecord): void {
    const removed = this.host.repliesOfRemoved(r.node);
    if (removed !== undefined) {
      if (r.status === 'queued') this.refuse(r, new DseError('NodeRemoved', `session ${this.id}: request ${r.seq} is for ${r.node}, which was removed`));
      else this.decideAtRemoved(r, removed);
      return;
    }
    r.status = 'sent';
    r.worldLine = this.host.worldLine;
    r.sentWorldLine = this.host.worldLine;
    r.sentAt = this.host.now;
    this.inFlight = r;
    this.host.transmit(this.id, r, this.deps, false, this.settled);
  }

  /** @internal: `node` was removed for good; the request in flight to it is decided from its committed replies. */
  onNodeRemoved(node: NodeId): void {
    const r = this.inFlight;
    const removed = this.host.repliesOfRemoved(node);
    if (r !== null && r.node === node && removed !== undefined) this.decideAtRemoved(r, removed);
  }

  /** A request sent to a node removed since: its committed state either holds the reply, or the request did not happen. */
  private decideAtRemoved(r: RequestRecord, replies: RemovedNodeReplies): void {
    const done = replies(this.id, r.seq);
    if (done === null) {
      this.inFlight = null;
      this.rollBackFrom(this.requests.indexOf(r));
      this.pump();
      return;
    }
    if (done.status === 'inProgress') {
      // Accepted there and under way: its effects so far are committed, but nobody will answer it.
      this.inFlight = null;
      this.refuse(
        r,
        new DseError('Orphaned', `session ${this.id}: request ${r.seq} was under way at ${r.node} when ${r.node} was removed; no answer will come`),
      );
      return;
    }
    r.status = 'sent';
    this.inFlight = r;
    const msg: Extract<WireMessage, { kind: 'reply' }> = {
      kind: 'reply',
      h: { src: r.node, srcVersion: done.version, worldLine: this.host.worldLine, seq: 0 },
      caller: this.id,
      seq: r.seq,
      status: 'ok',
      result: done.result,
      deps: { [r.node]: done.version },
    };
    if (done.acceptedAt !== undefined) msg.acceptedAt = done.acceptedAt;
    this.onReply(msg);
  }

  /** A request that never ran, closed with a definite error; the session goes on. */
  private refuse(r: RequestRecord, err: DseError): void {
    r.status = 'refused';
    r.closedWorldLine = this.host.worldLine;
    r.speculative.reject(err);
    r.committed.reject(err);
    this.skipClosed();
    this.pump();
  }

  /** @internal */
  retransmit(now: number, afterMs: number): void {
    const r = this.inFlight;
    if (r === null || now - r.sentAt < afterMs) return;
    r.sentAt = now;
    this.host.transmit(this.id, r, this.deps, true, this.settled);
  }

  /** @internal */
  onReply(msg: Extract<WireMessage, { kind: 'reply' }>): void {
    const r = this.inFlight;
    if (r === null || r.seq !== msg.seq) return;
    this.inFlight = null;
    if (msg.status === 'aborted') {
      // Probed after a recovery: it did not survive, and neither did anything after it.
      this.rollBackFrom(this.requests.indexOf(r));
      this.pump();
      return;
    }
    r.probe = false;
    r.status = 'answered';
    r.result = msg.result;
    r.deps = { ...msg.deps };
    r.worldLine = msg.h.worldLine;
    r.acceptedAt = msg.acceptedAt ?? null;
    mergeInto(this.deps, msg.deps);
    mergeInto(r.deps, this.deps);
    this.host.emit({
      type: 'sessionResult',
      t: this.host.now,
      session: this.id,
      seq: r.seq,
      status: 'speculative',
      result: r.result,
      deps: r.deps,
      worldLine: r.worldLine,
    });
    const answer: SpeculativeResult = {
      session: this.id,
      seq: r.seq,
      result: r.result,
      deps: r.deps,
      worldLine: r.worldLine,
      commit: () => {
        // Awaited: ask for it now (commit on demand) rather than wait for the nodes' next checkpoints.
        if (r.status === 'answered') this.host.flushFor(r.deps);
        return r.committed.promise;
      },
      whenCommitted: () => r.committed.promise,
    };
    r.speculative.resolve(answer);
    this.onCut();
    this.pump();
  }

  /** @internal: answered requests whose dependencies the cut now covers are committed, in order. */
  onCut(): void {
    const cut = this.host.cut;
    while (this.firstOpen < this.requests.length) {
      const r = this.requests[this.firstOpen]!;
      if (r.status !== 'answered' || r.worldLine !== this.host.worldLine || !covers(cut, r.deps)) break;
      this.commit(r);
    }
  }

  private commit(r: RequestRecord): void {
    r.status = 'committed';
    this.firstOpen++;
    this.skipClosed();
    this.host.emit({
      type: 'sessionResult',
      t: this.host.now,
      session: this.id,
      seq: r.seq,
      status: 'committed',
      result: r.result,
      deps: r.deps,
      worldLine: r.worldLine,
    });
    r.committed.resolve(r.result);
  }

  /**
   * @internal: a new world-line started. `committedCut` is the cut the first new world-line started
   * from: answers it covers committed. `kept` is what every new world-line kept (restore points): an
   * answer it covers survived, and commits when the cut covers it. The first answer that did not survive
   * (or an unanswered one) is probed at its node, which decides for good whether it survived. An answer
   * accepted in a version above its node's restore point did not survive: it and everything after it are
   * rolled back at once, without waiting for that node, which may be down.
   */
  onWorldLine(old: WorldLine, committedCut: Cut, kept: Cut): void {
    this.skipClosed();
    let i = this.firstOpen;
    for (; i < this.requests.length; i++) {
      const r = this.requests[i]!;
      if (r.status === 'rolledBack' || r.status === 'refused') continue;
      if (r.status === 'answered' && r.worldLine <= old && covers(committedCut, r.deps)) {
        this.commit(r);
        continue;
      }
      if (r.status === 'answered' && r.worldLine <= old && covers(kept, r.deps)) {
        // Survived, not yet committed: it lives on in the new world-line.
        r.worldLine = this.host.worldLine;
        continue;
      }
      break;
    }
    this.onCut();
    if (i >= this.requests.length) return;
    // Everything from i on that was sent or answered in an old world-line gets decided by probes, in order.
    const first = this.requests[i]!;
    if (first.status === 'queued') return;
    this.deps = { ...this.droppedDeps };
    for (let k = 0; k < i; k++) {
      const r = this.requests[k]!;
      if (r.status === 'committed' || r.status === 'answered') mergeInto(this.deps, r.deps);
    }
    if (first.status === 'answered' && first.worldLine <= old && first.acceptedAt !== null && (kept[first.node] ?? 0) < first.acceptedAt) {
      this.inFlight = null;
      this.rollBackFrom(i);
      this.pump();
      return;
    }
    for (let k = i; k < this.requests.length; k++) {
      const r = this.requests[k]!;
      if (r.status === 'answered' || r.status === 'sent') {
        // Each is asked in turn; the first aborted one rolls back itself and all after it.
        r.status = 'sent';
        r.probe = true;
      }
    }
    this.inFlight = null;
    this.send(first);
  }

  /** Request `i` did not survive: it and every later one sent are rolled back, the queued ones refused, and the session stays rolled back. */
  private rollBackFrom(i: number): void {
    const first = this.requests[i]!;
    let lastSurviving = this.settled;
    for (let k = i - 1; k >= 0; k--) {
      const s = this.requests[k]!.status;
      if (s === 'committed' || s === 'answered') {
        lastSurviving = this.requests[k]!.seq;
        break;
      }
    }
    this.rolledBack = new SessionRolledBack(this.id, first.seq, lastSurviving);
    for (let k = i; k < this.requests.length; k++) {
      const r = this.requests[k]!;
      if (r.status === 'queued') {
        r.status = 'refused';
        r.closedWorldLine = this.host.worldLine;
        r.speculative.reject(this.rolledBack);
        r.committed.reject(this.rolledBack);
        continue;
      }
      if (r.status !== 'sent' && r.status !== 'answered') continue;
      r.status = 'rolledBack';
      r.probe = false;
      r.closedWorldLine = this.host.worldLine;
      const err = new RolledBack(`session ${this.id}: request ${r.seq} was rolled back by world-line ${this.host.worldLine}`);
      this.host.emit({
        type: 'sessionResult',
        t: this.host.now,
        session: this.id,
        seq: r.seq,
        status: 'rolledBack',
        result: null,
        deps: r.deps,
        worldLine: this.host.worldLine,
      });
      r.speculative.reject(err);
      r.committed.reject(err);
    }
    this.skipClosed();
  }

  /** Rolled-back and refused requests are closed: the first open one is past them. */
  private skipClosed(): void {
    while (this.firstOpen < this.requests.length) {
      const s = this.requests[this.firstOpen]!.status;
      if (s !== 'rolledBack' && s !== 'refused') break;
      this.firstOpen++;
    }
    // Every request before the first open one is decided for good: its node may forget the reply.
    const next = this.requests[this.firstOpen];
    this.settled = next !== undefined ? next.seq - 1 : this.nextSeq - 1;
  }

  /** @internal: drops old closed requests; the host calls it between whole steps (indices shift). */
  compact(): void {
    const keep = this.host.closedRequestsKept;
    // Drop in batches, so that a long session costs memory in proportion to what it keeps.
    if (this.firstOpen > keep + 64) {
      const n = this.firstOpen - keep;
      for (const r of this.requests.splice(0, n)) if (r.status === 'committed') mergeInto(this.droppedDeps, r.deps);
      this.firstOpen -= n;
    }
  }
}
