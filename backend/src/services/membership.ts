import type { CallerId, Json, NodeId } from '@dse/shared';
import { DseError, fromJson, isDseError, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest, Pending, Sthread } from '../core/app';
import { forwardContext, PENDING } from '../core/app';
import type { RemovedReply } from '../core/caller-table';
import { readRemovedReply } from '../core/caller-table';
import type { DedupWindow } from '../core/dedup';
import type { SentMessage } from '../core/removed';
import { MEMBERSHIP_PREFIX, ownerOf, unitBusy, unitOfRequest, unitOfStateKey } from './placement';

/**
 * Membership as state of the runtime, and migration through it.
 *
 * `withMembership(app, {founders})` wraps an app (the services, the playground app) so that each node
 * answers only for the units it owns (see `placement.ts`) and hands units over, as ordinary messages,
 * when the members change. Every piece of it is app state and app messages: speculative, persisted in
 * versions, committed with the cut, rolled back with whatever depended on it after a failure.
 *
 * *The view.* `pl/view` holds the node's placement: version `v`, the members `m`, the members before
 * `prev`, and `wait`: the old members whose hand-off for this version has not arrived yet. A node that
 * never had a view uses version 0 over the founders (the cluster's first members).
 *
 * *A change* is the request `{pl: 'view', v, members, prev, inherit?}`, sent by the control plane to every
 * node of the old and the new members (the server, one change at a time; the simulator). Applying
 * version v on node A, in one action: every unit A holds whose owner under the new members is another
 * node B is taken out of A's state and sent to B in one `{pl: 'handoff', v, state}` message per member
 * (empty ones too: it says "nothing more from A for v"); a running workflow is *pinned* instead
 * (it stays, and moves in a later `late` hand-off once it is done). A then waits for the hand-offs of
 * the other old members. A request for a unit A gains waits (`PENDING`, kept in state as `pl/held/...`)
 * until the hand-off of its old owner has arrived; then it is answered. A request for a unit A does not
 * own is answered with a typed, retryable `WrongOwner` naming the owner: nothing is ever answered from
 * a node that does not own the unit. `inherit: {from, state}` carries the committed state of a member
 * that is down and removed (read from storage by the control plane): each node takes from it the units
 * it owns under the new members, and does not wait for that member's hand-off.
 *
 * *Why nothing is lost or doubled.* A hand-off is sent by the action that deletes the unit at the old
 * owner, and the runtime delivers an app message exactly once, if and only if that version commits;
 * the action that installs it at the new owner depends on it. So after any failure either both the
 * deletion and the install survive, or neither (the unit is back at the old owner, whose view went
 * back too, and the control plane sends the change again). A request routed by an old view is answered
 * `WrongOwner`, never served twice.
 */

export interface MembershipOptions {
  /** The cluster's first members: the placement of version 0, before any change. */
  founders: readonly NodeId[];
}

interface View {
  v: number;
  m: NodeId[];
  prev: NodeId[] | null;
  wait: NodeId[];
}

interface Handoff {
  pl: 'handoff';
  v: number;
  state: Record<string, Json>;
  /** Units pinned at the sender (running workflows): they come later, in a `late` hand-off. */
  pinned: string[];
  /** The nodes removed for good that the sender knows of (`GONE`): a node that joins learns them here. */
  gone?: NodeId[];
}

interface Late {
  pl: 'late';
  unit: string;
  state: Record<string, Json>;
  /**
   * The placement version that moved the unit away from the sender (its pin's). A node that has not
   * applied that version yet keeps the hand-off (`pl/early/`) until it has: its older view would name
   * an older owner, and send the unit there (a node perhaps gone by then).
   */
  v?: number;
}

interface Held {
  c: CallerId;
  q: number;
  p: Json;
}

