import type { Json, NodeId, Version } from '@dse/shared';
import type { CommittedReply, RemovedReply } from './caller-table';
import { committedReplies, sthreadReplies } from './caller-table';
import type { Storage } from './ports';
import type { DedupWindow } from './dedup';
import { readDedupWindow } from './dedup';
import { appEntries, parseDedupKey, parseOutboxKey, readOutboxRecord } from './state-keys';

/** An app message as its sender's state holds it: where to, and what. */
export interface SentMessage {
  to: NodeId;
  payload: Json;
}

/** What is left of a removed node, as the members that take over its units get it (`ViewChange.inherit`). */
export interface RetiredNode {
  state: Record<string, Json>;
  replies: RemovedReply[];
  sent: SentMessage[];
  /** Per sender, the app messages it applied within its final cut (its dedup windows): the others never reached it. */
  applied: Record<NodeId, DedupWindow>;
}

/**
 * What is left of a node removed for good while down: its checkpoint at the cut, read from storage.
 * `appState` goes to the nodes that take over its units; `replies` decide the sessions' requests still
 * waiting on it (`SessionHost.nodeRemoved`); `sthreadReplies` answer the sthreads still waiting on it
 * (`ActionContext.targetRemoved`).
 */
export interface RemovedNode {
  appState: Record<string, Json>;
  replies: (caller: string, seq: number) => CommittedReply | null;
  sthreadReplies: RemovedReply[];
  /**
   * App messages it sent in committed versions that no receiver acknowledged within the cut, in the order
   * sent: nobody will send them again. Whoever takes over decides which a receiver still lacks (the
   * membership layer: hand-offs, see `services/membership.ts`).
   */
  unacknowledged: SentMessage[];
  /** Per sender, the app messages it applied in committed versions (its dedup windows, `r:dd:<sender>`). */
  applied: Record<NodeId, DedupWindow>;
}

/**
 * Reads what is left of `id`, whose entry in the final cut is `version` (0: it never committed
 * anything). Null when that checkpoint is not in storage (a durability failure: the caller says so).
 * Storage errors go to the caller, who may read again.
 */
export async function readRemovedNode(storage: Storage, id: NodeId, version: Version): Promise<RemovedNode | null> {
  if (version === 0) return { appState: {}, replies: committedReplies([]), sthreadReplies: [], unacknowledged: [], applied: {} };
  const cp = await storage.loadCheckpoint(id, version);
  if (cp === null) return null;
  const appState: Record<string, Json> = {};
  for (const [k, v] of appEntries(cp.state)) appState[k] = v;
  const out: { to: NodeId; seq: number; payload: Json }[] = [];
  for (const [k, v] of cp.state) {
    const o = parseOutboxKey(k);
    if (o !== null) out.push({ ...o, payload: readOutboxRecord(v).payload });
  }
  out.sort((a, b) => (a.to === b.to ? a.seq - b.seq : a.to < b.to ? -1 : 1));
  const applied: Record<NodeId, DedupWindow> = {};
  for (const [k, v] of cp.state) {
    const src = parseDedupKey(k);
    if (src !== null) applied[src] = readDedupWindow(v);
  }
  return {
    appState,
    replies: committedReplies(cp.state),
    sthreadReplies: sthreadReplies(cp.state),
    unacknowledged: out.map(({ to, payload }) => ({ to, payload })),
    applied,
  };
}
