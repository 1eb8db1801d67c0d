/**
 * A progress bar on stderr: redrawn in place on a terminal, a line every 10% otherwise (logs, CI).
 * Never on stdout, whose last line is the result.
 */
export class Progress {
  private done = 0;
  private label = '';
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly tty: boolean;
  private readonly started = performance.now();

  constructor(
    private total: number,
    private readonly enabled = true,
  ) {
    this.tty = process.stderr.isTTY === true;
  }

  setLabel(label: string): void {
    this.label = label;
    this.draw(true);
  }

  /** More work than planned (e.g. a phase that retried). */
  grow(units: number): void {
    this.total += units;
  }

  tick(units: number, label?: string): void {
    this.done = Math.min(this.total, this.done + units);
    if (label !== undefined) this.label = label;
    this.draw(false);
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const frac = this.total > 0 ? this.done / this.total : 0;
    const secs = ((performance.now() - this.started) / 1000).toFixed(0);
    if (this.tty) {
      const now = performance.now();
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const width = 30;
      const full = Math.round(frac * width);
      process.stderr.write(
        `\r\x1b[2K[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s ${this.label}`.slice(
          0,
          (process.stderr.columns ?? 120) + 8,
        ),
      );
    } else {
      const decile = Math.floor(frac * 10);
      if (decile === this.lastDecile && !force) return;
      this.lastDecile = decile;
      process.stderr.write(`[bench] ${(frac * 100).toFixed(0).padStart(3)}% ${secs}s ${this.label}\n`);
    }
  }

  finish(): void {
    if (!this.enabled) return;
    this.done = this.total;
    this.draw(true);
    if (this.tty) process.stderr.write('\n');
  }

  /** Writes a line without garbling the bar. */
  say(line: string): void {
    if (this.tty && this.enabled) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${line}\n`);
    if (this.enabled && this.tty) this.draw(true);
  }
}
