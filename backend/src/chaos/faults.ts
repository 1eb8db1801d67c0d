import type { NodeId } from '@dse/shared';
import { wallNow } from '../live/clock';
import type { Rng } from '../sim/rng';
import type { HttpClient } from './api';
import type { Monitor } from './monitor';
import type { TcpProxy } from './proxy';
import type { FaultKind } from './run';
import type { RunContext } from './run-context';
import { sleep } from './run-context';
import { processesInGroups } from './server-proc';
import type { Load } from './service-load';

// Faults: a seeded schedule of SIGKILLs, SIGSTOPs, database cuts, server restarts and membership changes.

/** What the faults need of the run: the cluster to hurt, and how to bring the server back. */
export interface FaultTargets {
  ctx: RunContext;
  monitor: Monitor;
  /** The run's HTTP client for control requests (membership changes). */
  control: HttpClient;
  clients: readonly Load[];
  /** PostgreSQL's proxy (database cuts); null on PGlite. */
  proxy: TcpProxy | null;
  /** Starts the server again and waits for its nodes. */
  startServer(): Promise<void>;
  /** When the run started (log lines give seconds since). */
  t0: number;
}

export interface FaultCounts {
  kills: number;
  stops: number;
  dbCuts: number;
  serverRestarts: number;
  nodesAdded: number;
  nodesDrained: number;
  nodesRestored: number;
}

/** The fault kinds a run uses: those asked for (default: all) that its storage and options allow. */
export function faultKinds(o: { faults?: FaultKind[]; storage: 'pglite' | 'postgres'; membership?: boolean }): FaultKind[] {
  return (o.faults ?? ['kill', 'stop', 'dbCut', 'serverRestart', ...(o.membership === true ? (['addNode', 'removeNode'] as const) : [])]).filter(
    (k) => (k !== 'dbCut' || o.storage === 'postgres') && ((k !== 'addNode' && k !== 'removeNode') || o.membership === true),
  );
}

/**
 * Runs the faults, one at a time with a random gap, each kind once per shuffled round, until the run's
 * time is up (with `everyKindOnce`, on until every kind happened, up to three times as long).
 */
export class FaultSchedule {
  readonly counts: FaultCounts = { kills: 0, stops: 0, dbCuts: 0, serverRestarts: 0, nodesAdded: 0, nodesDrained: 0, nodesRestored: 0 };
  /** Every node id seen in the cluster. */
  readonly everSeen = new Set<NodeId>();
  /** Nodes removed while down: their last committed state was taken over (it stays in storage as it was). */
  readonly restoredAway = new Set<NodeId>();
  /** Node processes SIGSTOPped now (pids). */
  readonly stopped = new Set<number>();
  private readonly t: FaultTargets;
  private readonly rng: Rng;
  private readonly kinds: readonly FaultKind[];

  constructor(targets: FaultTargets, rng: Rng, kinds: readonly FaultKind[]) {
    this.t = targets;
    this.rng = rng;
    this.kinds = kinds;
  }

  private countOf(k: FaultKind): number {
    const c = this.counts;
    switch (k) {
      case 'kill':
        return c.kills;
      case 'stop':
        return c.stops;
      case 'dbCut':
        return c.dbCuts;
      case 'serverRestart':
        return c.serverRestarts;
      case 'addNode':
        return c.nodesAdded;
      case 'removeNode':
        return c.nodesDrained + c.nodesRestored;
    }
  }

  async run(): Promise<void> {
    const { o } = this.t.ctx;
    const kinds = this.kinds;
    const end = wallNow() + o.seconds * 1000;
    const hard = wallNow() + o.seconds * 3000;
    let bag: FaultKind[] = [];
    const more = (): boolean => wallNow() < end || (o.everyKindOnce === true && wallNow() < hard && kinds.some((k) => this.countOf(k) === 0));
    while (more() && kinds.length > 0) {
      if (bag.length === 0) {
        bag = wallNow() >= end ? kinds.filter((k) => this.countOf(k) === 0) : [...kinds];
        for (let i = bag.length - 1; i > 0; i--) {
          const j = this.rng.int(0, i);
          [bag[i], bag[j]] = [bag[j]!, bag[i]!];
        }
      }
      await this.one(bag.pop()!);
      await sleep(this.rng.int(o.gapMs[0], o.gapMs[1]));
    }
  }

