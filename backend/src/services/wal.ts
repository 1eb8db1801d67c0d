import type { Json, NodeId, Version } from '@dse/shared';
import { DseError, toJson } from '@dse/shared';
import type { ActionContext, App, AppRequest } from '../core/app';
import type { Session } from '../core/session';
import type { ClientOptions, CutView, PlacementView, Speculative } from './common';
import { asObject, int, name, optInt, request, shardOf } from './common';

/**
 * Write-ahead log. Each named log lives on one node (by hash of its name). An append returns its
 * position at once, speculatively; a reader chooses speculative reads (everything appended so far,
 * which a recovery may still take back) or committed-only reads (the committed prefix, which never
 * changes, whatever fails).
 *
 * State, one key per entry so that a checkpoint holds only what changed:
 *   `wal/<log>/n`        the log's length
 *   `wal/<log>/e/<pos>`  `{d: data, v: version that appended it}`
 *
 * Committed-only reads: an action cannot see the cut, but the client can. It sends the cut's version
 * of the log's node (`upTo`), and the node returns only entries appended at or below it. Every such
 * version is committed in the node's current lineage, in whatever world-line the request arrives, so
 * the answer is committed the moment it is given. Versions grow with positions: the answer is a prefix.
 */
export interface WalEntry {
  pos: number;
  data: Json;
}

export interface WalReadResult {
  /** Entries from `from` on, in order. */
  entries: WalEntry[];
  /** The position after the last entry returned. */
  next: number;
  /** The log's (speculative) length; absent from committed-only reads. */
  length?: number;
  committed: boolean;
}

interface StoredEntry {
  d: Json;
  v: Version;
}

export const WAL_PREFIX = 'wal/';
export const walLengthKey = (log: string): string => `wal/${log}/n`;
export const walEntryKey = (log: string, pos: number): string => `wal/${log}/e/${pos}`;
export const WAL_READ_MAX = 1000;

/** The node that holds `log`, for a cluster of `nodes` (in a fixed order). */
export function walNode(log: string, nodes: readonly NodeId[]): NodeId {
  return shardOf(`wal:${log}`, nodes);
}

/** Reads entries of `log` from `from`, at most `max`, only those appended at or below version `upTo` if given. */
export function readLog(ctx: Pick<ActionContext, 'get'>, log: string, from: number, max: number, upTo?: number): WalEntry[] {
  const n = (ctx.get(walLengthKey(log)) as number | undefined) ?? 0;
  const out: WalEntry[] = [];
  for (let pos = from; pos < n && out.length < max; pos++) {
    const e = ctx.get(walEntryKey(log, pos)) as StoredEntry | undefined;
    if (e === undefined) break; // never happens with the length kept in state (see the planted bug wal-volatile-length)
    if (upTo !== undefined && e.v > upTo) break;
    out.push({ pos, data: e.d });
  }
  return out;
}

export const walApp: App = {
  onRequest(ctx: ActionContext, req: AppRequest): Json {
    const what = 'wal';
    const p = asObject(req.payload, what);
    const log = name(p, 'log', what);
    switch (p.op) {
      case 'append': {
        if (!('data' in p)) throw new DseError('BadRequest', 'wal append: data is required');
        const pos = (ctx.get(walLengthKey(log)) as number | undefined) ?? 0;
        ctx.put(walEntryKey(log, pos), { d: p.data!, v: ctx.version });
        ctx.put(walLengthKey(log), pos + 1);
        return { pos };
      }
      case 'read': {
        const from = int(p, 'from', what, 0);
        const max = Math.min(int(p, 'max', what, 100, 1), WAL_READ_MAX);
        const upTo = optInt(p, 'upTo', what);
        const entries = readLog(ctx, log, from, max, upTo);
        const result: Record<string, Json> = { entries: toJson(entries), next: from + entries.length, committed: upTo !== undefined };
        if (upTo === undefined) result.length = (ctx.get(walLengthKey(log)) as number | undefined) ?? 0;
        return result;
      }
      case 'length': {
        const upTo = optInt(p, 'upTo', what);
        const n = (ctx.get(walLengthKey(log)) as number | undefined) ?? 0;
        if (upTo === undefined) return { length: n };
        // The committed length: the first position appended above `upTo` (binary search: versions grow with positions).
        let lo = 0;
        let hi = n;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          const e = ctx.get(walEntryKey(log, mid)) as StoredEntry | undefined;
          if (e !== undefined && e.v <= upTo) lo = mid + 1;
          else hi = mid;
        }
        return { length: lo };
      }
      default:
        throw new DseError('BadRequest', `wal: unknown op ${JSON.stringify(p.op ?? null)}`);
    }
  },
};

/** A typed client of the write-ahead log over one session. */
export class WalClient {
  private readonly session: Session;
  private readonly view: PlacementView;
  private readonly cutView: CutView | undefined;

  constructor(session: Session, opts: ClientOptions) {
    this.session = session;
    this.view = opts.placement ?? { version: 0, members: [...opts.nodes].sort() };
    this.cutView = opts.cutView;
  }

  /**
   * After a rollback the session refuses every request (`SessionRolledBack`) until the client
   * acknowledges it here; then it goes on from what survived.
   */
  resume(): void {
    this.session.resume();
  }

  /** The node holding `log`. */
  nodeOf(log: string): NodeId {
    return walNode(log, this.view.members);
  }

  /** Appends `data`; the position is speculative until `commit()`. */
  append(log: string, data: Json): Promise<Speculative<{ pos: number }>> {
    return request(this.session, this.nodeOf(log), { svc: 'wal', op: 'append', log, data }, undefined, this.view);
  }

  /**
   * Reads from `from` on. `committed: true` returns only the committed prefix (final at once: it
   * never changes); otherwise everything appended so far, which a recovery may still take back.
   */
  read(log: string, opts: { from?: number; max?: number; committed?: boolean } = {}): Promise<Speculative<WalReadResult>> {
    const payload: Record<string, Json> = { svc: 'wal', op: 'read', log, from: opts.from ?? 0, max: opts.max ?? 100 };
    const node = this.nodeOf(log);
    if (opts.committed === true) payload.upTo = this.committedVersion(node);
    return request(this.session, node, payload, undefined, this.view);
  }

  /** The log's length: speculative, or `committed: true` for the committed prefix's length. */
  length(log: string, opts: { committed?: boolean } = {}): Promise<Speculative<{ length: number }>> {
    const node = this.nodeOf(log);
    const payload: Record<string, Json> = { svc: 'wal', op: 'length', log };
    if (opts.committed === true) payload.upTo = this.committedVersion(node);
    return request(this.session, node, payload, undefined, this.view);
  }

  private committedVersion(node: NodeId): number {
    if (this.cutView === undefined) throw new DseError('BadRequest', 'wal: committed reads need a cutView (the session host)');
    return this.cutView.cut[node] ?? 0;
  }
}
