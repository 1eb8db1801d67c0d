import type { NodeId } from '@dse/shared';
import { fromJson } from '@dse/shared';
import { servicesApp } from '../../services';
import type { Booking, TravelKind, TripLeg, WorkflowOutcome, WorkflowStep } from '../../services/workflow';
import { travelReservation, TRAVEL_PREFIX, WORKFLOW_PREFIX, WorkflowClient, workflowKey } from '../../services/workflow';
import type { Checker, NodeView, RequestOutcome } from '../checker';
import type { Scenario, ScenarioRun, WorkloadEnv } from '../scenario';
import { checkRecordVersions, holders, obj, orRolledBack, outcomesOf, SessionLoops } from './common';

/** Items per kind, with the stock each starts with (null: unlimited). */
const ITEMS: Record<TravelKind, [string, number | null][]> = {
  flight: [
    ['LH100', 30],
    ['BA200', 30],
    ['AF300', 30],
  ],
  hotel: [
    ['ritz', 40],
    ['hilton', 40],
  ],
  car: [
    ['avis', 35],
    ['hertz', 35],
  ],
  payment: [['visa', null]],
};
const CAPACITY = new Map<string, number | null>(Object.values(ITEMS).flat());

/** Workflows per session: each is many requests' worth of work. */
export const workflowsPerSession = (requestsPerSession: number): number => Math.max(1, Math.ceil(requestsPerSession / 3));

/**
 * Workflows: each session books trips of 1–10 steps (flights, hotels, cars, a payment last), each
 * trip a saga run by an orchestrator on a node picked at random; a step fails when its item is sold
 * out or the payment is declined (1 in 8), and then the steps before it are cancelled.
 * Invariant `workflow-saga`: a committed workflow's steps each ran exactly once at their provider;
 * a completed one has all its bookings and no compensation; a failed one has the steps before the
 * failed one compensated exactly once, the failed one refused for a true reason, and nothing after
 * it; a rolled-back workflow left nothing anywhere; every item's stock is what its bookings left.
 */
export const workflowScenario: Scenario = {
  name: 'workflow',
  app: servicesApp,
  workloadMs: (requestsPerSession) => workflowsPerSession(requestsPerSession) * 25,
  createRun(): ScenarioRun {
    const loops = new SessionLoops();
    let moving = false;
    return {
      start(env: WorkloadEnv) {
        moving = env.members !== undefined;
        const { rng } = env;
        const kinds: TravelKind[] = ['flight', 'hotel', 'car'];
        return loops.start(env, async (s) => {
          const wf = new WorkflowClient(s, { nodes: env.nodes, placement: env.placement });
          const count = workflowsPerSession(env.requestsPerSession);
          for (let k = 0; k < count; k++) {
            await env.sleep(rng.next() * 4);
            const steps = rng.int(1, 10);
            const legs: TripLeg[] = [];
            for (let i = 0; i < steps; i++) {
              const kind: TravelKind = i === steps - 1 && steps > 1 ? 'payment' : rng.pick(kinds);
              const [item, capacity] = rng.pick(ITEMS[kind]);
              legs.push({ kind, item, capacity, decline: kind === 'payment' && rng.chance(0.125) });
            }
            const id = `${s.id}.w${k}`;
            await orRolledBack(wf, wf.run(id, travelReservation(id, legs, env.nodes), rng.pick(env.nodes)));
          }
        });
      },
      done: () => loops.allDone,
      checks: {
        onRestored(c: Checker, node: NodeId, toVersion: number, view: NodeView, t: number): void {
          checkRecordVersions(c, node, toVersion, view, t, [WORKFLOW_PREFIX, TRAVEL_PREFIX]);
        },
        finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>, expectLiveness: boolean): void {
          loops.report(c, t);
          checkSagas(c, t, outcomes, views, expectLiveness, moving);
        },
      },
    };
  },
};

interface StepPayload {
  wf: string;
  step: number;
  item: string;
  decline: boolean;
}

