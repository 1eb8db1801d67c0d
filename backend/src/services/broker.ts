import type { Json, NodeId, Version } from '@dse/shared';
import { DseError, isDseError, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest } from '../core/app';
import type { Session } from '../core/session';
import type { ClientOptions, CutView, PlacementView, Speculative } from './common';
import { asObject, int, name, optInt, request, shardOf } from './common';

/**
 * Event broker. Each topic lives on one node (by hash of its name). Producers publish with
 * `(producerId, seq)`, seqs 1, 2, 3 … per producer and topic: a publish whose seq is not above the
 * producer's last one is a duplicate and is dropped; one that skips a seq is refused with the seq
 * expected (the producer's earlier publish was rolled back: it publishes again from there), so no
 * event is lost and each producer's events stay in order. Consumer groups keep their offsets in the
 * topic node's state: a poll hands out the events from the group's offset and moves it on, in the
 * same action, so a committed poll delivered its events once to its group.
 *
 * Speculative consumers see events at once and carry their dependencies (their session then depends
 * on the publishers' versions); committed-only consumers pass the cut's version of the topic's node
 * (`upTo`) and get only events appended at or below it, which are committed already. Either way,
 * a poll's offset move is itself speculative: act on the events outside the system only after the
 * poll's `commit()`, or a recovery may hand them out again.
 *
 * State, one key per event:
 *   `br/<topic>/n`             the topic's length
 *   `br/<topic>/e/<offset>`    `{p: producer, s: seq, d: data, v: version}`
 *   `br/<topic>/p/<producer>`  the producer's last seq
 *   `br/<topic>/g/<group>`     the group's offset (the next event it gets)
 */
export interface BrokerEvent {
  offset: number;
  producer: string;
  seq: number;
  data: Json;
}
export interface PublishResult {
  /** The event's offset; null for a dropped duplicate or a refused out-of-order publish. */
  offset: number | null;
  duplicate: boolean;
  /** Out of order: the seq the broker expects next from this producer. */
  expected?: number;
}
export interface PollResult {
  from: number;
  events: BrokerEvent[];
  next: number;
  committed: boolean;
}

interface StoredEvent {
  p: string;
  s: number;
  d: Json;
  v: Version;
}

export const BROKER_PREFIX = 'br/';
export const topicLengthKey = (topic: string): string => `br/${topic}/n`;
export const eventKey = (topic: string, offset: number): string => `br/${topic}/e/${offset}`;
export const producerKey = (topic: string, producer: string): string => `br/${topic}/p/${producer}`;
export const groupKey = (topic: string, group: string): string => `br/${topic}/g/${group}`;
export const POLL_MAX = 1000;

/** The node that holds `topic`, for a cluster of `nodes` (in a fixed order). */
export function topicNode(topic: string, nodes: readonly NodeId[]): NodeId {
  return shardOf(`broker:${topic}`, nodes);
}

