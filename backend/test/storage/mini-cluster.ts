import type { InspectionEvent, NodeId } from '@dse/shared';
import { Coordinator } from '../../src/core/coordinator';
import type { WireMessage } from '../../src/core/messages';
import { COORDINATOR } from '../../src/core/messages';
import { DseNode } from '../../src/core/node';
import type { Clock, Network, Storage } from '../../src/core/ports';
import type { Session } from '../../src/core/session';
import { SessionHost } from '../../src/core/session';
import { kvApp } from '../../src/sim/kvapp';

/**
 * The DSE runtime on real time in one process (coordinator, nodes, one session host) over a given
 * storage: for the crash and reconnection tests. Messages go through the event loop, in order.
 */
export class MiniCluster {
  readonly coordinator: Coordinator;
  readonly nodes = new Map<NodeId, DseNode>();
  readonly host: SessionHost;
  readonly fatal: unknown[] = [];
  private readonly endpoints = new Map<string, { receive(m: WireMessage): void }>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;
  readonly events: InspectionEvent[] = [];

  constructor(
    readonly storage: Storage,
    readonly nodeIds: NodeId[],
    opts: { client: string; checkpointIntervalMs?: number; pruneIntervalMs?: number; keepEvents?: boolean },
  ) {
    const observer = { emit: (e: InspectionEvent): void => void (opts.keepEvents ? this.events.push(e) : undefined) };
    this.coordinator = new Coordinator(
      { clock: this.clock(), network: this.network(), storage, observer },
      { mode: 'speculative', cutKind: 'exact', pruneIntervalMs: opts.pruneIntervalMs ?? 100, storageRetryMs: 50 },
    );
    this.endpoints.set(COORDINATOR, this.coordinator);
    this.host = new SessionHost(opts.client, { clock: this.clock(), network: this.network(), observer }, { retransmitMs: 300 });
    this.endpoints.set(opts.client, this.host);
    this.coordinator.addClient(opts.client);
    for (const id of nodeIds) {
      const node = new DseNode(
        id,
        kvApp,
        { clock: this.clock(), network: this.network(), storage, observer, onFatal: (e) => this.fatal.push(e) },
        {
          mode: 'speculative',
          cutKind: 'exact',
          checkpointIntervalMs: opts.checkpointIntervalMs ?? 20,
          retransmitMs: 300,
          storageRetryMs: 50,
        },
      );
      this.nodes.set(id, node);
      this.endpoints.set(id, node);
    }
  }

  private clock(): Clock {
    return {
      now: () => performance.now(),
      setTimer: (delay, fn) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          if (!this.stopped) fn();
        }, delay);
        this.timers.add(t);
        return t as unknown as number;
      },
      clearTimer: (id) => {
        const t = id as unknown as ReturnType<typeof setTimeout>;
        clearTimeout(t);
        this.timers.delete(t);
      },
    };
  }

  private network(): Network {
    return {
      send: (to, msg) => {
        setImmediate(() => {
          if (!this.stopped) this.endpoints.get(to)?.receive(msg);
        });
      },
    };
  }

  /** Starts the coordinator from storage (a restart begins a new world-line from the saved cut), then the nodes. */
  async start(): Promise<void> {
    await this.coordinator.start(this.nodeIds);
    this.host.start(this.coordinator.worldLine);
    for (const n of this.nodes.values()) n.start();
  }

  session(): Session {
    return this.host.session();
  }

  /** Waits until `cond` holds (polling), or fails after `ms`. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  stop(): void {
    this.stopped = true;
    this.coordinator.stop();
    this.host.stop();
    for (const n of this.nodes.values()) n.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