/** The membership's status, as `{pl: 'status'}` answers it. */
export interface MembershipStatus {
  node: NodeId;
  version: number;
  members: NodeId[];
  /** The members before this version (null before any change). */
  prev: NodeId[] | null;
  /** Old members whose hand-off has not arrived. */
  waitingFor: NodeId[];
  /** The nodes removed for good that this node knows of (it took over what they left, or heard of it). */
  gone: NodeId[];
  /** Units held here until a running workflow is done, and where they go then. */
  pinned: { unit: string; to: NodeId }[];
  /** Units that stay at their old owner until it is done with them. */
  awaiting: { unit: string; from: NodeId }[];
  /** Requests waiting for a hand-off. */
  held: number;
  /** Units held, by service (`kv`, `wal`, `broker`, `wf`, `travel`, `app`). */
  units: Record<string, number>;
}

/** The payload of a membership change, as the control plane sends it to each node. */
export interface ViewChange {
  pl: 'view';
  v: number;
  members: NodeId[];
  /** The members before (what a node that was not one, and so never heard of them, waits for). */
  prev?: NodeId[];
  /**
   * A member removed while down (or a drained node, once stopped): its committed app state, the replies
   * its committed state holds for sthreads (`sthreadReplies`), so that an sthread still waiting on it is
   * answered (`targetRemoved`), and the messages it sent in committed versions that were not acknowledged
   * within the cut (`unacknowledged`): a hand-off among them that a member has not applied (its apply
   * rolled back after the sender died) is applied from here, since nobody will send it again.
   */
  inherit?: { from: NodeId; state: Record<string, Json>; replies?: RemovedReply[]; sent?: SentMessage[]; applied?: Record<NodeId, DedupWindow> };
}

const VIEW = `${MEMBERSHIP_PREFIX}view`;
/**
 * The nodes removed for good (a list): calls of this node's sthreads to them are answered here
 * (`targetRemoved`). A node that joins later learns them from the hand-offs, or a step that names a
 * removed node would wait forever for a process that is gone.
 */
const GONE = `${MEMBERSHIP_PREFIX}gone`;
const HELD = `${MEMBERSHIP_PREFIX}held/`;
const PIN = `${MEMBERSHIP_PREFIX}pin/`;
const AWAIT = `${MEMBERSHIP_PREFIX}await/`;
const EARLY = `${MEMBERSHIP_PREFIX}early/`;

const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where a unit stands on a node: served there, held until a hand-off arrives, or another node's. */
export type Standing = { serve: true } | { hold: true } | { owner: NodeId };

/**
 * Where `unit` stands on `node`, whose app state `get` reads (a live node's, or a committed checkpoint's:
 * the server asks this of the cut, so that a committed-only read is answered where the committed state
 * holds the unit, and never from a node still waiting for its hand-off).
 */
export function standingIn(get: (key: string) => Json | undefined, node: NodeId, unit: string, founders: readonly NodeId[]): Standing {
  const view = fromJson<View | undefined>(get(VIEW)) ?? { v: 0, m: [...founders], prev: null, wait: [] };
  if (get(PIN + unit) !== undefined) return { serve: true };
  const owner = ownerOf(unit, view.m);
  if (owner !== node) return { owner };
  const from = get(AWAIT + unit) as { from: NodeId } | undefined;
  if (from !== undefined) return { owner: from.from };
  if (view.prev !== null && view.wait.length > 0) {
    const before = ownerOf(unit, view.prev);
    if (before !== node && view.wait.includes(before)) return { hold: true };
  }
  return { serve: true };
}

function wrongOwner(unit: string, owner: NodeId, view: View): Json {
  return { error: { code: 'WrongOwner', message: `${unit} is owned by ${owner} (placement version ${view.v})`, owner, version: view.v, members: view.m } };
}

