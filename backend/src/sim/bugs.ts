import type { Json, NodeId } from '@dse/shared';
import { unitOfStateKey } from '@dse/shared';
import type { ActionContext, App } from '../core/app';
import { forwardContext } from '../core/app';

/**
 * Bugs planted in a service, to show that its scenario's checker catches them. They go in through the
 * action context, the port between the runtime and the app, and are the mistakes a service author
 * makes most easily:
 *
 * - `wal-volatile-length`, `kv-volatile-values`, `broker-volatile-offsets`: some of the service's
 *   state is also cached outside the node's state (as if in a field of the app object) and read from
 *   there. The cache survives rollbacks (and crashes) that the state does not.
 * - `workflow-unstable-step-keys`: sthreads are detached under a key that changes with the
 *   world-line, so a step run again after a recovery is a new caller to its target, whose reply table
 *   cannot recognise it: the step runs twice.
 */
export type ServiceBug =
  | 'wal-volatile-length'
  | 'kv-volatile-values'
  | 'broker-volatile-offsets'
  | 'workflow-unstable-step-keys'
  | 'wal-committed-read-ignores-bound'
  | 'kv-cas-ignores-expected'
  | 'broker-committed-poll-ignores-bound'
  | 'workflow-compensation-lost';
export const SERVICE_BUGS: readonly ServiceBug[] = [
  'wal-volatile-length',
  'kv-volatile-values',
  'broker-volatile-offsets',
  'workflow-unstable-step-keys',
  'wal-committed-read-ignores-bound',
  'kv-cas-ignores-expected',
  'broker-committed-poll-ignores-bound',
  'workflow-compensation-lost',
];

/**
 * Bugs in a service's logic, planted by rewriting the request the service gets:
 * - `wal-committed-read-ignores-bound`: a committed-only read returns speculative entries too;
 * - `kv-cas-ignores-expected`: compare-and-set always finds the value it expects;
 * - `broker-committed-poll-ignores-bound`: a committed-only consumer gets speculative events too;
 * - `workflow-compensation-lost`: a travel provider does not understand the cancellation it gets.
 */
const REWRITE: Partial<Record<ServiceBug, (ctx: ActionContext, p: Record<string, Json>) => Record<string, Json>>> = {
  'wal-committed-read-ignores-bound': (_ctx, p) => {
    if (p.svc !== 'wal' || p.upTo === undefined) return p;
    const { upTo: _dropped, ...rest } = p;
    return rest;
  },
  'broker-committed-poll-ignores-bound': (_ctx, p) => {
    if (p.svc !== 'broker' || p.upTo === undefined) return p;
    const { upTo: _dropped, ...rest } = p;
    return rest;
  },
  'workflow-compensation-lost': (_ctx, p) => (p.svc === 'travel' && p.op === 'cancel' ? { ...p, op: 'cancel-v2' } : p),
  'kv-cas-ignores-expected': (ctx, p) => {
    if (p.svc !== 'kv' || p.op !== 'cas' || typeof p.key !== 'string') return p;
    const current = ctx.get(`kv/${p.key}`) as { x: Json } | undefined;
    return { ...p, expected: current?.x ?? null };
  },
};

const VOLATILE: Partial<Record<ServiceBug, RegExp>> = {
  'wal-volatile-length': /^wal\/[^/]*\/n$/,
  'kv-volatile-values': /^kv\//,
  'broker-volatile-offsets': /^br\/[^/]*\/g\//,
};

/** The app with `bug` planted (a fresh one per call: volatile state is per run), or the app itself. */
export function plantServiceBug(app: App, bug: string | undefined): App {
  if (bug === undefined || !(SERVICE_BUGS as readonly string[]).includes(bug)) return app;
  const rewrite = REWRITE[bug as ServiceBug];
  if (rewrite !== undefined) {
    return {
      onRequest: (ctx, req) => {
        const p = req.payload;
        return app.onRequest(ctx, typeof p === 'object' && p !== null && !Array.isArray(p) ? { ...req, payload: rewrite(ctx, p) } : req);
      },
      onMessage: app.onMessage?.bind(app),
      onRestore: app.onRestore?.bind(app),
      onInherit: app.onInherit?.bind(app),
    };
  }
  const volatile = VOLATILE[bug as ServiceBug];
  const change =
    volatile !== undefined
      ? volatileKeys(volatile)
      : (ctx: ActionContext, wrapped: ActionContext): void => {
          const detach = wrapped.detach.bind(wrapped);
          wrapped.detach = (key, body, opts) => detach(`${key}@w${ctx.worldLine}`, body, opts);
        };
  const wrap = (ctx: ActionContext): ActionContext => {
    const wrapped = forwardContext(ctx);
    // Sthreads merge with a context of their own: it gets the same bug.
    wrapped.detach = (key, body, opts) =>
      ctx.detach(
        key,
        (st) =>
          body({
            id: st.id,
            node: st.node,
            get handle() {
              return st.handle;
            },
            call: (target, payload) => st.call(target, payload),
            merge: (fn) => st.merge((m) => fn(wrap(m))),
          }),
        opts,
      );
    change(ctx, wrapped);
    return wrapped;
  };
  return {
    onRequest: (ctx, req) => app.onRequest(wrap(ctx), req),
    onMessage: app.onMessage === undefined ? undefined : (ctx, from, payload) => app.onMessage!(wrap(ctx), from, payload),
    onRestore: app.onRestore === undefined ? undefined : (ctx) => app.onRestore!(wrap(ctx)),
    onInherit: app.onInherit === undefined ? undefined : (ctx, from, keys) => app.onInherit!(wrap(ctx), from, keys),
  };
}

