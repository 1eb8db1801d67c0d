import type { CallerId, Cut, Deps, Json, NodeId, WorldLine } from '@dse/shared';
import { DseError, ERROR_CODES, fromJson } from '@dse/shared';
import type { ActionContext, App, AppRequest, Pending } from '../core/app';
import type { Session, SpeculativeResult } from '../core/session';
import { ownerOf } from './placement';

/**
 * What every service client returns: the answer at once, speculatively, and `commit()` for the
 * durable one. Show `value` to a person; do anything that leaves the system (an e-mail, a payment,
 * a line printed as final) only after `commit()` resolves. `commit()` rejects with a definite
 * `RolledBack` when a recovery discarded the request: it then certainly did not happen.
 */
export interface Speculative<T> {
  readonly value: T;
  readonly deps: Readonly<Deps>;
  readonly worldLine: WorldLine;
  readonly session: CallerId;
  readonly seq: number;
  /** Waits for the durable outcome (and asks the nodes to persist now: commit on demand). */
  commit(): Promise<T>;
  /** The same outcome, observed without asking for it. */
  whenCommitted(): Promise<T>;
}

/** Where a client learns the committed cut (a `SessionHost` is one). */
export interface CutView {
  readonly cut: Readonly<Cut>;
}

/** Options every client takes: the nodes its service is spread over (in a fixed order, the same for every client). */
export interface ClientOptions {
  nodes: readonly NodeId[];
  /** The placement to route by and to update from `WrongOwner` answers (default: one of the client's own over `nodes`). */
  placement?: PlacementView;
  /** Needed for committed-only reads: the cut the session's host has heard of. */
  cutView?: CutView;
}

/**
 * How many times a request is sent again after a `WrongOwner` answer. While the members change, nodes
 * on two versions may name each other for a moment; each try is a round trip, and the owner named under
 * the newest version wins.
 */
export const WRONG_OWNER_RETRIES = 64;

/** The owner a `WrongOwner` answer names, or null when the answer is something else. */
export function wrongOwnerOf(result: Json): { owner: NodeId; version: number; members: NodeId[] } | null {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return null;
  const e = result.error;
  if (typeof e !== 'object' || e === null || Array.isArray(e) || e.code !== 'WrongOwner' || typeof e.owner !== 'string') return null;
  const members = Array.isArray(e.members) ? e.members.filter((m): m is string => typeof m === 'string') : [];
  return { owner: e.owner, version: typeof e.version === 'number' ? e.version : 0, members };
}

/**
 * Whether `result` is the answer an sthread gets from a node removed for good, for a call that did not
 * happen there (`ActionContext.targetRemoved`): the call may go to whoever owns its unit now.
 */
export function isNodeRemovedAnswer(result: Json): boolean {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return false;
  const e = result.error;
  return typeof e === 'object' && e !== null && !Array.isArray(e) && e.code === 'NodeRemoved';
}

/**
 * Where to send a request again after `WrongOwner` answer `w`: the owner it names, unless an answer under
 * a newer placement named another (`best` keeps the newest seen).
 */
function followOwner(w: { owner: NodeId; version: number }, best: { owner: NodeId; version: number } | null): { owner: NodeId; version: number } {
  return best !== null && best.version > w.version ? best : w;
}

/** `view` learns the members a `WrongOwner` answer names, when its placement is newer. */
export function learnPlacement(view: PlacementView, w: { version: number; members: NodeId[] }): void {
  if (w.version > view.version && w.members.length > 0) {
    view.version = w.version;
    view.members = [...w.members].sort();
  }
}

/**
 * Follows `WrongOwner` answers, the one loop every client of a placed unit runs (sessions, the server's
 * requests, a workflow's step sthreads): while the answer `first` (or a later one) names another owner,
 * sends again (`resend`) to the owner named under the newest placement seen, at most `max` times
 * (default `WRONG_OWNER_RETRIES`). `seen` is told of each `WrongOwner` answer (a client's view learns
 * from it). Returns the first answer that is not one.
 */
export async function followWrongOwner<R>(
  first: R,
  resultOf: (r: R) => Json,
  resend: (owner: NodeId) => Promise<R>,
  opts: { max?: number; seen?: (w: { owner: NodeId; version: number; members: NodeId[] }) => void } = {},
): Promise<R> {
  let r = first;
  let best: { owner: NodeId; version: number } | null = null;
  const max = opts.max ?? WRONG_OWNER_RETRIES;
  for (let i = 0; i < max; i++) {
    const w = wrongOwnerOf(resultOf(r));
    if (w === null) break;
    opts.seen?.(w);
    best = followOwner(w, best);
    r = await resend(best.owner);
  }
  return r;
}

