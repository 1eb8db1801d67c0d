import type { Json, NodeId } from '@dse/shared';
import { fromJson, isDseError } from '@dse/shared';
import { servicesApp } from '../../services';
import type { BrokerEvent } from '../../services/broker';
import { BROKER_PREFIX, BrokerClient, eventKey, groupKey, Producer, topicLengthKey, topicNode } from '../../services/broker';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { Scenario, ScenarioRun, WorkloadEnv } from '../scenario';
import { checkRecordVersions, getter, membersOf, orRolledBack, outcomesOf, SessionLoops } from './common';

const TOPICS = ['orders', 'payments'];
/** Session roles, by index: four producers, two speculative consumers, two committed-only ones. */
const ROLES = ['producer', 'producer', 'producer', 'producer', 'speculative', 'speculative', 'committed', 'committed'] as const;
const GROUP = { speculative: 'spec', committed: 'comm' } as const;

interface StoredEvent {
  p: string;
  s: number;
  d: Json;
}

/**
 * Event broker: producers publish to two topics (now and then sending an event again on purpose),
 * speculative and committed-only consumers poll in two groups. Invariant `broker-delivery`: per
 * topic, no holes, each `(producer, seq)` at most once and in seq order, each committed publish at its
 * offset, nothing from a rolled-back publish; per group, the committed polls hand out each event once
 * (contiguous ranges from 0 up to the group's final offset) and in order per producer; a committed-only
 * poll only ever hands out committed events (also checked at every restore of a topic's node).
 */
export const brokerScenario: Scenario = {
  name: 'broker',
  app: servicesApp,
  workloadMs: (requestsPerSession) => requestsPerSession * 12,
  createRun(): ScenarioRun {
    const loops = new SessionLoops();
    let world: WorkloadEnv | null = null;
    /** Events committed-only polls handed out, per topic: offset → (producer, seq). */
    const handedOut = new Map<string, Map<number, string>>();
    return {
      start(env: WorkloadEnv) {
        world = env;
        const { rng } = env;
        return loops.start(env, async (s, i) => {
          const client = new BrokerClient(s, { nodes: env.nodes, placement: env.placement, cutView: env.host });
          const role = ROLES[i % ROLES.length]!;
          if (role === 'producer') {
            const producer = new Producer(client, TOPICS[i % TOPICS.length]!, `p${i}`);
            for (let k = 0; k < env.requestsPerSession; k++) {
              await env.sleep(rng.next() * 4);
              if (producer.publishedUpTo > 0 && rng.chance(0.15)) {
                // A producer that is not sure its event arrived sends it again: the broker drops it.
                const seq = rng.int(1, producer.publishedUpTo);
                await orRolledBack(client, client.publish(producer.topic, producer.id, seq, `${producer.id}:${seq}`));
              } else {
                await producer.send(`${producer.id}:${producer.seq + 1}`).catch((e: unknown) => {
                  // During a membership change the client may stop following WrongOwner answers: the publish
                  // changed nothing, and the producer publishes it again after its next one is refused as out of order.
                  if (!isDseError(e) || e.code !== 'WrongOwner') throw e;
                });
              }
            }
            return;
          }
          for (let k = 0; k < env.requestsPerSession; k++) {
            await env.sleep(rng.next() * 6);
            const topic = rng.pick(TOPICS);
            const r = await orRolledBack(client, client.poll(topic, GROUP[role], { max: rng.int(1, 6), committed: role === 'committed' }));
            if (r !== null && role === 'committed') {
              let m = handedOut.get(topic);
              if (m === undefined) handedOut.set(topic, (m = new Map<number, string>()));
              for (const e of r.value.events) m.set(e.offset, `${e.producer}/${e.seq}`);
            }
          }
        });
      },
      done: () => loops.allDone,
      checks: {
        onRestored(c: Checker, node: NodeId, toVersion: number, view: NodeView, t: number): void {
          checkRecordVersions(c, node, toVersion, view, t, [BROKER_PREFIX]);
          const g = getter(view);
          for (const [topic, m] of handedOut) {
            // With membership a topic moves: checked on the node that holds it (the restored state says which).
            if (world?.members !== undefined ? !view.appState.has(topicLengthKey(topic)) : topicNode(topic, membersOf(world)) !== node) continue;
            for (const [o, id] of m) {
              const e = g.get(eventKey(topic, o)) as StoredEvent | undefined;
              if (e === undefined || `${e.p}/${e.s}` !== id)
                c.fail(
                  'broker-delivery',
                  `${node} restored to ${toVersion}: ${topic}@${o} was handed out as committed (${id}) but is now ${e === undefined ? 'gone' : `${e.p}/${e.s}`}`,
                  t,
                );
            }
          }
        },
        finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>): void {
          loops.report(c, t);
          checkBroker(c, t, outcomes, views, membersOf(world));
        },
      },
    };
  },
};

