import { DseError, isDseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { CheckpointRecord, Storage } from '../../src/core/ports';
import { CheckpointGroupWriter } from '../../src/storage/group-commit';
import { MemoryStorage } from '../../src/storage/memory';
import { overrideStorage } from '../../src/storage/override';

const rec = (node: string, version: number, worldLine = 1): CheckpointRecord => ({
  node,
  worldLine,
  version,
  prevVersion: version - 1,
  deps: {},
  full: true,
  changes: { set: [[`a:${node}`, version]], del: [] },
});

/** A memory storage that counts its writes and refuses (definitely) any record of node `bad`. */
function counting(): { storage: Storage; inner: MemoryStorage; writes: CheckpointRecord[][] } {
  const inner = new MemoryStorage();
  const writes: CheckpointRecord[][] = [];
  const storage = overrideStorage(inner, {
    writeCheckpoints: (records) => {
      writes.push([...records]);
      if (records.some((r) => r.node === 'bad')) return Promise.reject(new DseError('BadRequest', 'a record it cannot store'));
      return inner.writeCheckpoints(records);
    },
  });
  return { storage, inner, writes };
}

const outcome = (p: Promise<void>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => (isDseError(e) ? e.code : 'other'),
  );

describe('checkpoint group commit (the server writes for every node)', () => {
  it('calls of one turn go to the storage as one write, and each caller hears its success', async () => {
    const t = counting();
    const w = new CheckpointGroupWriter(t.storage, 1);
    const results = await Promise.all([w.write([rec('n1', 1)]), w.write([rec('n2', 1), rec('n2', 2)]), w.write([rec('n3', 1)])].map(outcome));
    expect(results).toEqual(['ok', 'ok', 'ok']);
    expect(t.writes).toHaveLength(1);
    expect(t.writes[0]!.map((r) => `${r.node}@${r.version}`)).toEqual(['n1@1', 'n2@1', 'n2@2', 'n3@1']);
    expect((await t.inner.listCheckpoints(1)).length).toBe(4);
  });

  it('calls arriving while a write is under way wait and then go together', async () => {
    const t = counting();
    const w = new CheckpointGroupWriter(t.storage, 1);
    const first = w.write([rec('n1', 1)]);
    await new Promise<void>((r) => setImmediate(r)); // the first group has started
    const later = [w.write([rec('n2', 1)]), w.write([rec('n3', 1)])];
    expect(await Promise.all([first, ...later].map(outcome))).toEqual(['ok', 'ok', 'ok']);
    expect(t.writes.map((g) => g.length)).toEqual([1, 2]);
  });

  it('a newer world-line refuses the whole group (StaleWorldLine to every caller); calls of different world-lines never share a write', async () => {
    const t = counting();
    await t.inner.saveCoordinator({ worldLine: 2, cut: {}, recoveryCuts: [], nodes: [] });
    const w = new CheckpointGroupWriter(t.storage, 1);
    const results = await Promise.all([w.write([rec('n1', 5, 1)]), w.write([rec('n2', 5, 1)]), w.write([rec('n3', 5, 2)])].map(outcome));
    expect(results).toEqual(['StaleWorldLine', 'StaleWorldLine', 'ok']);
    for (const g of t.writes) expect(new Set(g.map((r) => r.worldLine)).size).toBe(1);
  });

  it('a refusal caused by one caller is not the others’: the group is written again call by call', async () => {
    const t = counting();
    const w = new CheckpointGroupWriter(t.storage, 1);
    const results = await Promise.all([w.write([rec('n1', 1)]), w.write([rec('bad', 1)]), w.write([rec('n3', 1)])].map(outcome));
    expect(results).toEqual(['ok', 'BadRequest', 'ok']);
    expect((await t.inner.listCheckpoints(1)).map((r) => r.node).sort()).toEqual(['n1', 'n3']);
  });
});
