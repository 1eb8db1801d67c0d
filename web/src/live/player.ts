import type { NumberedEvent } from '@dse/shared';

/**
 * Replays a recorded list of events (an imported trace or a simulation) into a sink, on the events'
 * own clock: `advance(realMs)` moves the replay clock by `realMs × speed` and hands over every event
 * up to it. Nothing is invented: the sink only ever sees the recorded events, in order.
 */
export class Player {
  index = 0;
  clockT: number;
  speed = 0.05;
  playing = false;

  constructor(
    readonly events: readonly NumberedEvent[],
    private readonly sink: (events: readonly NumberedEvent[]) => void,
  ) {
    this.clockT = events[0]?.t ?? 0;
  }

  get done(): boolean {
    return this.index >= this.events.length;
  }

  /** Plays, or pauses (a replay at its end stays paused). */
  togglePlaying(): void {
    this.playing = !this.playing && !this.done;
  }

  setSpeed(speed: number): void {
    this.speed = speed;
  }

  /** Applies the next event (and any others at the same instant). */
  step(): void {
    const first = this.events[this.index];
    if (first === undefined) return;
    let end = this.index + 1;
    while (end < this.events.length && this.events[end]!.t === first.t) end++;
    this.emit(end);
    this.clockT = first.t;
  }

  advance(realMs: number): void {
    if (!this.playing || this.done) return;
    this.clockT += realMs * this.speed;
    let end = this.index;
    while (end < this.events.length && this.events[end]!.t <= this.clockT) end++;
    if (end === this.index) {
      // Skip idle stretches longer than a second of replay instead of showing nothing.
      const next = this.events[this.index]!;
      if (next.t - this.clockT > 1000 * this.speed) this.clockT = next.t - 1;
      return;
    }
    this.emit(end);
    if (this.done) this.playing = false;
  }

  toEnd(): void {
    this.emit(this.events.length);
    this.clockT = this.events.at(-1)?.t ?? this.clockT;
    this.playing = false;
  }

  /**
   * Jumps to just after event `index` (0: before the first): the sink is reset by `reset` and gets
   * every event up to there again (the model is a function of the events, so this is exact).
   */
  seek(index: number, reset: () => void): void {
    const to = Math.max(0, Math.min(this.events.length, Math.floor(index)));
    reset();
    this.index = 0;
    this.emit(to);
    this.clockT = this.events[to - 1]?.t ?? this.events[0]?.t ?? 0;
    if (this.done) this.playing = false;
  }

  private emit(end: number): void {
    if (end <= this.index) return;
    const slice = this.events.slice(this.index, end);
    this.index = end;
    this.sink(slice);
  }
}
