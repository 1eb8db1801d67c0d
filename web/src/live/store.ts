import { PlaygroundModel } from '../model/model';

/**
 * Holds the model and tells React when to redraw: at most once per animation frame, however many
 * events arrive, so a busy cluster costs one render per frame.
 */
export class ModelStore {
  model = new PlaygroundModel();
  private listeners = new Set<() => void>();
  private scheduled = false;
  private version = 0;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  reset(): void {
    this.model = new PlaygroundModel();
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
    const raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f: () => void) => setTimeout(f, 16);
    raf(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    this.version++;
    for (const l of this.listeners) l();
  }
}
