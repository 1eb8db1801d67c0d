import type { Json, NodeId } from '@dse/shared';
import { DseError } from '@dse/shared';
import type { ActionContext, App, AppRequest } from '../core/app';
import { SERVICE_PREFIXES, servicePrefixOf } from '../services';

/**
 * The live cluster's key-value application. Each key lives on one node (the server sends a request to
 * the key's node); a node's app state is `key → value`, plus replicas `~<origin>/<key>` that other
 * nodes sent it.
 *
 * - `{op: 'put', key, value}` → `{key, version}`
 * - `{op: 'get', key}` → `{key, value}` (null when absent). A get reads the node's current, speculative
 *   state, which holds the session's own earlier writes (its requests carry the session's dependencies,
 *   so the node is at least at the version that applied them); a committed-only read is answered by the
 *   server from the node's committed checkpoint instead.
 * - `{op: 'replicate', key, value, to: [nodes]}` → `{key, version, replicas}`: a put that also sends the
 *   value to other nodes as messages; their versions then depend on this one, so a failure here rolls
 *   them back too.
 *
 * Keys starting with a service prefix (`wal/`, `kv/`, `br/`, `wf/`, `tr/`, see `SERVICE_PREFIXES`)
 * are refused: in the `playground` app the services keep their state on the same nodes under them.
 */
export type KvAppOp = { op: 'put'; key: string; value: Json } | { op: 'get'; key: string } | { op: 'replicate'; key: string; value: Json; to: NodeId[] };

export const REPLICA_PREFIX = '~';

export function replicaKey(origin: NodeId, key: string): string {
  return `${REPLICA_PREFIX}${origin}/${key}`;
}

export const kvApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json {
    const p = req.payload as Partial<Record<string, Json>> | null;
    if (typeof p !== 'object' || p === null || Array.isArray(p) || typeof p.key !== 'string') {
      throw new DseError('BadRequest', 'kv: a request is an object with a string key');
    }
    const key = p.key;
    const prefix = servicePrefixOf(key);
    if (prefix !== undefined) {
      throw new DseError(
        'BadRequest',
        `kv: key ${JSON.stringify(key.slice(0, 60))} starts with ${prefix}, a service's prefix (keys may not start with ${SERVICE_PREFIXES.join(', ')})`,
      );
    }
    switch (p.op) {
      case 'put':
        ctx.put(key, p.value ?? null);
        return { key, version: ctx.version };
      case 'get':
        return { key, value: ctx.get(key) ?? null };
      case 'replicate': {
        const to = Array.isArray(p.to) ? p.to.filter((n): n is string => typeof n === 'string' && n !== ctx.nodeId) : [];
        ctx.put(key, p.value ?? null);
        for (const n of to) ctx.send(n, { rep: { key, value: p.value ?? null } });
        return { key, version: ctx.version, replicas: to.length };
      }
      default:
        throw new DseError('BadRequest', `kv: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },

  onMessage(ctx: ActionContext, from: NodeId, payload: Json): void {
    const m = payload as { rep?: { key?: unknown; value?: Json } } | null;
    if (m === null || typeof m !== 'object' || m.rep === undefined || typeof m.rep.key !== 'string') return;
    ctx.put(replicaKey(from, m.rep.key), m.rep.value ?? null);
  },
};