/** Keys matching `pattern` are cached in a map per node that no rollback and no crash touches. */
function volatileKeys(pattern: RegExp): (ctx: ActionContext, wrapped: ActionContext) => void {
  const stores = new Map<NodeId, Map<string, Json>>();
  return (ctx, wrapped) => {
    let store = stores.get(ctx.nodeId);
    if (store === undefined) stores.set(ctx.nodeId, (store = new Map<string, Json>()));
    const mem = store;
    // Written through to the state too, but read from memory first: a cache that nobody rolls back.
    wrapped.get = (key) => (pattern.test(key) && mem.has(key) ? mem.get(key) : ctx.get(key));
    wrapped.put = (key, value) => {
      if (pattern.test(key)) mem.set(key, value);
      ctx.put(key, value);
    };
    wrapped.delete = (key) => {
      mem.delete(key);
      ctx.delete(key);
    };
  };
}

// ------------------------------------------------------------------ membership

/**
 * Bugs planted in the migration of units (`withMembership`), through the same port (the action context
 * of the membership's own actions), to show that the scenarios' checkers catch a migration that loses
 * or doubles state:
 *
 * - `membership-handoff-keeps-copy`: a node applying a view change sends the units it loses to their new
 *   owners but does not delete them: the old owner keeps a stale copy (which goes out again, over the
 *   newer one, at a later change);
 * - `membership-handoff-drops-unit`: a hand-off message leaves out the first unit it carries: that unit
 *   is deleted at the old owner and never installed at the new one;
 * - `membership-inherit-drops-unacknowledged`: a change that inherits from a removed node ignores the
 *   hand-offs that node sent in committed versions and nobody applied (`inherit.sent`): a hand-off whose
 *   apply rolled back after its sender died is lost;
 * - `membership-joiner-not-told-gone`: hand-offs do not carry the nodes removed for good (`gone`): a node
 *   that joins later calls a removed node (a workflow step naming it) and waits forever.
 * - `membership-leave-before-commit`: the control plane retires a drained node that left (`DseNode.leave`)
 *   without waiting for its last version to commit (it asks the coordinator with version 0): what the node
 *   did last (its hand-offs) is lost with it, and no world-line rolls back what depends on it. Planted in
 *   the simulator's control plane (`leaveAndRemove`), at its call of `Coordinator.retireLeft`.
 * - `membership-interrupted-not-completed`: the control plane, started again after it stopped half-way
 *   through a change, does not send that change to the nodes behind it (`completeInterrupted`): they stay
 *   a version behind, and the members ahead wait for their hand-offs for good.
 */
export type MembershipBug =
  | 'membership-handoff-keeps-copy'
  | 'membership-handoff-drops-unit'
  | 'membership-inherit-drops-unacknowledged'
  | 'membership-joiner-not-told-gone'
  | 'membership-leave-before-commit'
  | 'membership-interrupted-not-completed';
export const MEMBERSHIP_BUGS: readonly MembershipBug[] = [
  'membership-handoff-keeps-copy',
  'membership-handoff-drops-unit',
  'membership-inherit-drops-unacknowledged',
  'membership-joiner-not-told-gone',
  'membership-leave-before-commit',
  'membership-interrupted-not-completed',
];

const isObj = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `app` (a `withMembership` app) with the membership bug `bug` planted, or the app itself. */
export function plantMembershipBug(app: App, bug: string | undefined): App {
  if (bug === undefined || !(MEMBERSHIP_BUGS as readonly string[]).includes(bug)) return app;
  const isView = (p: Json): boolean => isObj(p) && p.pl === 'view';
  const wrap = (ctx: ActionContext): ActionContext => {
    const w = forwardContext(ctx);
    if (bug === 'membership-handoff-keeps-copy') {
      // Units are never deleted by the change: the hand-off carries a copy.
      w.delete = (key) => {
        if (unitOfStateKey(key, ctx.get(key)) !== null) return;
        ctx.delete(key);
      };
    } else if (bug === 'membership-joiner-not-told-gone') {
      w.send = (to, payload) => {
        if (isObj(payload) && payload.pl === 'handoff' && 'gone' in payload) {
          const { gone: _gone, ...rest } = payload;
          ctx.send(to, rest);
          return;
        }
        ctx.send(to, payload);
      };
    } else if (bug === 'membership-handoff-drops-unit') {
      w.send = (to, payload) => {
        if (isObj(payload) && payload.pl === 'handoff' && isObj(payload.state)) {
          const state = payload.state;
          const keys = Object.keys(state);
          const first = keys.length > 0 ? unitOfStateKey(keys[0]!, state[keys[0]!]) : null;
          if (first !== null) {
            const kept: Record<string, Json> = {};
            for (const k of keys) if (unitOfStateKey(k, state[k]) !== first) kept[k] = state[k]!;
            ctx.send(to, { ...payload, state: kept });
            return;
          }
        }
        ctx.send(to, payload);
      };
    }
    return w;
  };
  const planted = (p: Json): Json => {
    if (bug !== 'membership-inherit-drops-unacknowledged' || !isObj(p) || !isObj(p.inherit)) return p;
    return { ...p, inherit: { ...p.inherit, sent: [] } };
  };
  return {
    onRequest: (ctx, req) => (isView(req.payload) ? app.onRequest(wrap(ctx), { ...req, payload: planted(req.payload) }) : app.onRequest(ctx, req)),
    onMessage: app.onMessage?.bind(app),
    onRestore: app.onRestore?.bind(app),
    onInherit: app.onInherit?.bind(app),
  };
}
