import type { CallerId, Json, NodeId, Version } from '@dse/shared';
import { DseError, fromJson, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest, Pending, Sthread } from '../core/app';
import { PENDING } from '../core/app';
import type { Session } from '../core/session';
import type { ClientOptions, PlacementView, Speculative } from './common';
import { asObject, followWrongOwner, int, isNodeRemovedAnswer, name, request, shardOf } from './common';

/**
 * Workflows: an orchestrator runs multi-step workflows (sagas) as sthreads over other services.
 *
 * A workflow is a list of steps; each step is a request `do` to a node, and an optional compensation
 * `undo`. A step whose answer has `ok: false` (or is a typed refusal, `{error}`) is a business
 * failure: the orchestrator then runs the compensations of the steps before it, last first, and the
 * workflow fails. Otherwise it completes. The session that started it gets the outcome as the answer
 * to its `start` request.
 *
 * Each step runs in an sthread of its own, detached under a key that names the workflow and the step
 * (`<id>/s<k>`, `<id>/c<k>` for compensations). The step's call is that sthread's first call, so its
 * caller and seq are the same every time the step is run: after a recovery the orchestrator (in
 * `onRestore`) runs again the step its restored state says is next, and a target that applied the
 * step in a committed version answers from its reply table instead of applying it again. Each
 * committed step therefore runs exactly once. The result is merged into the workflow's record in a
 * new action, which then detaches the next step: progress is always in state, never in a variable.
 *
 * State: `wf/<id>` `{st: steps, c, q: the starting request, k: next step, ph: 'run'|'comp'|'done',
 * f: failed step, why, cp: compensated steps, out: outcome, v, o?: the node whose sthreads run it}`.
 *
 * A workflow running on a node that is removed while down goes on at the node that takes its state
 * over (`onInherit`): its steps keep the first node's sthread ids (`o`), so a step that node applied
 * in a committed version is answered from the target's table, not applied again. Its starting request
 * gets no answer (the session was told `Orphaned`); `status` gives the outcome.
 */
export interface WorkflowStep {
  /** For people: "flight", "hotel" … */
  name: string;
  node: NodeId;
  do: Json;
  /** The compensation, run when a later step fails; null: nothing to undo. */
  undo: Json;
}

export interface WorkflowOutcome {
  id: string;
  status: 'completed' | 'failed';
  /** The step that failed. */
  failedAt?: number;
  reason?: Json;
  /** Steps compensated, in the order their compensations ran. */
  compensated: number[];
}

export interface WorkflowStatus {
  id: string;
  phase: 'run' | 'comp' | 'done' | 'unknown';
  next: number;
  steps: number;
  outcome: WorkflowOutcome | null;
}

interface WorkflowRecord {
  st: WorkflowStep[];
  c: CallerId;
  q: number;
  k: number;
  ph: 'run' | 'comp' | 'done';
  f: number | null;
  why: Json;
  cp: number[];
  out: WorkflowOutcome | null;
  v: Version;
  /** The node whose sthread ids run the steps, when not this one (taken over from a removed node). */
  o?: NodeId;
}

export const WORKFLOW_PREFIX = 'wf/';
export const workflowKey = (id: string): string => `wf/${id}`;
export const WORKFLOW_STEPS_MAX = 50;

function load(ctx: ActionContext, id: string): WorkflowRecord | undefined {
  return fromJson<WorkflowRecord | undefined>(ctx.get(workflowKey(id)));
}

function save(ctx: ActionContext, id: string, rec: WorkflowRecord): void {
  ctx.put(workflowKey(id), toJson({ ...rec, v: ctx.version }));
}

/** A business failure: `{ok: false}` or a typed refusal. */
function failed(result: Json): boolean {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return false;
  return result.ok === false || 'error' in result;
}

function reasonOf(result: Json): Json {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return null;
  return result.reason ?? result.error ?? null;
}

