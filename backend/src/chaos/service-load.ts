import type { ClusterInfo, Json, NodeId } from '@dse/shared';
import { toJson } from '@dse/shared';
import { wallNow } from '../live/clock';
import { Rng } from '../sim/rng';
import type { TravelKind, TripLeg } from '../services/workflow';
import { travelReservation } from '../services/workflow';
import { HttpClient } from './api';
import type { SessionResumes } from './tracked';
import { applyReply, isOpen, pollOpen, readReply, sessionRolledBack } from './tracked';
import type { Payload, ServiceName, ServiceRecord } from './verify-services';

/**
 * Load for the service scenarios: clients, each its own session (per server incarnation) and source
 * address, sending service requests through `POST /api/service` and recording what they were told
 * (the speculative answer, then committed or rolled back, or unknown when the server died first). A
 * session refusing a request because an earlier one was rolled back (`SessionRolledBack`): the request
 * is `refused` (never sent), the client resumes the session and goes on.
 * - wal: appends of unique data to three logs, now and then a committed-only read;
 * - broker: each client a producer with its own id on one of two topics, publishing seqs 1, 2, 3 …
 *   (going back to the seq the broker expects after a rollback), now and then sending an event again
 *   on purpose (the broker drops it); and polls of two consumer groups, speculative or committed-only;
 * - workflow: travel reservations of 1–10 steps, a payment last, one in eight declined.
 */

export interface LoadCtx {
  readonly o: { readonly rate: number; readonly seed: number };
  readonly server: { readonly url: string };
  readonly incarnation: number;
  readonly up: boolean;
  readonly stopping: boolean;
  readonly keyPrefix: string;
  readonly serviceRecords: ServiceRecord[];
  /** Every client's sessions and their resumes. */
  readonly sessions: SessionResumes;
  /** The cluster as last polled (nodes, cut). */
  cluster(): ClusterInfo | null;
}

/** What every load client offers the run (the kv one too). */
export interface Load {
  run(): Promise<void>;
  /** Asks for the outcome of open requests of the current incarnation; returns how many were open. */
  poll(max?: number): Promise<number>;
  orphanIncarnation(inc: number): void;
  close(): void;
}

export type ServiceScenario = 'wal' | 'broker' | 'workflow';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Step {
  svc: ServiceName;
  payload: Payload;
  node?: NodeId;
}

const sortedNodes = (c: ClusterInfo | null): NodeId[] => (c === null ? [] : c.nodes.map((n) => n.id).sort());

abstract class ServiceLoad implements Load {
  private readonly http: HttpClient;
  protected readonly mine: ServiceRecord[] = [];
  private readonly seqs = new Map<string, number>();
  protected readonly rng: Rng;

  constructor(
    protected readonly ctx: LoadCtx,
    protected readonly index: number,
    private readonly intervalMs: number,
  ) {
    this.http = new HttpClient(ctx.server.url, { localAddress: `127.0.0.${20 + index}`, timeoutMs: 30_000 });
    this.rng = new Rng(ctx.o.seed * 1000 + index);
  }

  /** The next request to send; null: nothing now. */
  protected abstract next(session: string, q: number): Step | null;

  /** A record changed (an answer, a final outcome). */
  protected onUpdate(_r: ServiceRecord): void {}

  protected get prefix(): string {
    return this.ctx.keyPrefix;
  }

  /** A request of this incarnation not answered yet: the session would queue the next one behind it. */
  private waiting(): boolean {
    const inc = this.ctx.incarnation;
    return this.mine.some((r) => r.incarnation === inc && r.result === null && isOpen(r));
  }

