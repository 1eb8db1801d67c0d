import type { NodeId, WorkloadConfig } from '@dse/shared';
import { isDseError } from '@dse/shared';
import type { Session } from '../core/session';
import type { Cluster } from './cluster';
import type { KvAppOp } from './kv-app';
import type { Requests } from './requests';

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  mean: number;
}

export interface WorkloadStats {
  sent: number;
  answered: number;
  committed: number;
  rolledBack: number;
  /** Skipped because every session still waited for an answer (a node down, or the rate too high). */
  skipped: number;
  speculative: LatencySummary;
  commit: LatencySummary;
}

const KEYS = Array.from({ length: 16 }, (_, i) => `k${i}`);
const SESSIONS = 8;
const SAMPLES_MAX = 20_000;

export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0, mean: 0 };
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { count: s.length, p50: r(at(0.5)), p99: r(at(0.99)), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

/**
 * The load generator: `rate` requests a second spread over a few sessions of the server's session
 * host. A session sends its next request only once the previous one was answered, so latency is the
 * cluster's, not a queue's; when every session waits, the tick is skipped (and counted).
 */
export class Workload {
  config: WorkloadConfig = { kind: 'mixed', rate: 0 };
  private timer: NodeJS.Timeout | null = null;
  private budget = 0;
  private lastTick = 0;
  private readonly sessions: Session[] = [];
  private readonly busy = new Set<Session>();
  private counters = { sent: 0, answered: 0, committed: 0, rolledBack: 0, skipped: 0 };
  private specLatency: number[] = [];
  private commitLatency: number[] = [];
  private generation = 0;

  constructor(
    private readonly cluster: Cluster,
    private readonly requests: Requests,
  ) {}

  set(config: WorkloadConfig): void {
    this.config = { ...config };
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (config.rate <= 0) return;
    if (this.sessions.length === 0) {
      this.generation++;
      // Named per server start too (see Requests.hostSessionId): nodes remember replies per session.
      for (let i = 1; i <= SESSIONS; i++) this.sessions.push(this.cluster.host.session(`wl${this.generation}.${i}@${this.cluster.bootId}`));
    }
    this.budget = 1; // the first request goes at once
    this.lastTick = performance.now();
    const tickMs = Math.max(5, Math.min(100, Math.floor(1000 / config.rate)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.tick();
  }

  /** New sessions (after a node was removed, requests waiting for it would hold their sessions forever). */
  rotate(): void {
    this.sessions.length = 0;
    this.busy.clear();
    if (this.config.rate > 0) this.set(this.config);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  resetStats(): void {
    this.counters = { sent: 0, answered: 0, committed: 0, rolledBack: 0, skipped: 0 };
    this.specLatency = [];
    this.commitLatency = [];
  }

  stats(): WorkloadStats {
    return { ...this.counters, speculative: summarize(this.specLatency), commit: summarize(this.commitLatency) };
  }

  private tick(): void {
    const now = performance.now();
    this.budget = Math.min(this.budget + ((now - this.lastTick) * this.config.rate) / 1000, Math.max(1, this.config.rate / 10));
    this.lastTick = now;
    while (this.budget >= 1) {
      this.budget -= 1;
      const free = this.sessions.filter((s) => !this.busy.has(s));
      if (free.length === 0) {
        this.counters.skipped++;
        continue;
      }
      this.fire(free[Math.floor(Math.random() * free.length)]!);
    }
  }

  private op(): { node: NodeId; payload: KvAppOp } {
    const key = KEYS[Math.floor(Math.random() * KEYS.length)]!;
    const node = this.cluster.ownerOf(key);
    const kind = this.config.kind === 'mixed' ? (Math.random() < 0.5 ? 'kv' : 'chain') : this.config.kind;
    const value = Math.floor(Math.random() * 1000);
    if (kind === 'kv') return { node, payload: Math.random() < 0.6 ? { op: 'put', key, value } : { op: 'get', key } };
    const others = this.cluster.nodeIds().filter((n) => n !== node);
    const to: NodeId[] = [];
    const want = Math.min(others.length, 1 + Math.floor(Math.random() * 2));
    while (to.length < want) {
      const n = others[Math.floor(Math.random() * others.length)]!;
      if (!to.includes(n)) to.push(n);
    }
    return { node, payload: { op: 'replicate', key, value, to } };
  }

  private fire(s: Session): void {
    let node: NodeId;
    let payload: KvAppOp;
    try {
      ({ node, payload } = this.op());
    } catch {
      return; // no nodes
    }
    const started = performance.now();
    this.busy.add(s);
    this.counters.sent++;
    const { answer } = this.requests.send(s, node, payload);
    answer.then(
      (a) => {
        this.busy.delete(s);
        this.counters.answered++;
        this.sample(this.specLatency, performance.now() - started);
        a.commit().then(
          () => {
            this.counters.committed++;
            this.sample(this.commitLatency, performance.now() - started);
          },
          () => {
            this.counters.rolledBack++;
          },
        );
      },
      (e: unknown) => {
        this.busy.delete(s);
        if (isDseError(e) && e.code === 'RolledBack') this.counters.rolledBack++;
      },
    );
  }

  private sample(list: number[], v: number): void {
    list.push(v);
    if (list.length > SAMPLES_MAX) list.splice(0, list.length - SAMPLES_MAX);
  }
}
