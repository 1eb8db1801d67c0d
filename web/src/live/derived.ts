/**
 * A value derived from the mutable model, recomputed at most every so often: a busy cluster changes
 * the model with every event, and a costly derivation (the dependency index, every service's state)
 * need not follow each one. It is recomputed when the model changed (`rev`) and the last one is old
 * enough: `everyMs`, or longer when computing it took long, so that it takes at most `shareMax` of the time.
 */
export class Derived<M extends object, T> {
  private cached: { model: M; rev: number; at: number; every: number; value: T } | null = null;

  constructor(
    private readonly compute: (model: M) => T,
    private readonly everyMs: number,
    private readonly shareMax = Infinity,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The value for this model: the cached one while it is fresh enough. */
  get(model: M, rev: number): T {
    const now = this.now();
    const c = this.cached;
    if (c !== null && c.model === model && (c.rev === rev || now - c.at < c.every)) return c.value;
    const value = this.compute(model);
    const took = this.now() - now;
    this.cached = { model, rev, at: now, every: Math.max(this.everyMs, took / this.shareMax), value };
    return value;
  }

  /** Whether the model changed since the value was computed (a trailing update is due then). */
  isStale(rev: number): boolean {
    return this.cached !== null && this.cached.rev !== rev;
  }

  /** How long the value is kept now. */
  get keptMs(): number {
    return this.cached?.every ?? this.everyMs;
  }
}