function checkBroker(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>, nodes: readonly NodeId[]): void {
  const fail = (m: string): void => c.fail('broker-delivery', m, t);
  const publishes = outcomesOf(outcomes, 'broker', 'publish');
  const polls = outcomesOf(outcomes, 'broker', 'poll');
  for (const topic of TOPICS) {
    const node = topicNode(topic, nodes);
    const g = getter(views.get(node));
    for (const [other, view] of views) {
      if (other !== node && view.appState.has(topicLengthKey(topic))) fail(`topic ${topic} lives on ${node} but ${other} holds it too`);
    }
    const n = (g.get(topicLengthKey(topic)) as number | undefined) ?? 0;
    const log: StoredEvent[] = [];
    for (let o = 0; o < n; o++) {
      const e = g.get(eventKey(topic, o)) as StoredEvent | undefined;
      if (e === undefined) {
        fail(`topic ${topic} on ${node} has length ${n} but a hole at ${o}`);
        break;
      }
      log.push(e);
    }
    // Each (producer, seq) once, in seq order per producer.
    const where = new Map<string, number>();
    const lastSeq = new Map<string, number>();
    log.forEach((e, o) => {
      const id = `${e.p}/${e.s}`;
      if (where.has(id)) fail(`topic ${topic}: ${id} is there twice, at ${where.get(id)} and ${o}: a duplicate was not dropped`);
      where.set(id, o);
      if ((lastSeq.get(e.p) ?? 0) >= e.s) fail(`topic ${topic}: ${id} at ${o} comes after seq ${lastSeq.get(e.p)} of the same producer`);
      lastSeq.set(e.p, e.s);
    });
    // Committed publishes are there, at their offset; everything there comes from a committed publish.
    const explained = new Set<number>();
    for (const { o, p, r } of publishes) {
      if (p.topic !== topic || o.status !== 'committed') continue;
      const id = `${String(p.producer)}/${String(p.seq)}`;
      if (r.expected !== undefined) continue; // refused: out of order
      if (r.duplicate === true) {
        if (!where.has(id)) fail(`topic ${topic}: committed publish ${o.session}#${o.seq} of ${id} was dropped as a duplicate, but ${id} is not in the topic`);
        continue;
      }
      const off = r.offset as number;
      const e = log[off];
      if (e === undefined || `${e.p}/${e.s}` !== id)
        fail(
          `topic ${topic}: committed publish ${o.session}#${o.seq} put ${id} at ${off}; the topic holds ${e === undefined ? 'nothing' : `${e.p}/${e.s}`} there`,
        );
      else explained.add(off);
    }
    log.forEach((e, o) => {
      if (!explained.has(o)) fail(`topic ${topic}: ${e.p}/${e.s} at ${o} comes from no committed publish`);
    });
    // Committed-only polls hand out only committed events (whatever became of the poll itself).
    const check = (ev: BrokerEvent, what: string): void => {
      const e = log[ev.offset];
      if (e === undefined || e.p !== ev.producer || e.s !== ev.seq)
        fail(
          `topic ${topic}: ${what} handed out ${ev.producer}/${ev.seq} at ${ev.offset}; the topic holds ${e === undefined ? 'nothing' : `${e.p}/${e.s}`} there`,
        );
    };
    for (const { o, p, r } of polls) {
      if (p.topic !== topic || p.upTo === undefined || o.result === null) continue;
      for (const ev of fromJson<BrokerEvent[]>(r.events)) check(ev, `committed-only poll ${o.session}#${o.seq} (${o.status})`);
    }
    // Per group: committed polls deliver each event once, in order.
    for (const group of Object.values(GROUP)) {
      const mine = polls
        .filter(({ o, p }) => p.topic === topic && p.group === group && o.status === 'committed')
        .sort((a, b) => (a.r.from as number) - (b.r.from as number));
      let at = 0;
      const delivered = new Map<string, number>();
      for (const { o, r } of mine) {
        const from = r.from as number;
        const next = r.next as number;
        if (from === next) continue;
        if (from > at)
          fail(
            `topic ${topic}, group ${group}: events ${at}..${from - 1} were never delivered by a committed poll (the next one, ${o.session}#${o.seq}, starts at ${from})`,
          );
        if (from < at)
          fail(
            `topic ${topic}, group ${group}: committed poll ${o.session}#${o.seq} delivered ${from}..${next - 1} again (up to ${at - 1} was delivered already)`,
          );
        for (const ev of fromJson<BrokerEvent[]>(r.events)) {
          check(ev, `committed poll ${o.session}#${o.seq}`);
          if ((delivered.get(ev.producer) ?? 0) >= ev.seq)
            fail(`topic ${topic}, group ${group}: ${ev.producer}/${ev.seq} delivered after seq ${delivered.get(ev.producer)} of the same producer`);
          delivered.set(ev.producer, ev.seq);
        }
        at = Math.max(at, next);
      }
      const offset = (g.get(groupKey(topic, group)) as number | undefined) ?? 0;
      if (offset !== at) fail(`topic ${topic}, group ${group}: the final offset is ${offset} but committed polls delivered up to ${at}`);
    }
  }
}