  async run(): Promise<void> {
    let pollAt = 0;
    while (!this.ctx.stopping) {
      if (!this.ctx.up) {
        await sleep(100);
        continue;
      }
      const started = wallNow();
      // One request at a time per session, as a client waiting for each answer would.
      if (!this.waiting()) await this.sendOnce();
      if (started - pollAt > 300) {
        pollAt = started;
        await this.poll();
      }
      const wait = this.intervalMs - (wallNow() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  private async sendOnce(): Promise<void> {
    const inc = this.ctx.incarnation;
    // Sessions live in the server: a new server incarnation gets new sessions.
    const session = `${this.prefix}${this.index}-${inc}`;
    const q = (this.seqs.get(session) ?? 0) + 1;
    const step = this.next(session, q);
    if (step === null) return;
    this.seqs.set(session, q);
    const rec: ServiceRecord = {
      svc: step.svc,
      session,
      q,
      incarnation: inc,
      id: null,
      node: step.node ?? null,
      payload: step.payload,
      outcome: 'pending',
      result: null,
      error: null,
      answerWorldLine: null,
      resumes: this.ctx.sessions.of(session),
    };
    this.ctx.serviceRecords.push(rec);
    this.mine.push(rec);
    const body: Record<string, Json> = { session, svc: step.svc, payload: step.payload };
    if (step.node !== undefined) body.node = step.node;
    const a = await this.http.request('POST', '/api/service', body);
    if ('transport' in a) rec.outcome = 'unknown';
    else if (this.apply(rec, a.status, a.json)) await this.ctx.sessions.resume(this.http, session);
    this.onUpdate(rec);
  }

  /** Returns true when the session refused the request as rolled back (it must be resumed). */
  private apply(rec: ServiceRecord, status: number, json: unknown): boolean {
    if (status === 404 && readReply(status, json).kind === 'none')
      throw new Error(`POST /api/service answered 404: this server has no service API (${JSON.stringify(json)})`);
    const r = applyReply(rec, status, json);
    if (r.kind === 'answer') {
      if (r.node !== null) rec.node = r.node;
      if (r.answer !== null) rec.result = r.answer.result;
    } else if (r.kind === 'error') rec.error = r.code;
    return sessionRolledBack(r);
  }

  poll(max = 25): Promise<number> {
    return pollOpen(
      this.ctx,
      this.http,
      this.mine,
      (r, status, json) => {
        this.apply(r, status, json);
        this.onUpdate(r);
      },
      max,
    );
  }

  orphanIncarnation(inc: number): void {
    for (const r of this.mine) {
      if (r.incarnation === inc && isOpen(r)) {
        r.outcome = 'unknown';
        this.onUpdate(r);
      }
    }
  }

  close(): void {
    this.http.close();
  }
}

// ------------------------------------------------------------------ wal

export const WAL_LOGS = ['orders', 'audit', 'events'];

class WalLoad extends ServiceLoad {
  /** How long this client saw each log (reads start somewhere before that). */
  private readonly seen = new Map<string, number>();

  protected next(session: string, q: number): Step {
    const log = `${this.prefix}${this.rng.pick(WAL_LOGS)}`;
    if (this.rng.chance(0.25)) {
      // A committed-only read: the server sends the cut's version of the log's node as `upTo`.
      const from = this.rng.int(0, this.seen.get(log) ?? 0);
      return { svc: 'wal', payload: { op: 'read', log, from, max: this.rng.int(1, 20), committed: true } };
    }
    return { svc: 'wal', payload: { op: 'append', log, data: `${session}#${q}` } };
  }

  protected override onUpdate(r: ServiceRecord): void {
    const pos = (r.result as { pos?: unknown } | null)?.pos;
    if (r.payload.op === 'append' && typeof pos === 'number')
      this.seen.set(r.payload.log as string, Math.max(this.seen.get(r.payload.log as string) ?? 0, pos + 1));
  }
}

// ------------------------------------------------------------------ broker

export const BROKER_TOPICS = ['orders', 'payments'];

class BrokerLoad extends ServiceLoad {
  private readonly topic: string;
  private readonly producer: string;
  /** The seq to publish next: back to the broker's expected one after a rollback or a refusal. */
  private nextSeq = 1;
  private readonly group: string;

  constructor(ctx: LoadCtx, index: number, intervalMs: number) {
    super(ctx, index, intervalMs);
    this.topic = `${ctx.keyPrefix}${BROKER_TOPICS[index % BROKER_TOPICS.length]!}`;
    this.producer = `p${index}`;
    this.group = `g${index % 2}`;
  }

  protected next(): Step {
    if (this.rng.chance(0.35)) {
      const topic = `${this.prefix}${this.rng.pick(BROKER_TOPICS)}`;
      // Half of them committed-only: the server sends the cut's version of the topic's node as `upTo`.
      return {
        svc: 'broker',
        payload: { op: 'poll', topic, group: this.group, max: this.rng.int(1, 6), ...(this.rng.chance(0.5) ? { committed: true } : {}) },
      };
    }
    let seq = this.nextSeq;
    if (seq > 1 && this.rng.chance(0.15))
      seq = this.rng.int(1, seq - 1); // sent again on purpose: the broker drops it
    else this.nextSeq++;
    return { svc: 'broker', payload: { op: 'publish', topic: this.topic, producer: this.producer, seq, data: `${this.producer}:${seq}` } };
  }

  protected override onUpdate(r: ServiceRecord): void {
    if (r.payload.op !== 'publish') return;
    const seq = r.payload.seq as number;
    const expected = (r.result as { expected?: unknown } | null)?.expected;
    // Out of order: an earlier publish did not happen (rolled back, or lost with the server). Go back.
    if (typeof expected === 'number' && expected < this.nextSeq) this.nextSeq = expected;
    if (r.outcome === 'rolled-back' && seq < this.nextSeq) this.nextSeq = seq;
    // Refused (never sent: say, by a rolled-back session): the seq it was to publish goes next again.
    if (r.outcome === 'refused' && seq === this.nextSeq - 1) this.nextSeq = seq;
  }
}

// ------------------------------------------------------------------ workflow

/**
 * Items per kind, with the stock each starts with (null: unlimited). Most have room for a long run;
 * one of each kind (AF300, hilton, hertz) sells out soon, so that workflows keep failing at a later
 * step and compensating the earlier ones all run long, besides the declined payments.
 */
export const TRAVEL_ITEMS: Record<TravelKind, [string, number | null][]> = {
  flight: [
    ['LH100', 300],
    ['BA200', 300],
    ['AF300', 8],
  ],
  hotel: [
    ['ritz', 400],
    ['hilton', 10],
  ],
  car: [
    ['avis', 350],
    ['hertz', 10],
  ],
  payment: [['visa', null]],
};

const SCARCE_MAX = 10;

/** Each item of a run (named with the run's prefix) and the stock it starts with. */
export function travelCapacity(prefix: string): Map<string, number | null> {
  return new Map(
    Object.values(TRAVEL_ITEMS)
      .flat()
      .map(([item, cap]) => [`${prefix}${item}`, cap]),
  );
}

class WorkflowLoad extends ServiceLoad {
  /** A scarce item one leg in twelve (else every long trip would hit one and fail), a plentiful one otherwise. */
  private pickItem(kind: TravelKind): [string, number | null] {
    const items = TRAVEL_ITEMS[kind];
    const scarce = items.filter(([, cap]) => cap !== null && cap <= SCARCE_MAX);
    const plenty = items.filter(([, cap]) => cap === null || cap > SCARCE_MAX);
    return scarce.length > 0 && (plenty.length === 0 || this.rng.chance(1 / 12)) ? this.rng.pick(scarce) : this.rng.pick(plenty);
  }

  protected next(session: string, q: number): Step | null {
    const nodes = sortedNodes(this.ctx.cluster());
    if (nodes.length === 0) return null;
    const kinds: TravelKind[] = ['flight', 'hotel', 'car'];
    const steps = this.rng.int(1, 10);
    const legs: TripLeg[] = [];
    for (let i = 0; i < steps; i++) {
      const kind: TravelKind = i === steps - 1 && steps > 1 ? 'payment' : this.rng.pick(kinds);
      const [item, capacity] = this.pickItem(kind);
      legs.push({ kind, item: `${this.prefix}${item}`, capacity, decline: kind === 'payment' && this.rng.chance(0.125) });
    }
    const id = `${session}.w${q}`;
    return { svc: 'wf', payload: { op: 'start', id, steps: toJson(travelReservation(id, legs, nodes)) } };
  }
}

export function serviceLoad(scenario: ServiceScenario, ctx: LoadCtx, index: number): Load {
  const interval = 1000 / ctx.o.rate;
  switch (scenario) {
    case 'wal':
      return new WalLoad(ctx, index, interval);
    case 'broker':
      return new BrokerLoad(ctx, index, interval);
    case 'workflow':
      // A workflow is up to ten steps' worth of requests, and its answer waits for all of them.
      return new WorkflowLoad(ctx, index, interval * 2);
  }
}
