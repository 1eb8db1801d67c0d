import type { CallerId, Deps, Json, NodeId, Version, WorldLine } from '@dse/shared';
import type { DedupWindow } from './dedup';
import type { RemovedReply } from './caller-table';

/** Returned by `App.onRequest` when the reply comes later, from another action (`ctx.completeRequest`). */
export const PENDING: unique symbol = Symbol('pending');
export type Pending = typeof PENDING;

export interface AppRequest {
  caller: CallerId;
  seq: number;
  payload: Json;
}

/**
 * What an action may do. An action is synchronous and atomic: it never awaits, and if it throws,
 * nothing it did remains (state changes are undone and its messages are not sent).
 */
export interface ActionContext {
  readonly nodeId: NodeId;
  readonly version: Version;
  readonly worldLine: WorldLine;
  readonly now: number;
  get(key: string): Json | undefined;
  put(key: string, value: Json): void;
  delete(key: string): void;
  /** App keys, optionally only those starting with `prefix`, in no particular order. */
  keys(prefix?: string): string[];
  /** Sends a message to another node; delivered exactly once to its `onMessage` if this version commits. */
  send(to: NodeId, payload: Json): void;
  /** Replies to a request that `onRequest` answered with `PENDING`. */
  completeRequest(caller: CallerId, seq: number, result: Json): void;
  /** Whether this node holds request `seq` of `caller` as answered `PENDING` and not yet completed. */
  isPending(caller: CallerId, seq: number): boolean;
  /**
   * Detaches an sthread once this action ends. `key` names it stably: an sthread that is run again
   * after a recovery with the same key has its already-applied calls answered from the targets' tables.
   * `opts.as`: the node that first detached it, when this node took its state over (a removed node's
   * running workflow): the sthread keeps that node's caller id, so the targets recognise its calls.
   */
  detach(key: string, body: (st: Sthread) => Promise<void>, opts?: DetachOptions): void;
  /**
   * `node` was removed for good while down; `replies` are the replies its committed state holds for
   * sthreads (`sthreadReplies`, read from its checkpoint at the cut). Kept in this node's state (so a
   * rollback undoes it and a restore brings it back). From then on a call of this node's sthreads to
   * `node`, pending or new, is answered here: with the stored reply if it holds the call's; with
   * `{error: {code: 'Orphaned'}}` if the call was under way there (a `PENDING` answer); otherwise with
   * `{error: {code: 'NodeRemoved'}}`: the call did not happen within the cut, and may go elsewhere.
   */
  targetRemoved(node: NodeId, replies: readonly RemovedReply[]): void;
  /**
   * The app messages this node sent to `node`, removed for good, that it never applied within its final
   * cut (`applied`: its committed dedup window for this node's messages, from its checkpoint; none: it
   * applied none), in the order sent: taken out of the outbox and returned, for the app to deal with (no
   * one will deliver them now). Those it did apply leave the outbox too: their effects are in its state.
   */
  takeUndelivered(node: NodeId, applied: DedupWindow | undefined): Json[];
}

export interface DetachOptions {
  as?: NodeId;
}

/** A context that forwards everything to `ctx`: wrappers replace the members they change. */
export function forwardContext(ctx: ActionContext): ActionContext {
  return {
    get nodeId() {
      return ctx.nodeId;
    },
    get version() {
      return ctx.version;
    },
    get worldLine() {
      return ctx.worldLine;
    },
    get now() {
      return ctx.now;
    },
    get: (key) => ctx.get(key),
    put: (key, value) => ctx.put(key, value),
    delete: (key) => ctx.delete(key),
    keys: (prefix) => ctx.keys(prefix),
    send: (to, payload) => ctx.send(to, payload),
    completeRequest: (caller, seq, result) => ctx.completeRequest(caller, seq, result),
    isPending: (caller, seq) => ctx.isPending(caller, seq),
    detach: (key, body, opts) => ctx.detach(key, body, opts),
    targetRemoved: (node, replies) => ctx.targetRemoved(node, replies),
    takeUndelivered: (node, applied) => ctx.takeUndelivered(node, applied),
  };
}

/** A handle on a detached logical thread. */
export interface SthreadHandle {
  readonly worldLine: WorldLine;
  readonly version: Version;
  readonly deps: Readonly<Deps>;
}

export interface Sthread {
  readonly id: CallerId;
  /** The node it runs on. */
  readonly node: NodeId;
  readonly handle: SthreadHandle;
  /** A request to another node, carrying the sthread's dependencies. Calls of one sthread are sequential. */
  call(target: NodeId, payload: Json): Promise<Json>;
  /**
   * Runs `fn` as a new action on the sthread's node, absorbing every dependency gathered since the
   * detach. Rejects with a definite `WorldLineChanged` when the world-line changed in between.
   */
  merge<T>(fn: (ctx: ActionContext) => T): Promise<T>;
}

/** The application code of a node; the same code runs in every mode. */
export interface App {
  onRequest(ctx: ActionContext, req: AppRequest): Json | Pending;
  onMessage?(ctx: ActionContext, from: NodeId, payload: Json): void;
  /** After a restore (or a first start): resume work that the restored state says is in progress. */
  onRestore?(ctx: ActionContext): void;
  /**
   * State keys just taken over from `from`, a node removed while down (its committed state, read from
   * storage): resume the work they say is in progress, as `onRestore` does for the node's own.
   */
  onInherit?(ctx: ActionContext, from: NodeId, keys: readonly string[]): void;
  /**
   * A short name for an app message, for people (the playground labels its arrow: "hand-off v3, 5 keys");
   * undefined: an ordinary message. Never part of the protocol.
   */
  describeMessage?(payload: Json): string | undefined;
}
