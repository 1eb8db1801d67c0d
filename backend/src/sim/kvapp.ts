import type { Json, NodeId } from '@dse/shared';
import { DseError, fromJson, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest, Sthread } from '../core/app';
import { PENDING } from '../core/app';

/**
 * The simulator's test application: a small key-value store whose every effect is a record tagged
 * with the request (session, seq), the hop, and the version and world-line that applied it. The
 * checker reads those records to see what survived, what was lost and what was applied twice.
 *
 * - `put`: appends a record to `h:<key>` on the entry node.
 * - `get`: reads `h:<key>` on the entry node.
 * - `chain`: a record on the entry node, then one on each hop, passed on as node-to-node messages,
 *   and back to the entry node, which replies.
 * - `sthread`: the entry node detaches an sthread that calls each hop in turn, then merges and
 *   writes its own record and replies.
 */
export type KvOp =
  | { op: 'put'; key: string; value: number }
  | { op: 'get'; key: string }
  | { op: 'chain'; key: string; hops: NodeId[] }
  | { op: 'sthread'; key: string; hops: NodeId[] };

export interface EffectRecord {
  s: string;
  q: number;
  /** Hop index: 0 on the entry node, 1.. on the hops. */
  i: number;
  v: number;
  w: number;
}

interface HopMsg {
  hop: { s: string; q: number; key: string; origin: NodeId; rest: NodeId[]; i: number };
}
interface DoneMsg {
  done: { s: string; q: number; n: number };
}

function append(ctx: ActionContext, key: string, rec: Omit<EffectRecord, 'v' | 'w'>): number {
  const list = (ctx.get(key) as EffectRecord[] | undefined) ?? [];
  // Values are never mutated in place: a checkpoint may still hold the old array.
  const next: EffectRecord[] = [...list, { ...rec, v: ctx.version, w: ctx.worldLine }];
  ctx.put(key, toJson(next));
  return list.length + 1;
}

function runSthread(ctx: ActionContext, s: string, q: number, key: string, hops: NodeId[]): void {
  ctx.detach(`${s}:${q}`, async (st: Sthread) => {
    for (let i = 0; i < hops.length; i++) {
      await st.call(hops[i]!, { op: 'step', key, s, q, i: i + 1 });
    }
    await st.merge((m) => {
      append(m, `h:${key}`, { s, q, i: 0 });
      m.delete(`t:${s}:${q}`);
      m.completeRequest(s, q, { steps: hops.length });
    });
  });
}

export const kvApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json | typeof PENDING {
    const p = req.payload as { op?: string; key?: unknown; value?: unknown; hops?: unknown; s?: string; q?: number; i?: number };
    if (typeof p !== 'object' || p === null || typeof p.key !== 'string') throw new DseError('BadRequest', 'kv: a request needs a string key');
    const key = p.key;
    switch (p.op) {
      case 'put':
        return { len: append(ctx, `h:${key}`, { s: req.caller, q: req.seq, i: 0 }) };
      case 'get': {
        const list = (ctx.get(`h:${key}`) as EffectRecord[] | undefined) ?? [];
        return { len: list.length };
      }
      case 'chain': {
        const hops = p.hops as NodeId[];
        append(ctx, `h:${key}`, { s: req.caller, q: req.seq, i: 0 });
        if (hops.length === 0) return { hops: 0 };
        const msg: HopMsg = { hop: { s: req.caller, q: req.seq, key, origin: ctx.nodeId, rest: hops.slice(1), i: 1 } };
        ctx.send(hops[0]!, toJson(msg));
        return PENDING;
      }
      case 'sthread': {
        const hops = p.hops as NodeId[];
        ctx.put(`t:${req.caller}:${req.seq}`, { key, hops });
        runSthread(ctx, req.caller, req.seq, key, hops);
        return PENDING;
      }
      case 'step':
        // A hop of an sthread: the caller is the sthread, the record names the session's request.
        append(ctx, `x:${key}`, { s: p.s!, q: p.q!, i: p.i! });
        return { ok: true };
      default:
        throw new DseError('BadRequest', `kv: unknown op ${String(p.op)}`);
    }
  },

  onMessage(ctx: ActionContext, _from: NodeId, payload: Json): void {
    const m = fromJson<HopMsg | DoneMsg>(payload);
    if ('hop' in m) {
      const h = m.hop;
      append(ctx, `x:${h.key}`, { s: h.s, q: h.q, i: h.i });
      if (h.rest.length > 0) {
        ctx.send(h.rest[0]!, toJson({ hop: { ...h, rest: h.rest.slice(1), i: h.i + 1 } }));
      } else {
        ctx.send(h.origin, toJson({ done: { s: h.s, q: h.q, n: h.i } }));
      }
    } else {
      ctx.completeRequest(m.done.s, m.done.q, { hops: m.done.n });
    }
  },

  onRestore(ctx: ActionContext): void {
    // Sthreads are volatile: start again every one the restored state says is still running.
    for (const k of ctx.keys('t:')) {
      const [, s, q] = /^t:(.*):(\d+)$/.exec(k)!;
      const t = ctx.get(k) as { key: string; hops: NodeId[] };
      runSthread(ctx, s!, Number(q), t.key, t.hops);
    }
  },
};
