import type { Json, NodeId } from './protocol';
import { DseError } from './errors';

/**
 * Placement: which node owns which *unit* of service state, the one rule every client, the server, the
 * simulator and the nodes themselves ask.
 *
 * A unit is what moves as a whole when the members change: a key of the key-value store (`kv:<key>`),
 * a log (`wal:<log>`, with its entries and length), a topic (`broker:<topic>`, with its events,
 * producers and consumer groups), a workflow (`wf:<id>`), a travel item (`travel:<item>`, its stock and
 * the bookings of it) and a key of the playground's small kv app (`app:<key>`). Its owner is chosen by
 * rendezvous hashing over the members: adding one node to N moves about 1/(N+1) of the units (those
 * the new node wins), removing one moves only its own.
 *
 * A placement has a version: the members are state of the runtime (see `membership.ts`), changed by a
 * request through it, and every change is the next version.
 */
export interface Placement {
  readonly version: number;
  /** Sorted, without duplicates. */
  readonly members: readonly NodeId[];
}

export function placement(members: readonly NodeId[], version = 0): Placement {
  return { version, members: [...new Set(members)].sort() };
}

/** FNV-1a: a stable hash, the same in every process. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A well-mixed score of (unit, node) (FNV-1a, then a finaliser so that near names spread apart). */
function score(unit: string, node: NodeId): number {
  let h = hash32(`${unit}\u0000${node}`);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The owner of `unit`: rendezvous hashing over `members` (the highest score wins; ties by name). */
export function ownerOf(unit: string, members: Placement | readonly NodeId[]): NodeId {
  const list = 'members' in members ? members.members : members;
  let best: NodeId | null = null;
  let bestScore = -1;
  for (const id of list) {
    const s = score(unit, id);
    if (s > bestScore || (s === bestScore && best !== null && id < best)) {
      best = id;
      bestScore = s;
    }
  }
  if (best === null) throw new DseError('BadRequest', 'no nodes to place a key on');
  return best;
}

// ------------------------------------------------------------------ units of requests and of state

const isObject = (v: Json | undefined): v is { [k: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The service state prefixes and the prefix of the membership's own state. */
export const MEMBERSHIP_PREFIX = 'pl/';
/** Replicas of the playground kv app (`~<origin>/<key>`): copies another node sent, never moved. */
const REPLICA_PREFIX = '~';

/**
 * The unit a request is about, or null when it is not placed (a request a node answers whatever it
 * owns: the membership's own requests, a malformed payload the app will refuse).
 */
export function unitOfRequest(payload: Json): string | null {
  if (!isObject(payload)) return null;
  if ('pl' in payload) return null;
  const str = (f: string): string | null => (typeof payload[f] === 'string' && payload[f] !== '' ? payload[f] : null);
  switch (payload.svc) {
    case 'kv': {
      const k = str('key');
      return k === null ? null : `kv:${k}`;
    }
    case 'wal': {
      const l = str('log');
      return l === null ? null : `wal:${l}`;
    }
    case 'broker': {
      const t = str('topic');
      return t === null ? null : `broker:${t}`;
    }
    case 'wf': {
      const id = str('id');
      return id === null ? null : `wf:${id}`;
    }
    case 'travel': {
      const item = str('item');
      return item === null ? null : `travel:${item}`;
    }
    case undefined: {
      // The playground's kv app: `{op, key}`. A replica (`~<origin>/<key>`) is a copy this node holds: not placed.
      const k = str('key');
      return k === null || k.startsWith(REPLICA_PREFIX) ? null : `app:${k}`;
    }
    default:
      return null;
  }
}

/** The unit a state key belongs to (its value is needed for a travel booking, which names its item), or null: stays where it is. */
export function unitOfStateKey(key: string, value: Json | undefined): string | null {
  const seg = (prefix: string): string | null => {
    const rest = key.slice(prefix.length);
    const i = rest.indexOf('/');
    const name = i < 0 ? rest : rest.slice(0, i);
    return name === '' ? null : name;
  };
  if (key.startsWith(MEMBERSHIP_PREFIX) || key.startsWith(REPLICA_PREFIX)) return null;
  if (key.startsWith('kv/')) return `kv:${key.slice(3)}`;
  if (key.startsWith('wal/')) {
    const l = seg('wal/');
    return l === null ? null : `wal:${l}`;
  }
  if (key.startsWith('br/')) {
    const t = seg('br/');
    return t === null ? null : `broker:${t}`;
  }
  if (key.startsWith('wf/')) return `wf:${key.slice(3)}`;
  if (key.startsWith('tr/s/')) return `travel:${key.slice(5)}`;
  if (key.startsWith('tr/b/')) {
    const item = isObject(value) && typeof value.item === 'string' ? value.item : null;
    return item === null ? null : `travel:${item}`;
  }
  if (key.startsWith('tr/')) return null;
  return `app:${key}`;
}

/**
 * A unit that cannot move now: a workflow still running (its steps run in sthreads of the node that
 * started it, under that node's caller ids, so it finishes where it started and moves when done).
 */
export function unitBusy(unit: string, get: (key: string) => Json | undefined): boolean {
  if (!unit.startsWith('wf:')) return false;
  const rec = get(`wf/${unit.slice(3)}`);
  return isObject(rec) && rec.ph !== 'done';
}
