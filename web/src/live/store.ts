import type { Mode } from '@dse/shared';
import { PlaygroundModel } from '../model/model';

/** One frame at 60 frames a second. */
const FRAME_MS = 1000 / 60;
/** The longest the views wait for a redraw however costly they are (a redraw 6 times a second). */
const GAP_MAX_MS = 160;

/**
 * Holds the model and tells React when to redraw: at most once per animation frame, however many
 * events arrive, so a busy cluster costs one render per frame. When a redraw costs more than a share
 * frame (a busy cluster on a slow machine), redraws are spaced out so that a third of the time or
 * more is left to the browser: the page keeps drawing frames (scrolling, hovering, typing stay
 * smooth) and the views show the newest state a little less often, never less than 6 times a second.
 */
export interface FrameClock {
  now(): number;
  /** Runs `f` at the next animation frame. */
  frame(f: () => void): void;
}

const BROWSER_CLOCK: FrameClock = {
  now: () => performance.now(),
  frame: (f) => {
    if (typeof requestAnimationFrame === 'function') requestAnimationFrame(f);
    else setTimeout(f, 16);
  },
};

export class ModelStore {
  model = new PlaygroundModel();
  private listeners = new Set<() => void>();
  private scheduled = false;
  private version = 0;
  /** When the last redraw began, and how long its frame lasted lately (smoothed), in milliseconds. */
  private lastFlushAt = -Infinity;
  private measuring = false;
  private costMs = 0;

  constructor(private readonly clock: FrameClock = BROWSER_CLOCK) {}

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  /** Milliseconds kept between two redraws now (0: one every frame). */
  get gapMs(): number {
    // A redraw that fits its frame costs nothing to wait for: one every frame.
    return this.costMs <= 1.25 * FRAME_MS ? 0 : Math.min(GAP_MAX_MS, 1.5 * this.costMs);
  }

  /** A new, empty model; `mode` seeds its mode (a replay's events do not announce the mode they ran in). */
  reset(mode: Mode | null = null): void {
    this.model = new PlaygroundModel();
    this.model.mode = mode;
    this.changed(true);
  }

  /** Call after mutating the model. */
  changed(now = false): void {
    if (now) {
      this.flush();
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    const tick = (): void => {
      if (!this.scheduled) return; // flushed meanwhile (changed(true))
      if (this.clock.now() - this.lastFlushAt < this.gapMs) {
        this.clock.frame(tick);
        return;
      }
      this.flush();
    };
    this.clock.frame(tick);
  }

  private flush(): void {
    this.scheduled = false;
    this.version++;
    const start = this.clock.now();
    this.lastFlushAt = start;
    for (const l of this.listeners) l();
    if (this.measuring) return;
    // The redraw (React's render, the canvas, style, layout, paint) is done by the next frame: the
    // time to it is the redraw's frame (one frame, 16.7 ms, when it fits).
    this.measuring = true;
    this.clock.frame(() => {
      this.measuring = false;
      const cost = this.clock.now() - start;
      this.costMs = this.costMs === 0 ? cost : 0.8 * this.costMs + 0.2 * Math.min(cost, 500);
    });
  }
}
