import type { Json } from '@dse/shared';
import { asNumber, asObject, CorruptRecordError } from './state-keys';

/**
 * The `app` messages applied from one sender, by seq (rule 4: a duplicate is acknowledged again, never
 * applied twice). Senders number from 1 without gaps and messages mostly arrive in order, so this is a
 * watermark plus the few seqs applied above it.
 */
export interface DedupWindow {
  /** Every seq up to and including this one was applied. */
  appliedUpTo: number;
  /** Applied seqs above `appliedUpTo`, sorted. */
  appliedAbove: number[];
}

export const EMPTY_DEDUP_WINDOW: DedupWindow = { appliedUpTo: 0, appliedAbove: [] };

export function wasApplied(w: DedupWindow, seq: number): boolean {
  return seq <= w.appliedUpTo || w.appliedAbove.includes(seq);
}

/** The window with `seq` applied too (a new object: the old one may be in an undo log). */
export function withApplied(w: DedupWindow, seq: number): DedupWindow {
  let upTo = w.appliedUpTo;
  let above = w.appliedAbove;
  if (seq === upTo + 1) {
    upTo = seq;
    while (above.length > 0 && above[0] === upTo + 1) {
      upTo++;
      above = above.slice(1);
    }
  } else {
    above = [...above, seq].sort((x, y) => x - y);
  }
  return { appliedUpTo: upTo, appliedAbove: above };
}

export function dedupWindowJson(w: DedupWindow): Json {
  return { appliedUpTo: w.appliedUpTo, appliedAbove: w.appliedAbove };
}

/**
 * Reads a stored window. Checkpoints written before the fields were named (`{f, a}`) still restore:
 * both forms are read, the named one is written.
 */
export function readDedupWindow(value: Json): DedupWindow {
  const o = asObject(value, 'dedup window');
  const named = 'appliedUpTo' in o;
  const above = named ? o.appliedAbove : o.a;
  if (!Array.isArray(above) || !above.every((s): s is number => typeof s === 'number')) throw new CorruptRecordError('dedup window', value);
  return { appliedUpTo: asNumber(named ? o.appliedUpTo : o.f, 'dedup window'), appliedAbove: above };
}