/**
 * Sends one request and types its answer; a typed refusal by the service (`{error}`) is thrown as a
 * `DseError`. A `WrongOwner` answer (the node does not own the unit, under a newer or an older
 * placement) is followed: the request goes again to the owner named under the newest placement seen,
 * and `view` (the client's placement, if given) learns the newer members.
 */
export async function request<T>(
  session: Session,
  node: NodeId,
  payload: Json,
  decode: (r: Json) => T = (r) => fromJson<T>(r),
  view?: PlacementView,
): Promise<Speculative<T>> {
  const r = await followWrongOwner(
    await session.request(node, payload),
    (x: SpeculativeResult) => x.result,
    (owner) => session.request(owner, payload),
    view !== undefined ? { seen: (w) => learnPlacement(view, w) } : {},
  );
  throwIfError(r.result);
  const value = decode(r.result);
  const res = r;
  return {
    value,
    deps: res.deps,
    worldLine: res.worldLine,
    session: res.session,
    seq: res.seq,
    commit: () => res.commit().then(() => value),
    whenCommitted: () => res.whenCommitted().then(() => value),
  };
}

/** A client's placement: the members it routes by, updated from `WrongOwner` answers. Clients sharing one agree. */
export interface PlacementView {
  version: number;
  members: NodeId[];
}

/** The runtime answers a request whose handler threw a `DseError` with `{error: {code, message}}`. */
export function throwIfError(result: Json): void {
  if (typeof result !== 'object' || result === null || Array.isArray(result) || !('error' in result)) return;
  const e = result.error as { code?: string; message?: string } | null;
  if (e === null || typeof e !== 'object' || typeof e.code !== 'string') return;
  const code = (e.code in ERROR_CODES ? e.code : 'Internal') as keyof typeof ERROR_CODES;
  throw new DseError(code, e.message ?? code);
}

/** The node that owns unit `key` (see `placement.ts`); every client with the same members agrees. */
export function shardOf(key: string, nodes: readonly NodeId[]): NodeId {
  return ownerOf(key, nodes);
}

// ------------------------------------------------------------------ payload checks

export type Payload = { [key: string]: Json };

export function asObject(p: Json, what: string): Payload {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new DseError('BadRequest', `${what}: the payload must be an object`);
  return p;
}

/** A name used inside state keys: non-empty, without `/`. */
export function name(p: Payload, field: string, what: string): string {
  const v = p[field];
  if (typeof v !== 'string' || v.length === 0 || v.length > 200 || v.includes('/')) {
    throw new DseError('BadRequest', `${what}: ${field} must be a non-empty string without '/'`);
  }
  return v;
}

export function int(p: Payload, field: string, what: string, dflt?: number, min = 0): number {
  const v = p[field];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new DseError('BadRequest', `${what}: ${field} is required`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new DseError('BadRequest', `${what}: ${field} must be an integer >= ${min}`);
  return v;
}

/** An optional bound: a number, or undefined when absent or null. */
export function optInt(p: Payload, field: string, what: string): number | undefined {
  const v = p[field];
  if (v === undefined || v === null) return undefined;
  return int(p, field, what);
}

/** JSON equality that ignores the order of object keys. */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  return canonical(a ?? null) === canonical(b ?? null);
}

/** A JSON text that is the same for equal values whatever the order of their object keys. */
export function canonical(v: Json): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(v[k]!)}`)
    .join(',')}}`;
}

// ------------------------------------------------------------------ several services on one node

/** A service's part of a node: requests and messages whose payload names it in `svc`. */
export type ServiceApp = App;

/**
 * One App hosting several services on every node: requests and messages go to the service named by
 * the payload's `svc`; each service keeps its state under its own key prefix. `onRestore` runs for all.
 */
export function serviceRouter(services: Readonly<Record<string, ServiceApp>>): App {
  const pick = (payload: Json, what: string): ServiceApp => {
    const svc = asObject(payload, what).svc;
    const app = typeof svc === 'string' ? services[svc] : undefined;
    if (app === undefined)
      throw new DseError('BadRequest', `${what}: no service named ${JSON.stringify(svc ?? null)} (have ${Object.keys(services).join(', ')})`);
    return app;
  };
  return {
    onRequest(ctx: ActionContext, req: AppRequest): Json | Pending {
      return pick(req.payload, 'request').onRequest(ctx, req);
    },
    onMessage(ctx: ActionContext, from: NodeId, payload: Json): void {
      pick(payload, 'message').onMessage?.(ctx, from, payload);
    },
    onRestore(ctx: ActionContext): void {
      for (const app of Object.values(services)) app.onRestore?.(ctx);
    },
    onInherit(ctx: ActionContext, from: NodeId, keys: readonly string[]): void {
      for (const app of Object.values(services)) app.onInherit?.(ctx, from, keys);
    },
  };
}
