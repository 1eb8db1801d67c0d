import type { InspectionEvent, Json, Mode, NodeId } from '@dse/shared';
import type { App } from '../../src/core/app';
import { Coordinator } from '../../src/core/coordinator';
import type { WireMessage } from '../../src/core/messages';
import { COORDINATOR } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import type { Session } from '../../src/core/session';
import { SessionHost } from '../../src/core/session';
import { servicesApp } from '../../src/services';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';
import { MemoryStorage } from '../../src/storage/memory';

/**
 * A small cluster on virtual time for the services' unit tests: no random faults, messages take
 * `latencyMs` (0.5 by default), storage answers at once; a test crashes and restarts nodes itself.
 */
export class TestCluster {
  readonly sched = new Scheduler();
  readonly storage = new MemoryStorage();
  readonly events: InspectionEvent[] = [];
  readonly nodeIds: NodeId[];
  readonly host: SessionHost;
  readonly coordinator: Coordinator;
  private readonly nodes = new Map<NodeId, DseNode>();
  private readonly clocks = new Map<NodeId, ProcessClock>();
  private readonly endpoints = new Map<string, { receive(m: WireMessage): void }>();
  /** Called with every inspection event, as it happens. */
  onEvent: ((e: InspectionEvent) => void) | null = null;
  private readonly observer = {
    emit: (e: InspectionEvent) => {
      this.events.push(e);
      this.onEvent?.(e);
    },
  };

  private constructor(
    n: number,
    readonly mode: Mode,
    private readonly app: App,
    private readonly latencyMs: number,
  ) {
    this.nodeIds = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    this.coordinator = new Coordinator(
      { clock: new ProcessClock(this.sched), network: this.network(), storage: this.storage, observer: this.observer },
      { mode, pruneIntervalMs: 50 },
    );
    this.endpoints.set(COORDINATOR, this.coordinator);
    this.host = new SessionHost(
      'client',
      { clock: new ProcessClock(this.sched), network: this.network(), observer: this.observer },
      { retransmitMs: 30, closedRequestsKept: Infinity },
    );
    this.endpoints.set('client', this.host);
    this.coordinator.addClient('client');
  }

  static async start(opts: { nodes?: number; mode?: Mode; app?: App; latencyMs?: number } = {}): Promise<TestCluster> {
    const c = new TestCluster(opts.nodes ?? 3, opts.mode ?? 'speculative', opts.app ?? servicesApp, opts.latencyMs ?? 0.5);
    await c.run(c.coordinator.start(c.nodeIds));
    c.host.start(c.coordinator.worldLine);
    for (const id of c.nodeIds) c.startNode(id);
    await c.advance(5);
    return c;
  }

  private network() {
    return {
      send: (to: string, msg: WireMessage): void => {
        this.sched.after(this.latencyMs, () => this.endpoints.get(to)?.receive(msg));
      },
    };
  }

  private startNode(id: NodeId): void {
    const clock = new ProcessClock(this.sched);
    const node = new DseNode(
      id,
      this.app,
      { clock, network: this.network(), storage: this.storage, observer: this.observer },
      { mode: this.mode, checkpointIntervalMs: 10, retransmitMs: 30, storageRetryMs: 5 },
    );
    this.nodes.set(id, node);
    this.clocks.set(id, clock);
    this.endpoints.set(id, node);
    node.start();
  }

  session(): Session {
    return this.host.session();
  }

  /** The process of `id` dies: whatever it had not persisted is gone. */
  crash(id: NodeId): void {
    this.nodes.get(id)!.stop();
    this.clocks.get(id)!.cancelAll();
    this.endpoints.delete(id);
    this.coordinator.nodeFailed(id, 'killed');
  }

  restart(id: NodeId): void {
    this.startNode(id);
  }

  /** A node's app state. */
  state(id: NodeId): Map<string, Json> {
    return this.nodes.get(id)!.appState();
  }

  sthreadErrors(): unknown[] {
    return [...this.nodes.values()].flatMap((n) => n.sthreadErrors);
  }

  /** Runs virtual time until `p` settles (or `limitMs` pass: then it throws). */
  async run<T>(p: Promise<T>, limitMs = 10_000): Promise<T> {
    let done = false;
    const watched = p.then(
      (v) => {
        done = true;
        return v;
      },
      (e: unknown) => {
        done = true;
        throw e;
      },
    );
    watched.catch(() => undefined);
    const end = this.sched.now + limitMs;
    while (!done) {
      if (this.sched.step(end)) {
        for (let i = 0; i < 5; i++) await Promise.resolve();
        continue;
      }
      await new Promise<void>((r) => setImmediate(r));
      if (done) break;
      if (!this.sched.step(end)) throw new Error(`nothing settled within ${limitMs} ms of virtual time`);
    }
    return watched;
  }

  /** Runs virtual time for `ms`. */
  async advance(ms: number): Promise<void> {
    const end = this.sched.now + ms;
    for (;;) {
      if (this.sched.step(end)) {
        for (let i = 0; i < 5; i++) await Promise.resolve();
        continue;
      }
      await new Promise<void>((r) => setImmediate(r));
      if (!this.sched.step(end)) break;
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    if (this.sched.now < end) this.sched.now = end;
  }
}

/** The rejection of `p`, or null if it resolved. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}