/** Runs whatever the record says comes next: a step, a compensation, or the end. */
function advance(ctx: ActionContext, id: string, rec: WorkflowRecord): void {
  if (rec.ph === 'run' && rec.k >= rec.st.length) {
    finish(ctx, id, rec, { id, status: 'completed', compensated: rec.cp });
    return;
  }
  if (rec.ph === 'comp') {
    // Compensate the steps before the failed one, last first, skipping those with nothing to undo.
    while (rec.k >= 0 && rec.st[rec.k]!.undo === null) rec.k--;
    if (rec.k < 0) {
      finish(ctx, id, rec, { id, status: 'failed', failedAt: rec.f!, reason: rec.why, compensated: rec.cp });
      return;
    }
  }
  save(ctx, id, rec);
  runStep(ctx, id, rec);
}

function finish(ctx: ActionContext, id: string, rec: WorkflowRecord, out: WorkflowOutcome): void {
  save(ctx, id, { ...rec, ph: 'done', out });
  // Taken over from a removed node, the starting request is not held here: nobody waits for its answer.
  if (ctx.isPending(rec.c, rec.q)) ctx.completeRequest(rec.c, rec.q, toJson(out));
}

/** Detaches the sthread of the record's next step (or compensation). */
function runStep(ctx: ActionContext, id: string, rec: WorkflowRecord): void {
  const phase: 'run' | 'comp' = rec.ph === 'comp' ? 'comp' : 'run';
  const k = rec.k;
  const step = rec.st[k]!;
  const opts = rec.o !== undefined ? { as: rec.o } : undefined;
  ctx.detach(
    `${id}/${phase === 'run' ? 's' : 'c'}${k}`,
    async (st: Sthread) => {
      const payload = phase === 'run' ? step.do : step.undo;
      let last = step.node;
      let result = await st.call(last, payload);
      // The step's unit moved (the members changed since the workflow started): call its owner. Each try is
      // a call of this sthread, so a recovery replays the same sequence and the targets answer from their tables.
      // Never taken as the step's result: followed (the owner named under the newest placement) until a
      // node that owns it answers. A step whose node was removed while down is answered from that node's
      // committed replies if it ran there (exactly once), and otherwise goes to its unit's owner now.
      // After a NodeRemoved the step asks its home: the node whose sthread ids it runs under (`o`, where the
      // workflow ran before it was taken over), so that a replay here repeats the calls made there and is
      // answered from their tables (the simulator found a compensation run twice when the replay asked
      // this node instead). Once the home itself answers NodeRemoved (gone, and it did not commit that call:
      // nothing the first run did after it committed), this node is asked.
      let home = rec.o ?? st.node;
      for (;;) {
        result = await followWrongOwner(
          result,
          (r: Json) => r,
          (owner) => st.call((last = owner), payload),
          { max: Infinity },
        );
        if (!isNodeRemovedAnswer(result)) break;
        if (last === home) home = st.node;
        result = await st.call((last = home), payload);
      }
      await st.merge((m) => {
        const rec = load(m, id);
        // Stale: the record moved on (it cannot, while this sthread lives, but a merge must not assume it).
        if (rec === undefined || rec.ph !== phase || rec.k !== k) return;
        if (phase === 'comp') {
          advance(m, id, { ...rec, cp: [...rec.cp, k], k: k - 1 });
        } else if (failed(result)) {
          advance(m, id, { ...rec, ph: 'comp', f: k, why: reasonOf(result), k: k - 1 });
        } else {
          advance(m, id, { ...rec, k: k + 1 });
        }
      });
    },
    opts,
  );
}

function parseSteps(p: Record<string, Json>): WorkflowStep[] {
  const raw = p.steps;
  if (!Array.isArray(raw) || raw.length > WORKFLOW_STEPS_MAX)
    throw new DseError('BadRequest', `workflow: steps must be a list of at most ${WORKFLOW_STEPS_MAX}`);
  return raw.map((s, i) => {
    const o = asObject(s, `workflow step ${i}`);
    if (typeof o.node !== 'string' || o.node.length === 0) throw new DseError('BadRequest', `workflow step ${i}: node must be a node id`);
    if (o.do === undefined || o.do === null) throw new DseError('BadRequest', `workflow step ${i}: do is required`);
    return { name: typeof o.name === 'string' ? o.name : `step ${i}`, node: o.node, do: o.do, undo: o.undo ?? null };
  });
}

