import type { OpenedStorage } from '../../storage/open';
import { overrideStorage } from '../../storage/override';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A storage whose commits take `delayMs` longer: every write (`writeCheckpoints`, `saveCoordinator`)
 * waits `delayMs` before it reaches the real storage. It models a cloud disk (1–10 ms a commit) on a
 * machine whose local disk commits in well under a millisecond. Concurrent writes wait side by side,
 * as on a disk with a queue: the delay adds latency, not a throughput limit. Reads are not delayed.
 */
export function delayedStorage(opened: OpenedStorage, delayMs: number): OpenedStorage {
  if (delayMs <= 0) return opened;
  const s = opened.storage;
  const storage = overrideStorage(s, {
    writeCheckpoints: async (records) => {
      await sleep(delayMs);
      return s.writeCheckpoints(records);
    },
    saveCoordinator: async (record) => {
      await sleep(delayMs);
      return s.saveCoordinator(record);
    },
  });
  // The delay is modelled here, in this process: node processes must not write around it.
  return { ...opened, storage, schema: undefined, describe: `${opened.describe}, +${delayMs} ms per commit (modelled)`, close: () => opened.close() };
}
