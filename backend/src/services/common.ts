import type { CallerId, Cut, Deps, Json, NodeId, WorldLine } from '@dse/shared';
import { DseError, ERROR_CODES } from '@dse/shared';
import type { ActionContext, App, AppRequest, Pending } from '../core/app';
import type { Session, SpeculativeResult } from '../core/session';

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
  /** Needed for committed-only reads: the cut the session's host has heard of. */
  cutView?: CutView;
}

/** Sends one request and types its answer; a typed refusal by the service (`{error}`) is thrown as a `DseError`. */
export async function request<T>(session: Session, node: NodeId, payload: Json, decode: (r: Json) => T = (r) => r as unknown as T): Promise<Speculative<T>> {
  const r: SpeculativeResult = await session.request(node, payload);
  throwIfError(r.result);
  const value = decode(r.result);
  return {
    value,
    deps: r.deps,
    worldLine: r.worldLine,
    session: r.session,
    seq: r.seq,
    commit: () => r.commit().then(() => value),
    whenCommitted: () => r.whenCommitted().then(() => value),
  };
}

/** The runtime answers a request whose handler threw a `DseError` with `{error: {code, message}}`. */
export function throwIfError(result: Json): void {
  if (typeof result !== 'object' || result === null || Array.isArray(result) || !('error' in result)) return;
  const e = result.error as { code?: string; message?: string } | null;
  if (e === null || typeof e !== 'object' || typeof e.code !== 'string') return;
  const code = (e.code in ERROR_CODES ? e.code : 'Internal') as keyof typeof ERROR_CODES;
  throw new DseError(code, e.message ?? code);
}

/** FNV-1a: a stable hash, the same in every process, for placing keys, logs and topics on nodes. */
export function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The node that owns `key`; every client with the same node list agrees. */
export function shardOf(key: string, nodes: readonly NodeId[]): NodeId {
  if (nodes.length === 0) throw new DseError('BadRequest', 'no nodes to place a key on');
  return nodes[hash(key) % nodes.length]!;
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
    if (app === undefined) throw new DseError('BadRequest', `${what}: no service named ${JSON.stringify(svc ?? null)} (have ${Object.keys(services).join(', ')})`);
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
  };
}
