import type { Clock, TimerId } from '../core/ports';

/** Wall-clock milliseconds on a shared epoch: every process of a cluster agrees on `now()` (to clock skew). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The real Clock port. `now()` counts from `epochMs` (the server's start, sent to every node), so that
 * event times and the cheap cut's `floor(now / interval)` are small numbers shared by all processes.
 */
export class RealClock implements Clock {
  private nextId = 1;
  private readonly timers = new Map<TimerId, NodeJS.Timeout>();

  constructor(readonly epochMs: number) {}

  now(): number {
    return Math.round((wallNow() - this.epochMs) * 1000) / 1000;
  }

  setTimer(delayMs: number, fn: () => void): TimerId {
    const id = this.nextId++;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        fn();
      },
      Math.max(0, delayMs),
    );
    this.timers.set(id, t);
    return id;
  }

  clearTimer(id: TimerId): void {
    const t = this.timers.get(id);
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(id);
  }

  cancelAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