export const brokerApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json {
    const what = 'broker';
    const p = asObject(req.payload, what);
    const topic = name(p, 'topic', what);
    const n = (ctx.get(topicLengthKey(topic)) as number | undefined) ?? 0;
    switch (p.op) {
      case 'publish': {
        const producer = name(p, 'producer', what);
        const seq = int(p, 'seq', what, undefined, 1);
        const last = (ctx.get(producerKey(topic, producer)) as number | undefined) ?? 0;
        if (seq <= last) return { offset: null, duplicate: true };
        if (seq > last + 1) return { offset: null, duplicate: false, expected: last + 1 };
        ctx.put(eventKey(topic, n), { p: producer, s: seq, d: p.data ?? null, v: ctx.version });
        ctx.put(topicLengthKey(topic), n + 1);
        ctx.put(producerKey(topic, producer), seq);
        return { offset: n, duplicate: false };
      }
      case 'poll': {
        const group = name(p, 'group', what);
        const max = Math.min(int(p, 'max', what, 100, 1), POLL_MAX);
        const upTo = optInt(p, 'upTo', what);
        const from = (ctx.get(groupKey(topic, group)) as number | undefined) ?? 0;
        const events: BrokerEvent[] = [];
        for (let o = from; o < n && events.length < max; o++) {
          const e = ctx.get(eventKey(topic, o)) as StoredEvent | undefined;
          if (e === undefined) break;
          if (upTo !== undefined && e.v > upTo) break;
          events.push({ offset: o, producer: e.p, seq: e.s, data: e.d });
        }
        const next = from + events.length;
        if (next !== from) ctx.put(groupKey(topic, group), next);
        return { from, events: toJson(events), next, committed: upTo !== undefined };
      }
      case 'offsets': {
        // Where a group is and how long the topic is, without moving anything.
        const group = name(p, 'group', what);
        return { offset: (ctx.get(groupKey(topic, group)) as number | undefined) ?? 0, length: n };
      }
      default:
        throw new DseError('BadRequest', `broker: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },
};

/** A typed client of the broker over one session. */
export class BrokerClient {
  private readonly session: Session;
  private readonly view: PlacementView;
  private readonly cutView: CutView | undefined;

  constructor(session: Session, opts: ClientOptions) {
    this.session = session;
    this.view = opts.placement ?? { version: 0, members: [...opts.nodes].sort() };
    this.cutView = opts.cutView;
  }

  /**
   * After a rollback the session refuses every request (`SessionRolledBack`) until the client
   * acknowledges it here; then it goes on from what survived.
   */
  resume(): void {
    this.session.resume();
  }

  /** The node that holds `topic`. */
  nodeOf(topic: string): NodeId {
    return topicNode(topic, this.view.members);
  }

  /** Publishes one event; `seq` goes 1, 2, 3 … per producer and topic (see `Producer`, which keeps it). */
  publish(topic: string, producer: string, seq: number, data: Json): Promise<Speculative<PublishResult>> {
    return request(this.session, this.nodeOf(topic), { svc: 'broker', op: 'publish', topic, producer, seq, data }, undefined, this.view);
  }

  /**
   * Takes up to `max` events for `group` and moves its offset past them. `committed: true` gets only
   * committed events (needs the client's `cutView`); otherwise events are seen at once, speculatively.
   */
  poll(topic: string, group: string, opts: { max?: number; committed?: boolean } = {}): Promise<Speculative<PollResult>> {
    const node = this.nodeOf(topic);
    const payload: Record<string, Json> = { svc: 'broker', op: 'poll', topic, group, max: opts.max ?? 100 };
    if (opts.committed === true) {
      if (this.cutView === undefined) throw new DseError('BadRequest', 'broker: committed-only polls need a cutView (the session host)');
      payload.upTo = this.cutView.cut[node] ?? 0;
    }
    return request(this.session, node, payload, undefined, this.view);
  }

  offsets(topic: string, group: string): Promise<Speculative<{ offset: number; length: number }>> {
    return request(this.session, this.nodeOf(topic), { svc: 'broker', op: 'offsets', topic, group }, undefined, this.view);
  }
}

/**
 * A producer: numbers its events and publishes them in order. When a publish is rolled back (a
 * definite `RolledBack`: it did not happen, and neither did any later request of the session) it
 * publishes again from that event on, with the same seqs; the broker drops whatever it already has.
 * Calls must not overlap: await each `send` before the next.
 */
export class Producer {
  private readonly client: BrokerClient;
  readonly topic: string;
  readonly id: string;
  /** Events not yet known committed, by seq: `sent` false when (again) to be published. */
  private readonly pending = new Map<number, { data: Json; sent: boolean }>();
  private lastSeq: number;

  /** `lastSeq`: the producer's last seq already in the topic (a producer that starts again under the same id). */
  constructor(client: BrokerClient, topic: string, producerId: string, lastSeq = 0) {
    this.client = client;
    this.topic = topic;
    this.id = producerId;
    this.lastSeq = lastSeq;
  }

  /** Seqs handed out so far. */
  get seq(): number {
    return this.lastSeq;
  }

  /** The highest seq up to which every event has been published (in this world, so far). */
  get publishedUpTo(): number {
    let low = this.lastSeq + 1;
    for (const [s, e] of this.pending) if (!e.sent && s < low) low = s;
    return low - 1;
  }

  /** Events published but not yet committed, or rolled back and not yet published again. */
  get uncommitted(): number {
    return this.pending.size;
  }

  /**
   * Numbers `data` and publishes it, after any earlier event that must go again; resolves with this
   * event's publish (speculative: `commit()` for the durable answer).
   */
  async send(data: Json): Promise<Speculative<PublishResult>> {
    const seq = ++this.lastSeq;
    this.pending.set(seq, { data, sent: false });
    let mine: Speculative<PublishResult> | null = null;
    for (;;) {
      const s = this.publishedUpTo + 1;
      if (s > seq) return mine!;
      const r = await this.publishOne(s);
      if (s === seq && r !== null) mine = r;
    }
  }

  /** Publishes again whatever was rolled back (say, after the last `send`). */
  async flush(): Promise<void> {
    for (;;) {
      const s = this.publishedUpTo + 1;
      if (s > this.lastSeq) return;
      await this.publishOne(s);
    }
  }

  private async publishOne(s: number): Promise<Speculative<PublishResult> | null> {
    const e = this.pending.get(s)!;
    e.sent = true;
    try {
      const r = await this.client.publish(this.topic, this.id, s, e.data);
      if (r.value.expected !== undefined) {
        // An earlier publish of ours was rolled back: everything from the expected seq on goes again.
        for (const [k, p] of this.pending) if (k >= r.value.expected) p.sent = false;
        return null;
      }
      r.whenCommitted().then(
        () => {
          if (this.pending.get(s) === e) this.pending.delete(s);
        },
        (err: unknown) => {
          if (isDseError(err) && err.code === 'RolledBack') e.sent = false;
        },
      );
      return r;
    } catch (err) {
      if (!isDseError(err) || (err.code !== 'RolledBack' && err.code !== 'SessionRolledBack' && err.code !== 'NodeRemoved')) throw err;
      // Rolled back, refused because an earlier publish of the session was, or sent to a node removed
      // meanwhile: it did not happen; publish it again.
      if (err.code === 'SessionRolledBack') this.client.resume();
      e.sent = false;
      return null;
    }
  }
}
