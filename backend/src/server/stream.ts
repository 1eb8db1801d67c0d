import type { EventBatch, InspectionEvent, NodeId, NodeStateBase, NumberedEvent, StreamSnapshot } from '@dse/shared';
import { PROTOCOL_VERSION, StateMirror } from '@dse/shared';
import type { BrowserConnection } from './sockets';

export interface StreamOptions {
  /** Events kept for late joiners (and sent in a snapshot). */
  historyEventsMax: number;
  batchMs: number;
  /** Batches a browser may leave unacknowledged before it counts as slow. */
  unackedBatchesMax: number;
  /** Events queued for one browser before its queue is dropped (it then gets a snapshot). */
  queueEventsMax: number;
  /** A batch not acknowledged in this long counts as acknowledged (a browser that never acks stays slow, not stuck). */
  ackTimeoutMs: number;
}

/** What the server puts in a snapshot; the stream adds the protocol version and the base states. */
export type SnapshotParts = Omit<StreamSnapshot, 'protocol' | 'baseStates'>;

interface Subscriber {
  socket: BrowserConnection;
  queue: NumberedEvent[];
  unacked: number;
  /** Its queue was dropped: it gets a snapshot once it caught up with its acknowledgements. */
  dropped: boolean;
}

/**
 * The inspection event stream to browsers: every event numbered in arrival order, a bounded history
 * for late joiners, batches about every `batchMs`. A browser that does not keep up never slows the
 * cluster: its queue is bounded, and when it overflows the queue is dropped and the browser gets a
 * fresh snapshot with a notice instead.
 */
export class EventStream {
  private seq = 0;
  private history: NumberedEvent[] = [];
  private readonly subs = new Map<string, Subscriber>();
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners: ((e: NumberedEvent) => void)[] = [];
  /** App state of every node as the events that fell out of `history` leave it. */
  private readonly before = new StateMirror();

  constructor(
    private readonly opts: StreamOptions,
    private readonly snapshot: (reason: 'connect' | 'resync', history: NumberedEvent[], notice?: string) => SnapshotParts,
  ) {}

  get lastEvent(): number {
    return this.seq;
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.opts.batchMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  onEvent(fn: (e: NumberedEvent) => void): void {
    this.listeners.push(fn);
  }

  push(e: InspectionEvent): void {
    const ne = { ...e, n: ++this.seq };
    this.history.push(ne);
    if (this.history.length > this.opts.historyEventsMax + Math.max(64, this.opts.historyEventsMax >> 3)) {
      const cut = this.history.length - this.opts.historyEventsMax;
      for (let i = 0; i < cut; i++) this.before.apply(this.history[i]!);
      this.history = this.history.slice(cut);
    }
    for (const s of this.subs.values()) {
      if (s.dropped) continue;
      s.queue.push(ne);
      if (s.queue.length > this.opts.queueEventsMax) {
        s.queue = [];
        s.dropped = true;
      }
    }
    for (const fn of this.listeners) fn(ne);
  }

  recent(): NumberedEvent[] {
    return this.history.length > this.opts.historyEventsMax ? this.history.slice(this.history.length - this.opts.historyEventsMax) : [...this.history];
  }

  /** Each node's app state as of just before the first event `recent()` returns (see `StreamSnapshot.baseStates`). */
  baseStates(): Record<NodeId, NodeStateBase> {
    const extra = this.history.length - this.opts.historyEventsMax;
    if (extra <= 0) return this.before.states();
    const m = this.before.clone();
    for (let i = 0; i < extra; i++) m.apply(this.history[i]!);
    return m.states();
  }

  subscribe(socket: BrowserConnection): void {
    this.subs.set(socket.id, { socket, queue: [], unacked: 0, dropped: false });
    socket.emit('snapshot', this.snapshotNow('connect'));
    socket.on('disconnect', () => this.subs.delete(socket.id));
  }

  /** A snapshot of now: the recent history and the node states it starts from. */
  snapshotNow(reason: 'connect' | 'resync', notice?: string): StreamSnapshot {
    return { protocol: PROTOCOL_VERSION, ...this.snapshot(reason, this.recent(), notice), baseStates: this.baseStates() };
  }

  get subscribers(): number {
    return this.subs.size;
  }

  private flush(): void {
    for (const s of this.subs.values()) {
      if (s.dropped) {
        if (s.unacked > 0) continue;
        s.dropped = false;
        s.socket.emit(
          'snapshot',
          this.snapshotNow('resync', 'This browser fell behind the event stream; its queued events were dropped and the view starts again from this snapshot.'),
        );
        s.socket.emit('notice', { level: 'warning', message: 'Fell behind the event stream: resynchronised from a snapshot.' });
        continue;
      }
      if (s.queue.length === 0 || s.unacked >= this.opts.unackedBatchesMax) continue;
      const events = s.queue;
      s.queue = [];
      const batch: EventBatch = { from: events[0]!.n, to: events[events.length - 1]!.n, events };
      s.unacked++;
      let done = false;
      s.socket.timeout(this.opts.ackTimeoutMs).emit('events', batch, () => {
        if (done) return;
        done = true;
        s.unacked--;
      });
    }
  }
}