  /** Sends SIGCONT to every node still stopped (the faults are over). */
  continueStopped(): void {
    for (const pid of this.stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
  }

  private async one(kind: FaultKind): Promise<void> {
    const { monitor } = this.t;
    const hold = this.rng.int(this.t.ctx.o.holdMs[0], this.t.ctx.o.holdMs[1]);
    const pick = this.rng.next();
    const c = await monitor.poll();
    for (const n of c?.nodes ?? []) this.everSeen.add(n.id);
    const upNodes = (c?.nodes ?? []).filter((n) => n.status === 'up' && n.pid !== null && !this.stopped.has(n.pid));
    const target = upNodes.length > 0 ? upNodes[Math.floor(pick * upNodes.length)]! : null;
    const at = ((wallNow() - this.t.t0) / 1000).toFixed(1);
    switch (kind) {
      case 'kill':
        if (target !== null) this.kill(target, at);
        return;
      case 'stop':
        if (target !== null) await this.stop(target, hold, at);
        return;
      case 'dbCut':
        await this.cutDatabase(hold, at);
        return;
      case 'addNode':
        await this.addNode(at);
        return;
      case 'removeNode':
        if (target !== null && (c?.nodes ?? []).length > 2) await this.removeNode(target, at);
        return;
      case 'serverRestart':
        await this.restartServer(at);
        return;
    }
  }

  private kill(target: NodeTarget, at: string): void {
    try {
      process.kill(target.pid!, 'SIGKILL');
      this.counts.kills++;
      this.t.ctx.o.log(`[${at}s] SIGKILL ${target.id} (pid ${target.pid})`);
    } catch {
      // exited meanwhile
    }
  }

  private async stop(target: NodeTarget, hold: number, at: string): Promise<void> {
    const pid = target.pid!;
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      return;
    }
    this.stopped.add(pid);
    this.counts.stops++;
    this.t.ctx.o.log(`[${at}s] SIGSTOP ${target.id} (pid ${pid}) for ${hold} ms`);
    await sleep(hold);
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // the server killed it (heartbeat)
    }
    this.stopped.delete(pid);
  }

  private async cutDatabase(hold: number, at: string): Promise<void> {
    const proxy = this.t.proxy;
    if (proxy === null) return;
    this.counts.dbCuts++;
    this.t.ctx.o.log(`[${at}s] database connection cut for ${hold} ms`);
    proxy.cutNow();
    await sleep(hold);
    proxy.restore();
  }

  private async addNode(at: string): Promise<void> {
    const log = this.t.ctx.o.log;
    const a = await this.t.control.request('POST', '/api/nodes', {}, {}, 120_000);
    if ('status' in a && a.status === 200) {
      const r = a.json as MembershipReply;
      this.counts.nodesAdded++;
      this.everSeen.add(r.node);
      log(`[${at}s] POST /api/nodes: ${r.node} ${r.how}, placement version ${r.version}, members ${r.members.join(',')}`);
    } else log(`[${at}s] POST /api/nodes: ${'status' in a ? `${a.status} ${a.text.slice(0, 200)}` : a.transport}`);
  }

  private async removeNode(target: NodeTarget, at: string): Promise<void> {
    const log = this.t.ctx.o.log;
    // Half the time a node this tool has just SIGKILLed (removed while down, if the server has
    // noticed before its automatic restart), else a live one (drained).
    const kill = this.rng.next() < 0.5;
    if (kill) {
      try {
        process.kill(target.pid!, 'SIGKILL');
        this.counts.kills++;
      } catch {
        // exited meanwhile
      }
      const until = wallNow() + 2000;
      while (wallNow() < until) {
        const now = await this.t.monitor.poll();
        if (now?.nodes.find((n) => n.id === target.id)?.status !== 'up') break;
        await sleep(20);
      }
    }
    const a = await this.t.control.request('DELETE', `/api/nodes/${encodeURIComponent(target.id)}`, undefined, {}, 120_000);
    if ('status' in a && a.status === 200) {
      const r = a.json as MembershipReply;
      if (r.how === 'restored') {
        this.counts.nodesRestored++;
        this.restoredAway.add(r.node);
      } else this.counts.nodesDrained++;
      log(
        `[${at}s] ${kill ? `SIGKILL ${target.id}, then ` : ''}DELETE /api/nodes/${target.id}: ${r.how}, placement version ${r.version}, members ${r.members.join(',')}`,
      );
    } else
      log(
        `[${at}s] ${kill ? `SIGKILL ${target.id}, then ` : ''}DELETE /api/nodes/${target.id}: ${'status' in a ? `${a.status} ${a.text.slice(0, 200)}` : a.transport}`,
      );
  }

  private async restartServer(at: string): Promise<void> {
    const { ctx, monitor, clients } = this.t;
    const server = ctx.server;
    this.counts.serverRestarts++;
    ctx.o.log(`[${at}s] SIGKILL the server (pid ${server.pid}), start ${server.starts}`);
    ctx.up = false;
    const inc = ctx.incarnation;
    monitor.detach();
    await server.kill();
    for (const cl of clients) cl.orphanIncarnation(inc);
    // Node processes exit when they lose the server; stopped ones cannot notice: end them.
    for (const pid of processesInGroups(server.groups)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    this.stopped.clear();
    await sleep(this.rng.int(100, 1000));
    const t = wallNow();
    await this.t.startServer();
    ctx.o.log(`  server back after ${((wallNow() - t) / 1000).toFixed(1)} s (pid ${server.pid}, world-line ${monitor.cluster?.worldLine ?? '?'})`);
  }
}

interface NodeTarget {
  id: NodeId;
  pid: number | null;
}

/** The answer to `POST /api/nodes` and `DELETE /api/nodes/:id`. */
interface MembershipReply {
  node: NodeId;
  version: number;
  members: NodeId[];
  how: string;
}
