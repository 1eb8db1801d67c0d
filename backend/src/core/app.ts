import type { CallerId, Deps, Json, NodeId, Version, WorldLine } from '@dse/shared';

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
  /**
   * Detaches an sthread once this action ends. `key` names it stably: an sthread that is run again
   * after a recovery with the same key has its already-applied calls answered from the targets' tables.
   */
  detach(key: string, body: (st: Sthread) => Promise<void>): void;
}

/** A handle on a detached logical thread. */
export interface SthreadHandle {
  readonly worldLine: WorldLine;
  readonly version: Version;
  readonly deps: Readonly<Deps>;
}

export interface Sthread {
  readonly id: CallerId;
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
}
