import type { Json, NodeId, Version } from '@dse/shared';
import { DseError, isDseError } from '@dse/shared';
import type { ActionContext, App, AppRequest } from '../core/app';
import type { Session } from '../core/session';
import type { ClientOptions, CutView, Speculative } from './common';
import { asObject, int, name, optInt, request, shardOf } from './common';

/**
 * Event broker. Each topic lives on one node (by hash of its name). Producers publish with
 * `(producerId, seq)`, seqs increasing per producer and topic; a publish whose seq is not above the
 * producer's last one is a duplicate and is dropped. Consumer groups keep their offsets in the
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
  /** The event's offset; null for a dropped duplicate. */
  offset: number | null;
  duplicate: boolean;
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
        return { from, events: events as unknown as Json, next, committed: upTo !== undefined };
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
  private readonly nodes: readonly NodeId[];
  private readonly cutView: CutView | undefined;

  constructor(session: Session, opts: ClientOptions) {
    this.session = session;
    this.nodes = opts.nodes;
    this.cutView = opts.cutView;
  }

  /** The node that holds `topic`. */
  nodeOf(topic: string): NodeId {
    return topicNode(topic, this.nodes);
  }

  /** Publishes one event; `seq` must grow per producer and topic (see `Producer`, which keeps it). */
  publish(topic: string, producer: string, seq: number, data: Json): Promise<Speculative<PublishResult>> {
    return request(this.session, this.nodeOf(topic), { svc: 'broker', op: 'publish', topic, producer, seq, data });
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
    return request(this.session, node, payload);
  }

  offsets(topic: string, group: string): Promise<Speculative<{ offset: number; length: number }>> {
    return request(this.session, this.nodeOf(topic), { svc: 'broker', op: 'offsets', topic, group });
  }
}

/**
 * A producer: numbers its events and publishes them in order. When a publish is rolled back (a
 * definite `RolledBack`: it did not happen, and neither did any later request of the session) it
 * publishes again from that event on, with the same seqs; the broker drops whatever it already has.
 */
export class Producer {
  private readonly client: BrokerClient;
  readonly topic: string;
  readonly id: string;
  /** Events not yet known committed, by seq. */
  private readonly pending = new Map<number, Json>();
  private lastSeq = 0;
  /** The next seq to publish. */
  private next = 1;
  private rewindTo = Infinity;

  constructor(client: BrokerClient, topic: string, producerId: string) {
    this.client = client;
    this.topic = topic;
    this.id = producerId;
  }

  /** Seqs handed out so far. */
  get seq(): number {
    return this.lastSeq;
  }

  /** Events published but not yet committed (or rolled back and not yet published again). */
  get uncommitted(): number {
    return this.pending.size;
  }

  /**
   * Numbers `data` and publishes it, after any earlier event that must go again; resolves with this
   * event's publish (speculative: `commit()` for the durable answer).
   */
  async send(data: Json): Promise<Speculative<PublishResult>> {
    const seq = ++this.lastSeq;
    this.pending.set(seq, data);
    for (;;) {
      if (this.rewindTo < this.next) this.next = this.rewindTo;
      this.rewindTo = Infinity;
      const s = this.next;
      if (s > seq) throw new Error('unreachable: published past the event being sent');
      if (!this.pending.has(s)) {
        this.next++;
        continue;
      }
      try {
        const r = await this.client.publish(this.topic, this.id, s, this.pending.get(s)!);
        r.commit().then(
          () => this.pending.delete(s),
          (e: unknown) => {
            if (isDseError(e) && e.code === 'RolledBack') this.rewindTo = Math.min(this.rewindTo, s);
          },
        );
        this.next = s + 1;
        if (s === seq && this.rewindTo === Infinity) return r;
      } catch (e) {
        if (!isDseError(e) || e.code !== 'RolledBack') throw e;
        this.rewindTo = Math.min(this.rewindTo, s);
      }
    }
  }
}
