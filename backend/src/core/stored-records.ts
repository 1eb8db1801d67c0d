import type { Json } from '@dse/shared';
import { callerTableJson, readCallerTable } from './caller-table';
import { dedupWindowJson, readDedupWindow } from './dedup';
import { callerKey, dedupKey } from './state-keys';

const CALLER = callerKey('');
const DEDUP = dedupKey('');

/**
 * Reads and checks, once, every runtime table a restored state holds (caller tables, dedup windows), and
 * rewrites them in the named form: checkpoints written before the fields were named (`{q, e, c, d}`,
 * `{f, a}`) still restore, a corrupt one fails the restore (`CorruptRecordError`), and from then on the
 * node reads its tables as it wrote them, without parsing them on every request.
 */
export function normalizeStoredRecords(state: Map<string, Json>): void {
  for (const [k, v] of state) {
    if (k.startsWith(CALLER)) state.set(k, callerTableJson(readCallerTable(v, k.slice(CALLER.length))));
    else if (k.startsWith(DEDUP)) state.set(k, dedupWindowJson(readDedupWindow(v)));
  }
}