export function withMembership(inner: App, opts: MembershipOptions): App {
  const founders = [...new Set(opts.founders)].sort();

  const viewOf = (ctx: ActionContext): View => fromJson<View | undefined>(ctx.get(VIEW)) ?? { v: 0, m: founders, prev: null, wait: [] };

  /** The units this node holds in state, with their keys. */
  function unitsHere(ctx: ActionContext): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const key of ctx.keys()) {
      const unit = unitOfStateKey(key, ctx.get(key));
      if (unit === null) continue;
      const list = out.get(unit);
      if (list === undefined) out.set(unit, [key]);
      else list.push(key);
    }
    return out;
  }

  /** Where a request for `unit` stands on this node: served here, held for a hand-off, or another node's. */
  const standing = (ctx: ActionContext, unit: string): Standing => standingIn((k) => ctx.get(k), ctx.nodeId, unit, founders);

  /** The app's context, with sthread merges wrapped so that a finished workflow's pin is released in the same action. */
  function wrapCtx(ctx: ActionContext): ActionContext {
    const wrapped = forwardContext(ctx);
    wrapped.detach = (key, body, opts) =>
      ctx.detach(
        key,
        (st: Sthread) =>
          body({
            id: st.id,
            node: st.node,
            get handle() {
              return st.handle;
            },
            call: (target, payload) => st.call(target, payload),
            merge: <T>(fn: (m: ActionContext) => T) =>
              st.merge((m) => {
                const r = fn(wrapCtx(m));
                releasePins(m);
                return r;
              }),
          }),
        opts,
      );
    return wrapped;
  }

  /** Sends each pinned unit that is no longer busy to where it belongs now. */
  function releasePins(ctx: ActionContext): void {
    for (const pinKey of ctx.keys(PIN)) {
      const unit = pinKey.slice(PIN.length);
      if (unitBusy(unit, (k) => ctx.get(k))) continue;
      const view = viewOf(ctx);
      const to = ownerOf(unit, view.m);
      ctx.delete(pinKey);
      if (to === ctx.nodeId) continue;
      const state: Record<string, Json> = {};
      for (const key of unitsHere(ctx).get(unit) ?? []) {
        state[key] = ctx.get(key)!;
        ctx.delete(key);
      }
      const late: Late = { pl: 'late', unit, state, v: view.v };
      ctx.send(to, toJson(late));
    }
  }

  /** Answers the held requests that can be served now (or are another node's now). */
  function releaseHeld(ctx: ActionContext): void {
    for (const key of ctx.keys(HELD)) {
      const h = fromJson<Held>(ctx.get(key));
      const unit = unitOfRequest(h.p);
      const st = unit === null ? ({ serve: true } as const) : standing(ctx, unit);
      if ('hold' in st) continue;
      ctx.delete(key);
      if ('owner' in st) {
        ctx.completeRequest(h.c, h.q, wrongOwner(unit!, st.owner, viewOf(ctx)));
        continue;
      }
      let result: Json | Pending;
      try {
        result = inner.onRequest(wrapCtx(ctx), { caller: h.c, seq: h.q, payload: h.p });
      } catch (e) {
        // The app refused it (a typed error, before it changed anything): that is the answer.
        if (!isDseError(e)) throw e;
        result = { error: { code: e.code, message: e.message } };
      }
      if (result !== PENDING) ctx.completeRequest(h.c, h.q, result);
    }
  }

  /**
   * Installs moved state. A record's `v` (the version of its last write, which committed-only reads
   * compare with this node's cut) named a version of the old owner: it is the installing version here.
   */
  function install(ctx: ActionContext, state: Record<string, Json>): void {
    for (const [k, v] of Object.entries(state)) {
      const unit = unitOfStateKey(k, v);
      if (unit !== null) ctx.delete(AWAIT + unit);
      ctx.put(k, isObject(v) && typeof v.v === 'number' ? { ...v, v: ctx.version } : v);
    }
  }

  function applyLate(ctx: ActionContext, msg: Late): void {
    ctx.delete(AWAIT + msg.unit);
    install(ctx, msg.state);
    // Owned elsewhere by now (a later change): passed on at once.
    const to = ownerOf(msg.unit, viewOf(ctx).m);
    if (to !== ctx.nodeId) {
      for (const k of Object.keys(msg.state)) ctx.delete(k);
      ctx.send(to, toJson(msg));
    }
  }

  /**
   * The hand-offs a removed node sent here in committed versions that this node has not applied (its
   * apply rolled back after the sender died: the sender will never send them again): applied now, from
   * what its committed state says it sent. Late copies still in the network are not applied afterwards
   * (the runtime drops messages from a node removed for good).
   */
  function takeUnacknowledged(ctx: ActionContext, from: NodeId, sent: readonly SentMessage[]): void {
    for (const m of sent) {
      if (m.to !== ctx.nodeId || !isObject(m.payload)) continue;
      if (m.payload.pl === 'handoff') {
        const msg = fromJson<Handoff>(m.payload);
        const view = viewOf(ctx);
        if (msg.v === view.v && view.wait.includes(from)) applyHandoff(ctx, from, msg);
      } else if (m.payload.pl === 'late') {
        const msg = fromJson<Late>(m.payload);
        const awaited = ctx.get(AWAIT + msg.unit) as { from?: NodeId } | undefined;
        if (awaited?.from === from) applyLate(ctx, msg);
      }
    }
  }

  /** Records `nodes` as removed for good; those it did not know yet have no replies for this node's sthreads. */
  function learnGone(ctx: ActionContext, nodes: readonly NodeId[], replies?: { from: NodeId; replies: RemovedReply[] }): void {
    const known = (ctx.get(GONE) as NodeId[] | undefined) ?? [];
    const fresh = nodes.filter((n) => !known.includes(n));
    if (replies !== undefined) ctx.targetRemoved(replies.from, replies.replies);
    if (fresh.length === 0) return;
    for (const n of fresh) if (n !== replies?.from) ctx.targetRemoved(n, []);
    ctx.put(GONE, [...known, ...fresh].sort());
  }

  function applyHandoff(ctx: ActionContext, from: NodeId, msg: Handoff): void {
    if (msg.gone !== undefined) learnGone(ctx, msg.gone);
    install(ctx, msg.state);
    // A pinned unit comes later, in a `late` hand-off; the network may have brought that one first.
    const here = msg.pinned.length > 0 ? unitsHere(ctx) : new Map<string, string[]>();
    for (const unit of msg.pinned) if (!here.has(unit)) ctx.put(AWAIT + unit, { from });
    const view = viewOf(ctx);
    if (view.wait.includes(from)) ctx.put(VIEW, toJson({ ...view, wait: view.wait.filter((n) => n !== from) }));
  }

  function changeView(ctx: ActionContext, change: ViewChange): Json {
    const view = viewOf(ctx);
    if (change.v <= view.v) return { ok: true, version: view.v, already: true };
    const self = ctx.nodeId;
    // A node that is no member and holds nothing (a node just added) may catch up from any version.
    const joining = !view.m.includes(self) && change.prev !== undefined && unitsHere(ctx).size === 0;
    if (change.v !== view.v + 1 && !joining)
      throw new DseError('Conflict', `membership: this node is at placement version ${view.v}; version ${change.v} cannot follow it`);
    if (change.inherit !== undefined) takeUnacknowledged(ctx, change.inherit.from, change.inherit.sent ?? []);
    // What this node sent the removed member that it never applied within its final cut (a hand-off, a late
    // one: a unit on its way there when it died): taken back, and placed below once the view is the new one.
    const undelivered: Record<string, Json> = {};
    if (change.inherit !== undefined) {
      for (const p of ctx.takeUndelivered(change.inherit.from, change.inherit.applied?.[ctx.nodeId])) {
        if (isObject(p) && (p.pl === 'handoff' || p.pl === 'late') && isObject(p.state)) Object.assign(undelivered, p.state);
      }
    }
    // A hand-off still owed by the member this change inherits from is not waited for: what it did not hand
    // over within its final cut (a hand-off rolled back with it) is in the committed state it leaves.
    const owed = viewOf(ctx).wait.filter((n) => n !== change.inherit?.from);
    if (owed.length > 0) throw new DseError('Conflict', `membership: version ${view.v} is still being handed over (waiting for ${owed.join(', ')})`);
    const members = [...new Set(change.members)].sort();
    const old = joining ? [...new Set(change.prev)].sort() : view.m;
    const wasMember = old.includes(self);
    const isMember = members.includes(self);
    // Out: every unit held here whose owner changes (a running workflow stays, pinned, until it is done).
    const out = new Map<NodeId, Record<string, Json>>();
    const pinnedFor = new Map<NodeId, string[]>();
    for (const [unit, keys] of unitsHere(ctx)) {
      const to = ownerOf(unit, members);
      if (to === self) {
        ctx.delete(PIN + unit);
        continue;
      }
      if (unitBusy(unit, (k) => ctx.get(k))) {
        ctx.put(PIN + unit, { to, v: change.v });
        pinnedFor.set(to, [...(pinnedFor.get(to) ?? []), unit]);
        continue;
      }
      ctx.delete(PIN + unit);
      const state = out.get(to) ?? {};
      for (const key of keys) {
        state[key] = ctx.get(key)!;
        ctx.delete(key);
      }
      out.set(to, state);
    }
    // Units that were to come here later (pinned at their old owner) but are not this node's any more,
    // or were to come from the member removed now: nothing to wait for.
    for (const k of ctx.keys(AWAIT)) {
      const unit = k.slice(AWAIT.length);
      const from = (ctx.get(k) as { from: NodeId }).from;
      if (ownerOf(unit, members) !== self || from === change.inherit?.from) ctx.delete(k);
    }
    // In: a removed member's committed state, for the units this node owns now.
    if (change.inherit !== undefined && isMember) {
      const mine: Record<string, Json> = {};
      for (const [key, value] of Object.entries(change.inherit.state)) {
        const unit = unitOfStateKey(key, value);
        if (unit !== null && ownerOf(unit, members) === self && ctx.get(key) === undefined) mine[key] = value;
      }
      install(ctx, mine);
      // Work the removed member had under way in them (a running workflow) goes on here.
      inner.onInherit?.(wrapCtx(ctx), change.inherit.from, Object.keys(mine));
    }
    // Calls of this node's sthreads to the removed member are answered here from now on (see `targetRemoved`).
    if (change.inherit !== undefined) learnGone(ctx, [change.inherit.from], { from: change.inherit.from, replies: change.inherit.replies ?? [] });
    // Wait for the hand-off of every other old member (not the one inherited: it is down).
    const wait = isMember ? old.filter((n) => n !== self && n !== change.inherit?.from) : [];
    ctx.put(VIEW, toJson({ v: change.v, m: members, prev: old, wait }));
    // Units taken back from the removed member: installed here if this node owns them now, else sent on to their owner.
    const back = new Map<string, Record<string, Json>>();
    for (const [key, value] of Object.entries(undelivered)) {
      const unit = unitOfStateKey(key, value);
      if (unit !== null) back.set(unit, { ...back.get(unit), [key]: value });
    }
    for (const [unit, state] of back) {
      const to = ownerOf(unit, members);
      if (to === self) install(ctx, state);
      else ctx.send(to, toJson({ pl: 'late', unit, state, v: change.v } satisfies Late));
    }
    if (wasMember) {
      for (const to of members) {
        if (to === self) continue;
        const h: Handoff = { pl: 'handoff', v: change.v, state: out.get(to) ?? {}, pinned: pinnedFor.get(to) ?? [] };
        const gone = ctx.get(GONE) as NodeId[] | undefined;
        if (gone !== undefined && gone.length > 0) h.gone = gone;
        ctx.send(to, toJson(h));
      }
    }
    // Hand-offs that came before this node heard of the change.
    for (const key of ctx.keys(EARLY)) {
      const e = fromJson<{ from: NodeId; msg?: Handoff; late?: Late }>(ctx.get(key));
      if (e.late !== undefined) {
        if ((e.late.v ?? 0) > change.v) continue;
        ctx.delete(key);
        applyLate(ctx, e.late);
        continue;
      }
      if (e.msg === undefined || e.msg.v !== change.v) continue;
      ctx.delete(key);
      applyHandoff(ctx, e.from, e.msg);
    }
    releaseHeld(ctx);
    return { ok: true, version: change.v, sent: [...out.values()].reduce((a, s) => a + Object.keys(s).length, 0) };
  }

  function status(ctx: ActionContext): MembershipStatus {
    const view = viewOf(ctx);
    const units: Record<string, number> = {};
    for (const unit of unitsHere(ctx).keys()) {
      const svc = unit.slice(0, unit.indexOf(':'));
      units[svc] = (units[svc] ?? 0) + 1;
    }
    return {
      node: ctx.nodeId,
      version: view.v,
      members: view.m,
      prev: view.prev,
      waitingFor: view.wait,
      gone: (ctx.get(GONE) as NodeId[] | undefined) ?? [],
      pinned: ctx.keys(PIN).map((k) => ({ unit: k.slice(PIN.length), to: (ctx.get(k) as { to: NodeId }).to })),
      awaiting: ctx.keys(AWAIT).map((k) => ({ unit: k.slice(AWAIT.length), from: (ctx.get(k) as { from: NodeId }).from })),
      held: ctx.keys(HELD).length,
      units,
    };
  }

  return {
    onRequest(ctx: ActionContext, req: AppRequest): Json | Pending {
      const p = req.payload;
      if (isObject(p) && 'pl' in p) {
        if (p.pl === 'status') return toJson(status(ctx));
        if (p.pl === 'view') return changeView(ctx, parseChange(p));
        throw new DseError('BadRequest', `membership: unknown request ${JSON.stringify(p.pl)}`);
      }
      const unit = unitOfRequest(p);
      if (unit !== null) {
        const st = standing(ctx, unit);
        if ('owner' in st) return wrongOwner(unit, st.owner, viewOf(ctx));
        if ('hold' in st) {
          ctx.put(`${HELD}${req.caller}/${req.seq}`, toJson({ c: req.caller, q: req.seq, p }));
          return PENDING;
        }
      }
      const r = inner.onRequest(wrapCtx(ctx), req);
      releasePins(ctx);
      return r;
    },

    onMessage(ctx: ActionContext, from: NodeId, payload: Json): void {
      if (isObject(payload) && payload.pl === 'handoff') {
        const msg = fromJson<Handoff>(payload);
        const view = viewOf(ctx);
        if (msg.v > view.v) {
          // Before this node applied the change: kept until it does.
          ctx.put(`${EARLY}${from}/${msg.v}`, toJson({ from, msg }));
          return;
        }
        applyHandoff(ctx, from, msg);
        releaseHeld(ctx);
        return;
      }
      if (isObject(payload) && payload.pl === 'late') {
        const late = fromJson<Late>(payload);
        if (late.v !== undefined && late.v > viewOf(ctx).v) {
          ctx.put(`${EARLY}${from}/late/${late.unit}`, toJson({ from, late }));
          return;
        }
        applyLate(ctx, late);
        releaseHeld(ctx);
        return;
      }
      inner.onMessage?.(wrapCtx(ctx), from, payload);
      releasePins(ctx);
    },

    onRestore(ctx: ActionContext): void {
      inner.onRestore?.(wrapCtx(ctx));
    },
    onInherit(ctx: ActionContext, from: NodeId, keys: readonly string[]): void {
      inner.onInherit?.(wrapCtx(ctx), from, keys);
    },
    describeMessage(payload: Json): string | undefined {
      if (isObject(payload) && payload.pl === 'handoff' && isObject(payload.state)) {
        const units = new Set(Object.entries(payload.state).map(([k, v]) => unitOfStateKey(k, v) ?? k)).size;
        const pinned = Array.isArray(payload.pinned) ? payload.pinned.length : 0;
        return `hand-off v${typeof payload.v === 'number' ? payload.v : '?'}: ${units} unit${units === 1 ? '' : 's'}${pinned > 0 ? `, ${pinned} to follow` : ''}`;
      }
      if (isObject(payload) && payload.pl === 'late' && typeof payload.unit === 'string') return `hand-off of ${payload.unit} (its workflow done)`;
      return inner.describeMessage?.(payload);
    },
  };
}

