import type { Json, NodeId, WorkloadConfig, WorkloadKind } from '@dse/shared';
import { isDseError } from '@dse/shared';
import type { Session } from '../core/session';
import type { TravelKind, TripLeg } from '../services';
import { BrokerClient, KvClient, Producer, WalClient, WorkflowClient, travelReservation } from '../services';
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

/** The service workloads' names: logs, topics, consumer groups (speculative, committed-only), trip items. */
export const WORKLOAD_LOGS = ['audit', 'orders'] as const;
export const WORKLOAD_TOPICS = ['orders', 'payments'] as const;
export const WORKLOAD_GROUPS = { speculative: 'billing', committed: 'ledger' } as const;
const TRIP_KINDS: readonly TravelKind[] = ['flight', 'hotel', 'car'];
/** Stock of each ordinary trip item when first seen (its decrements show in the state). */
const TRIP_STOCK = 1000;
/** Shares of reservations that fail on purpose (then the steps before the failing one are compensated). */
const TRIP_DECLINED = 0.06;
const TRIP_SOLD_OUT = 0.06;
/** Share of broker producer turns that publish again an event already in the topic (dropped as a duplicate). */
const BROKER_DUPLICATES = 0.1;
/** Share of wal turns that read the committed prefix instead of appending. */
const WAL_COMMITTED_READS = 0.15;

type ServiceKind = Exclude<WorkloadKind, 'kv' | 'chain' | 'mixed'>;

function isServiceKind(k: WorkloadKind): k is ServiceKind {
  return k === 'wal' || k === 'kvstore' || k === 'broker' || k === 'workflow';
}

/** Whatever a request answers with speculatively: the committed outcome comes later (or a rollback). */
/** An answer whose commit the workload counts, without asking for it (the nodes commit at their pace). */
interface Answered {
  whenCommitted(): Promise<unknown>;
}

