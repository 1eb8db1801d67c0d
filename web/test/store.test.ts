import { describe, expect, it } from 'vitest';
import { ModelStore, type FrameClock } from '../src/live/store';

/**
 * A browser's frames, simulated: a frame comes 16.7 ms after the last one, or later when the work
 * done in the last one (a redraw costing `redrawMs`) did not fit.
 */
class Frames implements FrameClock {
  t = 0;
  private queue: (() => void)[] = [];
  now = (): number => this.t;
  frame = (f: () => void): void => {
    this.queue.push(f);
  };
  /** Runs the callbacks waiting for the next frame. */
  tick(): void {
    const q = this.queue;
    this.queue = [];
    for (const f of q) f();
    this.t += 1000 / 60;
  }
  /** Runs `frames` frames; `changed` is called at each (events arrive all the time). */
  run(store: ModelStore, frames: number, redrawMs: number): { frames: number; redraws: number; ms: number } {
    let redraws = 0;
    const off = store.subscribe(() => redraws++);
    const t0 = this.t;
    for (let i = 0; i < frames; i++) {
      store.changed();
      const before = redraws;
      const q = this.queue;
      this.queue = [];
      for (const f of q) f();
      this.t += redraws > before ? Math.max(1000 / 60, redrawMs) : 1000 / 60;
    }
    off();
    return { frames, redraws, ms: this.t - t0 };
  }
}

describe('ModelStore', () => {
  it('redraws once per frame however many changes come, when a redraw fits in a frame', () => {
    const clock = new Frames();
    const store = new ModelStore(clock);
    let redraws = 0;
    store.subscribe(() => redraws++);
    for (let i = 0; i < 100; i++) store.changed();
    expect(redraws).toBe(0);
    const r = clock.run(store, 120, 8);
    expect(r.redraws).toBe(120);
    expect(store.gapMs).toBe(0);
  });

  it('spaces redraws out when they cost more than a frame, leaving frames to the browser, at least 6 a second', () => {
    const clock = new Frames();
    const store = new ModelStore(clock);
    clock.run(store, 60, 50); // learns the cost
    const r = clock.run(store, 300, 50);
    const fps = (1000 * r.frames) / r.ms;
    const redrawsPerS = (1000 * r.redraws) / r.ms;
    // One redraw a frame would give 20 frames a second, all spent redrawing.
    expect(fps).toBeGreaterThan(30);
    expect(redrawsPerS).toBeGreaterThanOrEqual(6);
    expect(redrawsPerS).toBeLessThan(20);
    expect(store.gapMs).toBeGreaterThan(0);
  });

  it('goes back to a redraw every frame once redraws are cheap again', () => {
    const clock = new Frames();
    const store = new ModelStore(clock);
    clock.run(store, 100, 60);
    expect(store.gapMs).toBeGreaterThan(0);
    clock.run(store, 300, 4);
    expect(store.gapMs).toBe(0);
    const r = clock.run(store, 60, 4);
    expect(r.redraws).toBe(60);
  });

  it('changed(true) redraws at once, and the frame already asked for then does not redraw again', () => {
    const clock = new Frames();
    const store = new ModelStore(clock);
    let redraws = 0;
    store.subscribe(() => redraws++);
    store.changed();
    store.changed(true);
    expect(redraws).toBe(1);
    clock.tick();
    clock.tick();
    expect(redraws).toBe(1);
    store.changed();
    clock.tick();
    expect(redraws).toBe(2);
  });
});