function parseChange(p: { [k: string]: Json }): ViewChange {
  const v = p.v;
  const members = p.members;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new DseError('BadRequest', 'membership: v must be an integer >= 1');
  if (!Array.isArray(members) || members.length === 0 || members.some((m) => typeof m !== 'string' || m === '')) {
    throw new DseError('BadRequest', 'membership: members must be a non-empty list of node ids');
  }
  const change: ViewChange = { pl: 'view', v, members: members as string[] };
  if (p.prev !== undefined && p.prev !== null) {
    if (!Array.isArray(p.prev) || p.prev.some((m) => typeof m !== 'string' || m === ''))
      throw new DseError('BadRequest', 'membership: prev must be a list of node ids');
    change.prev = p.prev as string[];
  }
  if (p.inherit !== undefined && p.inherit !== null) {
    const i = p.inherit;
    if (!isObject(i) || typeof i.from !== 'string' || !isObject(i.state)) throw new DseError('BadRequest', 'membership: inherit is {from, state, replies?}');
    if ((members as string[]).includes(i.from)) throw new DseError('BadRequest', `membership: ${i.from} is inherited from, so it cannot stay a member`);
    const replies: RemovedReply[] = [];
    if (i.replies !== undefined && i.replies !== null) {
      if (!Array.isArray(i.replies)) throw new DseError('BadRequest', 'membership: inherit.replies must be a list');
      for (const r of i.replies) {
        const read = readRemovedReply(r);
        if (read === null) throw new DseError('BadRequest', 'membership: inherit.replies holds [caller, seq, {status: done|inProgress, ...}]');
        replies.push(read);
      }
    }
    const sent: SentMessage[] = [];
    if (i.sent !== undefined && i.sent !== null) {
      if (!Array.isArray(i.sent) || i.sent.some((m) => !isObject(m) || typeof m.to !== 'string' || m.payload === undefined))
        throw new DseError('BadRequest', 'membership: inherit.sent must be a list of {to, payload}');
      for (const m of i.sent as { to: string; payload: Json }[]) sent.push({ to: m.to, payload: m.payload });
    }
    const applied: Record<NodeId, DedupWindow> = {};
    if (i.applied !== undefined && i.applied !== null) {
      if (!isObject(i.applied)) throw new DseError('BadRequest', 'membership: inherit.applied must map senders to {appliedUpTo, appliedAbove}');
      for (const [src, w] of Object.entries(i.applied)) {
        const ok =
          isObject(w) &&
          typeof w.appliedUpTo === 'number' &&
          Number.isSafeInteger(w.appliedUpTo) &&
          Array.isArray(w.appliedAbove) &&
          w.appliedAbove.every((n) => typeof n === 'number' && Number.isSafeInteger(n));
        if (!ok) throw new DseError('BadRequest', `membership: inherit.applied.${src} must be {appliedUpTo, appliedAbove}`);
        applied[src] = { appliedUpTo: w.appliedUpTo as number, appliedAbove: w.appliedAbove as number[] };
      }
    }
    change.inherit = { from: i.from, state: i.state, replies, sent, applied };
  }
  return change;
}
