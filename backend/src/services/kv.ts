import type { Json, NodeId, Version } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { ActionContext, App, AppRequest } from '../core/app';
import type { Session } from '../core/session';
import type { ClientOptions, PlacementView, Speculative } from './common';
import { asObject, jsonEqual, request, shardOf } from './common';

/**
 * Key-value store: get, put, delete and compare-and-set, sharded over nodes by key. A session reads
 * its own writes: its requests go one after another, each carrying the dependencies of every earlier
 * answer, and a key always lives on the same node.
 *
 * State, one key per stored key so that a checkpoint holds only the keys that changed:
 *   `kv/<key>`  `{x: value (null once deleted), n: writes so far, v: version of the last write}`
 *
 * `n` counts the writes to the key (put, delete, successful compare-and-set), deletes included, so
 * every result names the write it saw: the simulator's checker explains each committed result by
 * the committed history of writes with it.
 */
export interface KvRecord {
  x: Json;
  n: number;
  v: Version;
}

export interface KvGetResult {
  /** null: absent (never written, or deleted). */
  value: Json;
  /** The number of writes the value is the result of (0: never written). */
  n: number;
}
export interface KvWriteResult {
  n: number;
}
export interface KvDeleteResult {
  n: number;
  existed: boolean;
}
export interface KvCasResult {
  ok: boolean;
  /** The write count after the operation. */
  n: number;
  /** The value before the operation (what `expected` was compared with). */
  value: Json;
}

export const KV_PREFIX = 'kv/';
export const kvKey = (key: string): string => `kv/${key}`;

/** The node that holds `key`, for a cluster of `nodes` (in a fixed order). */
export function kvNode(key: string, nodes: readonly NodeId[]): NodeId {
  return shardOf(`kv:${key}`, nodes);
}

function keyOf(p: Record<string, Json>): string {
  const key = p.key;
  if (typeof key !== 'string' || key.length === 0 || key.length > 500) throw new DseError('BadRequest', 'kv: key must be a non-empty string');
  return key;
}

function write(ctx: ActionContext, key: string, prev: KvRecord | undefined, value: Json): number {
  const n = (prev?.n ?? 0) + 1;
  ctx.put(kvKey(key), { x: value, n, v: ctx.version });
  return n;
}

export const kvStoreApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json {
    const p = asObject(req.payload, 'kv');
    const key = keyOf(p);
    const prev = ctx.get(kvKey(key)) as KvRecord | undefined;
    const current = prev?.x ?? null;
    switch (p.op) {
      case 'get':
        return { value: current, n: prev?.n ?? 0 };
      case 'put': {
        if (p.value === undefined || p.value === null) throw new DseError('BadRequest', 'kv put: value must not be null (use delete)');
        return { n: write(ctx, key, prev, p.value) };
      }
      case 'delete': {
        // A delete is a write too: the record stays as a tombstone, so that the write count goes on.
        const existed = current !== null;
        return { n: write(ctx, key, prev, null), existed };
      }
      case 'cas': {
        // Compare-and-set: null as `expected` means absent; null as `value` deletes.
        const expected = p.expected ?? null;
        if (!jsonEqual(current, expected)) return { ok: false, n: prev?.n ?? 0, value: current };
        return { ok: true, n: write(ctx, key, prev, p.value ?? null), value: current };
      }
      default:
        throw new DseError('BadRequest', `kv: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },
};

/** A typed client of the key-value store over one session; keys go to their shard. */
export class KvClient {
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

  /** The node that holds `key`. */
  nodeOf(key: string): NodeId {
    return kvNode(key, this.view.members);
  }

  get(key: string): Promise<Speculative<KvGetResult>> {
    return request(this.session, this.nodeOf(key), { svc: 'kv', op: 'get', key }, undefined, this.view);
  }

  put(key: string, value: Json): Promise<Speculative<KvWriteResult>> {
    return request(this.session, this.nodeOf(key), { svc: 'kv', op: 'put', key, value }, undefined, this.view);
  }

  delete(key: string): Promise<Speculative<KvDeleteResult>> {
    return request(this.session, this.nodeOf(key), { svc: 'kv', op: 'delete', key }, undefined, this.view);
  }

  /** Sets `key` to `value` (null: deletes it) if its value is `expected` (null: absent). */
  cas(key: string, expected: Json, value: Json): Promise<Speculative<KvCasResult>> {
    return request(this.session, this.nodeOf(key), { svc: 'kv', op: 'cas', key, expected, value }, undefined, this.view);
  }
}