/** `moving`: the members change during the run, so a workflow and an item's bookings may end on another node than they started on. */
function checkSagas(
  c: Checker,
  t: number,
  outcomes: readonly RequestOutcome[],
  views: ReadonlyMap<NodeId, NodeView>,
  expectLiveness: boolean,
  moving: boolean,
): void {
  const fail = (m: string): void => c.fail('workflow-saga', m, t);
  // Every booking anywhere, by workflow.
  const bookings = new Map<string, Map<number, Booking & { node: NodeId }>>();
  const booked = new Map<string, number>();
  for (const [node, view] of views) {
    for (const [key, value] of view.appState) {
      const m = /^tr\/b\/(.+)\/(\d+)$/.exec(key);
      if (m === null) continue;
      const b = fromJson<Booking>(value);
      let l = bookings.get(m[1]!);
      if (l === undefined) bookings.set(m[1]!, (l = new Map<number, Booking & { node: string }>()));
      l.set(Number(m[2]), { ...b, node });
      if (b.st === 'booked') booked.set(b.item, (booked.get(b.item) ?? 0) + 1);
    }
  }
  for (const { o, p, r } of outcomesOf(outcomes, 'wf', 'start')) {
    const id = p.id as string;
    const steps = fromJson<WorkflowStep[]>(p.steps);
    const mine = bookings.get(id) ?? new Map<number, Booking & { node: NodeId }>();
    bookings.delete(id);
    // Refused, but its record is somewhere: it was under way at a node removed while down (the session
    // was told Orphaned), and went on where that node's state was taken over. Judged by its record.
    const orphanedAt = o.status === 'refused' && moving ? holders(views, workflowKey(id)) : [];
    if ((o.status === 'rolledBack' || o.status === 'refused') && orphanedAt.length === 0) {
      if (mine.size > 0) fail(`rolled-back workflow ${id} (${o.status}) left ${mine.size} bookings, e.g. step ${[...mine.keys()][0]}`);
      continue;
    }
    const orphaned = orphanedAt.length > 0 ? obj(views.get(orphanedAt[0]!)?.appState.get(workflowKey(id)) ?? null) : null;
    if (orphaned !== null ? orphaned.ph !== 'done' : o.status !== 'committed') {
      if (expectLiveness)
        fail(
          `workflow ${id} never finished${orphaned !== null ? ` (taken over from a removed node, at ${orphanedAt.join(', ')})` : ` (its start at ${o.node} is ${o.status})`}`,
        );
      continue;
    }
    const out = fromJson<WorkflowOutcome>(orphaned !== null ? (orphaned.out ?? null) : r);
    let at = o.node;
    if (moving) {
      const where = holders(views, workflowKey(id));
      if (where.length > 1) fail(`workflow ${id} is held by ${where.join(' and ')}`);
      at = where[0] ?? o.node;
    }
    const record = obj(views.get(at)?.appState.get(workflowKey(id)) ?? null);
    if (record.ph !== 'done' || JSON.stringify(record.out) !== JSON.stringify(out))
      fail(`workflow ${id}: its orchestrator ${at} holds ${JSON.stringify(record.out ?? record.ph ?? null)}, the session got ${JSON.stringify(out)}`);
    const failedAt = out.status === 'failed' ? out.failedAt! : steps.length;
    steps.forEach((step, k) => {
      const d = fromJson<StepPayload>(step.do);
      const b = mine.get(k);
      const where = `workflow ${id} (${out.status}${out.status === 'failed' ? ` at ${failedAt}` : ''}), step ${k} (${step.name})`;
      if (k > failedAt) {
        if (b !== undefined) fail(`${where}: ran after the failed step`);
        return;
      }
      if (b === undefined) {
        fail(`${where}: never ran at ${step.node}${k === failedAt ? ` (the workflow failed there for ${JSON.stringify(out.reason ?? null)})` : ''}`);
        return;
      }
      if (!moving && b.node !== step.node) fail(`${where}: ran at ${b.node}, not at ${step.node}`);
      if (b.n !== 1) fail(`${where}: ran ${b.n} times`);
      if (k === failedAt) {
        if (b.st !== 'refused') fail(`${where}: failed, but its provider holds it ${b.st}`);
        else if (b.why === 'declined' && !d.decline) fail(`${where}: declined without a reason`);
        else if (b.why !== 'declined' && d.decline) fail(`${where}: a declined payment was refused as ${String(b.why)}`);
        if (b.cn !== 0) fail(`${where}: the failed step itself was compensated`);
        return;
      }
      if (d.decline) fail(`${where}: a declined payment went through`);
      const compensated = out.status === 'failed';
      if (b.st !== (compensated ? 'cancelled' : 'booked')) fail(`${where}: expected ${compensated ? 'cancelled' : 'booked'}, the provider holds it ${b.st}`);
      if (b.cn !== (compensated ? 1 : 0)) fail(`${where}: compensated ${b.cn} times, expected ${compensated ? 1 : 0}`);
    });
    const expectedComp = out.status === 'failed' ? Array.from({ length: failedAt }, (_, i) => failedAt - 1 - i) : [];
    if (JSON.stringify(out.compensated) !== JSON.stringify(expectedComp))
      fail(`workflow ${id}: compensated ${JSON.stringify(out.compensated)}, expected ${JSON.stringify(expectedComp)}`);
  }
  for (const [id, mine] of bookings) fail(`bookings of workflow ${id}, which no session started (steps ${[...mine.keys()].join(', ')})`);
  // Stock: what each item started with, less what is booked (kept on one node only).
  const stockSeen = new Map<string, NodeId>();
  for (const [node, view] of views) {
    for (const [key, value] of view.appState) {
      if (!key.startsWith('tr/s/')) continue;
      const item = key.slice('tr/s/'.length);
      if (stockSeen.has(item)) fail(`item ${item}: its stock is kept on ${stockSeen.get(item)} and on ${node}`);
      stockSeen.set(item, node);
      const cap = CAPACITY.get(item);
      const left = (value as { c: number }).c;
      if (cap === undefined || cap === null) fail(`stock kept for ${item}, which has none`);
      else if (left !== cap - (booked.get(item) ?? 0))
        fail(`item ${item} on ${node}: ${left} left, but ${cap} - ${booked.get(item) ?? 0} booked = ${cap - (booked.get(item) ?? 0)}`);
      booked.delete(item);
    }
  }
  for (const [item, n] of booked) if (CAPACITY.get(item) !== null) fail(`item ${item}: ${n} booked but no stock is kept`);
}