export const workflowApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json | Pending {
    const what = 'workflow';
    const p = asObject(req.payload, what);
    const id = name(p, 'id', what);
    switch (p.op) {
      case 'start': {
        if (load(ctx, id) !== undefined) throw new DseError('Conflict', `workflow ${id} exists already`);
        const rec: WorkflowRecord = { st: parseSteps(p), c: req.caller, q: req.seq, k: 0, ph: 'run', f: null, why: null, cp: [], out: null, v: ctx.version };
        if (rec.st.length === 0) {
          const out: WorkflowOutcome = { id, status: 'completed', compensated: [] };
          save(ctx, id, { ...rec, ph: 'done', out });
          return toJson(out);
        }
        advance(ctx, id, rec);
        // The answer is the outcome, given by the action that finishes the workflow.
        return PENDING;
      }
      case 'status': {
        const rec = load(ctx, id);
        const status: WorkflowStatus =
          rec === undefined
            ? { id, phase: 'unknown', next: 0, steps: 0, outcome: null }
            : { id, phase: rec.ph, next: rec.k, steps: rec.st.length, outcome: rec.out };
        return toJson(status);
      }
      default:
        throw new DseError('BadRequest', `workflow: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },

  onRestore(ctx: ActionContext): void {
    // Sthreads are volatile: run again the step each unfinished workflow's restored record says is next.
    for (const key of ctx.keys(WORKFLOW_PREFIX)) {
      const rec = fromJson<WorkflowRecord>(ctx.get(key));
      if (rec.ph !== 'done') runStep(ctx, key.slice(WORKFLOW_PREFIX.length), rec);
    }
  },

  onInherit(ctx: ActionContext, from: NodeId, keys: readonly string[]): void {
    // A removed node's unfinished workflows go on here, under its sthread ids (see the module comment).
    for (const key of keys) {
      if (!key.startsWith(WORKFLOW_PREFIX)) continue;
      const rec = fromJson<WorkflowRecord>(ctx.get(key));
      if (rec.ph === 'done') continue;
      const id = key.slice(WORKFLOW_PREFIX.length);
      const taken: WorkflowRecord = { ...rec, o: rec.o ?? from };
      save(ctx, id, taken);
      runStep(ctx, id, taken);
    }
  },
};

/** A typed client of the orchestrator over one session. */
export class WorkflowClient {
  private readonly session: Session;
  private readonly view: PlacementView;

  constructor(session: Session, opts: ClientOptions) {
    this.session = session;
    this.view = opts.placement ?? { version: 0, members: [...opts.nodes].sort() };
  }

  /**
   * After a rollback the session refuses every request (`SessionRolledBack`) until the client
   * acknowledges it here; then it goes on from what survived.
   */
  resume(): void {
    this.session.resume();
  }

  /** The node that orchestrates workflow `id` (any node can; this spreads them). */
  nodeOf(id: string): NodeId {
    return shardOf(`wf:${id}`, this.view.members);
  }

  /**
   * Starts workflow `id` and resolves when it has completed or failed (its compensations done),
   * speculatively: `commit()` resolves once that outcome is durable, steps and compensations with it.
   */
  run(id: string, steps: readonly WorkflowStep[], node: NodeId = this.nodeOf(id)): Promise<Speculative<WorkflowOutcome>> {
    return request(this.session, node, { svc: 'wf', op: 'start', id, steps: toJson(steps) }, undefined, this.view);
  }

  status(id: string, node: NodeId = this.nodeOf(id)): Promise<Speculative<WorkflowStatus>> {
    return request(this.session, node, { svc: 'wf', op: 'status', id }, undefined, this.view);
  }
}

// ------------------------------------------------------------------ travel reservation

/**
 * The travel providers a reservation workflow calls: flights, hotels, cars (with stock) and payment.
 * A reservation is refused (a business failure) when the item is sold out or the payment is declined.
 *
 * State: `tr/s/<item>` `{c: left, v}` (absent: the request's `capacity`, or unlimited when null);
 * `tr/b/<workflow>/<step>` `{item, st: 'booked'|'refused'|'cancelled', n: times reserved, cn: times
 * cancelled, why, v}`. `n` and `cn` are 1 in a correct run: the checker counts them.
 */
export type TravelKind = 'flight' | 'hotel' | 'car' | 'payment';

export interface Booking {
  item: string;
  st: 'booked' | 'refused' | 'cancelled';
  n: number;
  cn: number;
  why: string | null;
  v: Version;
}

export const TRAVEL_PREFIX = 'tr/';
export const stockKey = (item: string): string => `tr/s/${item}`;
export const bookingKey = (wf: string, step: number): string => `tr/b/${wf}/${step}`;

export const travelApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json {
    const what = 'travel';
    const p = asObject(req.payload, what);
    const wf = name(p, 'wf', what);
    const step = int(p, 'step', what);
    const bk = bookingKey(wf, step);
    const prev = fromJson<Booking | undefined>(ctx.get(bk));
    switch (p.op) {
      case 'reserve': {
        const item = name(p, 'item', what);
        const cap = p.capacity;
        const stock = (ctx.get(stockKey(item)) as { c: number } | undefined)?.c ?? (typeof cap === 'number' ? cap : null);
        const n = (prev?.n ?? 0) + 1;
        let why: string | null = null;
        if (p.decline === true) why = 'declined';
        else if (stock !== null && stock <= 0) why = 'sold out';
        if (why === null && stock !== null) ctx.put(stockKey(item), { c: stock - 1, v: ctx.version });
        const booking: Booking = { item, st: why === null ? 'booked' : 'refused', n, cn: prev?.cn ?? 0, why, v: ctx.version };
        ctx.put(bk, toJson(booking));
        return why === null ? { ok: true, left: stock === null ? null : stock - 1 } : { ok: false, reason: why };
      }
      case 'cancel': {
        if (prev === undefined) return { ok: true, cancelled: false };
        const wasBooked = prev.st === 'booked';
        if (wasBooked) {
          const s = ctx.get(stockKey(prev.item)) as { c: number } | undefined;
          if (s !== undefined) ctx.put(stockKey(prev.item), { c: s.c + 1, v: ctx.version });
        }
        ctx.put(bk, toJson({ ...prev, st: wasBooked ? 'cancelled' : prev.st, cn: prev.cn + 1, v: ctx.version }));
        return { ok: true, cancelled: wasBooked };
      }
      default:
        throw new DseError('BadRequest', `travel: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },
};

/** One leg of a trip. `capacity`: the item's stock when first seen (null: unlimited). */
export interface TripLeg {
  kind: TravelKind;
  item: string;
  capacity: number | null;
  /** A payment the bank declines (a business failure on purpose). */
  decline?: boolean;
}

/** The node that holds `item` (its stock and its bookings): the unit `travel:<item>` of the placement. */
export function providerNode(item: string, nodes: readonly NodeId[]): NodeId {
  return shardOf(`travel:${item}`, nodes);
}

/** The steps of a travel reservation: reserve each leg (cancel it as compensation). */
export function travelReservation(workflowId: string, legs: readonly TripLeg[], nodes: readonly NodeId[]): WorkflowStep[] {
  return legs.map((leg, step) => ({
    name: `${leg.kind} ${leg.item}`,
    node: providerNode(leg.item, nodes),
    do: { svc: 'travel', op: 'reserve', wf: workflowId, step, item: leg.item, capacity: leg.capacity, decline: leg.decline === true },
    undo: { svc: 'travel', op: 'cancel', wf: workflowId, step, item: leg.item },
  }));
}
