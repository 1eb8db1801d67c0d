import type { CallerId, Deps, Json, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { ActionContext, Sthread, SthreadHandle } from './app';
import { mergeInto } from './deps';
import type { WireMessage } from './messages';

/** What an sthread needs of the node it runs on (`DseNode`). */
export interface SthreadHost {
  readonly id: NodeId;
  readonly now: number;
  readonly retransmitMs: number;
  /** Sends the sthread's request `seq` to `to` (again, when `resend`). */
  sthreadSend(st: SthreadImpl, to: NodeId, seq: number, payload: Json, resend: boolean): void;
  /** Runs the merge action; returns its result and the version it ran in. */
  sthreadMerge<T>(st: SthreadImpl, fn: (ctx: ActionContext) => T): [T, Version];
  sthreadAlive(st: SthreadImpl): boolean;
}

/**
 * The sthreads running on one node, by caller id. A restore abandons them all: their world-line ended,
 * and the app restarts what it needs from state (`onRestore`).
 */
export class Sthreads {
  private readonly live = new Map<CallerId, SthreadImpl>();
  /** Errors thrown by sthread bodies other than a world-line change: bugs in the app. */
  readonly errors: unknown[] = [];

  private readonly host: SthreadHost;

  constructor(host: SthreadHost) {
    this.host = host;
  }

  /** Starts `body` as sthread `id`, abandoning one of the same id still running. */
  start(id: CallerId, handle: SthreadHandle, body: (st: Sthread) => Promise<void>): void {
    this.live.get(id)?.abandon();
    const st = new SthreadImpl(this.host, id, handle);
    this.live.set(id, st);
    body(st).then(
      () => {
        if (this.live.get(id) === st) this.live.delete(id);
      },
      (e: unknown) => {
        if (this.live.get(id) === st) this.live.delete(id);
        if (isDseError(e) && (e.code === 'WorldLineChanged' || e.code === 'RolledBack')) return;
        this.errors.push(e);
      },
    );
  }

  get(id: CallerId): SthreadImpl | undefined {
    return this.live.get(id);
  }

  isAlive(st: SthreadImpl): boolean {
    return this.live.get(st.id) === st;
  }

  /** Sends again every call unanswered for `retransmitMs`. */
  retransmit(now: number): void {
    for (const st of this.live.values()) st.retransmit(now);
  }

  /** The sthreads whose pending call is addressed to `to`. */
  waitingOn(to: NodeId): SthreadImpl[] {
    return [...this.live.values()].filter((st) => st.pendingCall?.to === to);
  }

  abandonAll(): void {
    const list = [...this.live.values()];
    this.live.clear();
    for (const st of list) st.abandon();
  }
}

export class SthreadImpl implements Sthread {
  readonly id: CallerId;
  readonly worldLine: WorldLine;
  deps: Deps;
  private readonly host: SthreadHost;
  private readonly detachedAt: Version;
  private seq = 0;
  private pending: { seq: number; to: NodeId; payload: Json; sentAt: number; resolve: (v: Json) => void; reject: (e: unknown) => void } | null = null;
  private dead = false;

  constructor(host: SthreadHost, id: CallerId, handle: SthreadHandle) {
    this.host = host;
    this.id = id;
    this.worldLine = handle.worldLine;
    this.detachedAt = handle.version;
    this.deps = { ...handle.deps };
  }

  get node(): NodeId {
    return this.host.id;
  }

  get handle(): SthreadHandle {
    return { worldLine: this.worldLine, version: this.detachedAt, deps: { ...this.deps } };
  }

  call(target: NodeId, payload: Json): Promise<Json> {
    if (this.dead) return Promise.reject(new DseError('WorldLineChanged', `sthread ${this.id} was abandoned`));
    if (this.pending !== null) throw new Error(`sthread ${this.id}: calls are sequential; await the previous one`);
    const seq = ++this.seq;
    return new Promise<Json>((resolve, reject) => {
      this.pending = { seq, to: target, payload, sentAt: this.host.now, resolve, reject };
      this.host.sthreadSend(this, target, seq, payload, false);
    });
  }

  merge<T>(fn: (ctx: ActionContext) => T): Promise<T> {
    if (this.dead || !this.host.sthreadAlive(this)) {
      return Promise.reject(new DseError('WorldLineChanged', `sthread ${this.id} was abandoned`));
    }
    try {
      const [out, version] = this.host.sthreadMerge(this, fn);
      this.deps = { [this.host.id]: version };
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  onReply(msg: Extract<WireMessage, { kind: 'reply' }>): void {
    const p = this.pending;
    if (p === null || p.seq !== msg.seq || msg.h.worldLine !== this.worldLine) return;
    this.pending = null;
    if (msg.status === 'aborted') {
      p.reject(new DseError('RolledBack', `sthread ${this.id}: call ${msg.seq} to ${p.to} was aborted`));
      return;
    }
    mergeInto(this.deps, msg.deps);
    p.resolve(msg.result);
  }

  /** The call waiting for a reply, if any. */
  get pendingCall(): { seq: number; to: NodeId } | null {
    return this.pending === null ? null : { seq: this.pending.seq, to: this.pending.to };
  }

  /**
   * Answers call `seq` here, without a message: its target was removed, and this node holds what is
   * left of it (`ActionContext.targetRemoved`). A reply from the removed node's committed state is
   * within the cut: it adds no dependency.
   */
  answerLocally(seq: number, result: Json): void {
    const p = this.pending;
    if (p === null || p.seq !== seq || this.dead) return;
    this.pending = null;
    p.resolve(result);
  }

  retransmit(now: number): void {
    const p = this.pending;
    if (p === null || now - p.sentAt < this.host.retransmitMs) return;
    p.sentAt = now;
    this.host.sthreadSend(this, p.to, p.seq, p.payload, true);
  }

  abandon(): void {
    this.dead = true;
    const p = this.pending;
    this.pending = null;
    p?.reject(new DseError('WorldLineChanged', `sthread ${this.id}: world-line ${this.worldLine} ended`));
  }
}