/** One workload session's service clients, for one placement (the cluster's node ids, sorted). */
interface Lane {
  /** Unique per server start: names the lane's producer. */
  id: number;
  nodesKey: string;
  wal: WalClient;
  kv: KvClient;
  broker: BrokerClient;
  wf: WorkflowClient;
  nodes: readonly NodeId[];
  /** A broker producer (the first half of the sessions), made on first use. */
  producer: Producer | null;
  /** The last value this session saw of each kv store key (what its compare-and-set expects). */
  seen: Map<string, Json>;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

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
  private readonly lanes = new Map<Session, Lane>();
  /** Numbers lanes (producer ids and workflow ids are unique per server start). */
  private laneCount = 0;
  private workflows = 0;
  private readonly walNext = new Map<string, number>();

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
    this.lanes.clear();
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
    if (this.cluster.config.held) {
      // The cluster holds: nothing is sent, and no budget builds up meanwhile.
      this.lastTick = now;
      return;
    }
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
    const kind = this.config.kind;
    // The load generator acknowledges its sessions' rollbacks at once and goes on (a real client would
    // decide what to do about the requests that did not survive).
    s.resume();
    let run: () => Promise<Answered>;
    try {
      if (isServiceKind(kind)) {
        const lane = this.lane(s);
        run = () => this.serviceOp(kind, s, lane);
      } else {
        const { node, payload } = this.op();
        run = () => this.requests.send(s, node, payload).answer;
      }
    } catch {
      return; // no nodes
    }
    const started = performance.now();
    this.busy.add(s);
    this.counters.sent++;
    run().then(
      (a) => {
        this.busy.delete(s);
        this.counters.answered++;
        this.sample(this.specLatency, performance.now() - started);
        a.whenCommitted().then(
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

  /** The session's clients over the cluster's current nodes; new ones (and a new producer id) when the nodes changed. */
  private lane(s: Session): Lane {
    // The placement the server routes by (clients that meet a newer one follow it, and teach it to the server).
    const placement = this.cluster.membership.view;
    const nodes = [...placement.members];
    if (nodes.length === 0) throw new Error('no nodes');
    const nodesKey = nodes.join(',');
    const old = this.lanes.get(s);
    if (old !== undefined && old.nodesKey === nodesKey) return old;
    const opts = { nodes, placement, cutView: this.cluster.host };
    const lane: Lane = {
      id: ++this.laneCount,
      nodesKey,
      nodes,
      wal: new WalClient(s, opts),
      kv: new KvClient(s, opts),
      broker: new BrokerClient(s, opts),
      wf: new WorkflowClient(s, opts),
      producer: null,
      seen: new Map(),
    };
    this.lanes.set(s, lane);
    return lane;
  }

  /** One request (or, for a broker producer, one event: a rolled-back earlier one is published again first). */
  private async serviceOp(kind: ServiceKind, s: Session, lane: Lane): Promise<Answered> {
    const index = this.sessions.indexOf(s);
    switch (kind) {
      case 'wal': {
        const log = pick(WORKLOAD_LOGS);
        const next = this.walNext.get(log) ?? 0;
        if (Math.random() < WAL_COMMITTED_READS) return lane.wal.read(log, { committed: true, from: Math.max(0, next - 20), max: 20 });
        this.walNext.set(log, next + 1);
        return lane.wal.append(log, { i: next, at: Date.now() });
      }
      case 'kvstore': {
        const key = pick(KEYS);
        const r = Math.random();
        if (r < 0.3) {
          const a = await lane.kv.get(key);
          lane.seen.set(key, a.value.value);
          return a;
        }
        if (r < 0.65) {
          const value = Math.floor(Math.random() * 1000);
          const a = await lane.kv.put(key, value);
          lane.seen.set(key, value);
          return a;
        }
        if (r < 0.75) {
          const a = await lane.kv.delete(key);
          lane.seen.set(key, null);
          return a;
        }
        const value = Math.floor(Math.random() * 1000);
        const a = await lane.kv.cas(key, lane.seen.get(key) ?? null, value);
        lane.seen.set(key, a.value.ok ? value : a.value.value);
        return a;
      }
      case 'broker': {
        if (index < SESSIONS / 2) {
          // Producers: the first half of the sessions, each on one topic.
          lane.producer ??= new Producer(lane.broker, WORKLOAD_TOPICS[index % WORKLOAD_TOPICS.length]!, `p${this.cluster.bootId}.${lane.id}`);
          const p = lane.producer;
          if (p.publishedUpTo >= 1 && Math.random() < BROKER_DUPLICATES) {
            // The same (producer, seq) again, as a producer retrying after a lost answer would: the broker drops it.
            return lane.broker.publish(p.topic, p.id, p.publishedUpTo, { seq: p.publishedUpTo, duplicate: true });
          }
          return p.send({ seq: p.seq + 1, at: Date.now() });
        }
        // Consumers: the other half, alternately of the speculative and the committed-only group.
        const committed = index % 2 === 1;
        return lane.broker.poll(pick(WORKLOAD_TOPICS), committed ? WORKLOAD_GROUPS.committed : WORKLOAD_GROUPS.speculative, { max: 10, committed });
      }
      case 'workflow': {
        const id = `trip-${this.cluster.bootId}-${++this.workflows}`;
        return lane.wf.run(id, travelReservation(id, tripLegs(), lane.nodes));
      }
    }
  }

  private sample(list: number[], v: number): void {
    list.push(v);
    if (list.length > SAMPLES_MAX) list.splice(0, list.length - SAMPLES_MAX);
  }
}

/**
 * A trip of 1 to 10 legs (flights, hotels, cars from a small stock, a payment last when there are
 * several); a few on purpose end with a sold-out item or a declined payment, so that the legs
 * before it are compensated.
 */
export function tripLegs(random: () => number = Math.random): TripLeg[] {
  const n = 1 + Math.floor(random() * 10);
  const legs: TripLeg[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i === n - 1 && n > 1 ? 'payment' : TRIP_KINDS[Math.floor(random() * TRIP_KINDS.length)]!;
    legs.push({ kind, item: kind === 'payment' ? 'card' : `${kind}-${Math.floor(random() * 4)}`, capacity: kind === 'payment' ? null : TRIP_STOCK });
  }
  const r = random();
  const last = legs[n - 1]!;
  if (r < TRIP_DECLINED) legs[n - 1] = { kind: 'payment', item: 'card', capacity: null, decline: true };
  else if (r < TRIP_DECLINED + TRIP_SOLD_OUT) legs[n - 1] = { kind: last.kind === 'payment' ? 'hotel' : last.kind, item: 'sold-out', capacity: 0 };
  return legs;
}
