import type { Clock, TimerId } from '../core/ports';

interface Entry {
  t: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Virtual time: a priority queue of callbacks; ties run in the order they were scheduled. */
export class Scheduler {
  now = 0;
  private heap: Entry[] = [];
  private seq = 0;
  private byId = new Map<number, Entry>();
  private nextId = 1;
  executed = 0;

  at(t: number, fn: () => void): TimerId {
    const e: Entry = { t: Math.max(t, this.now), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    const id = this.nextId++;
    this.byId.set(id, e);
    // Ids are only needed while pending; the map is trimmed as entries run (see step()).
    (e as Entry & { id?: number }).id = id;
    return id;
  }

  after(ms: number, fn: () => void): TimerId {
    return this.at(this.now + ms, fn);
  }

  cancel(id: TimerId): void {
    const e = this.byId.get(id);
    if (e !== undefined) {
      e.cancelled = true;
      this.byId.delete(id);
    }
  }

  get pending(): number {
    return this.heap.length;
  }

  /** Runs the next callback; false when nothing is left or the next one is past `until`. */
  step(until = Infinity): boolean {
    for (;;) {
      const e = this.heap[0];
      if (e === undefined || e.t > until) return false;
      this.pop();
      const id = (e as Entry & { id?: number }).id;
      if (id !== undefined) this.byId.delete(id);
      if (e.cancelled) continue;
      this.now = e.t;
      this.executed++;
      e.fn();
      return true;
    }
  }

  runUntil(t: number): void {
    while (this.step(t));
    if (this.now < t) this.now = t;
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(h[r]!, h[l]!) ? r : l;
      if (less(last, h[c]!)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

function less(a: Entry, b: Entry): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

/** A clock for one simulated process: a crash cancels every timer it set. */
export class ProcessClock implements Clock {
  private readonly sched: Scheduler;
  private readonly live = new Set<TimerId>();

  constructor(sched: Scheduler) {
    this.sched = sched;
  }

  now(): number {
    return this.sched.now;
  }

  setTimer(delayMs: number, fn: () => void): TimerId {
    const id: TimerId = this.sched.after(delayMs, () => {
      this.live.delete(id);
      fn();
    });
    this.live.add(id);
    return id;
  }

  clearTimer(id: TimerId): void {
    this.live.delete(id);
    this.sched.cancel(id);
  }

  cancelAll(): void {
    for (const id of this.live) this.sched.cancel(id);
    this.live.clear();
  }
}
