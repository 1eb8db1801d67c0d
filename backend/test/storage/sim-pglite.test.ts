import type { CutKind, Mode } from '@dse/shared';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimResult } from '../../src/sim/world';
import { addResult, DEFAULT_SIM_OPTIONS, emptyTotals, formatViolations, runSeed } from '../../src/sim/world';
import { freshPgliteDir } from './helpers';
import { SyncStorage } from './sync-storage';

/**
 * The simulator on PGlite-backed storage: real SQL under the simulator's faults (crashes, lost and
 * duplicated messages, slow storage failing before or after the write). One PGlite data folder for
 * the run (creating one takes seconds), emptied before each seed; PGlite runs in a worker thread and
 * is called synchronously (see sync-storage.ts), so virtual time does not run on while SQL works.
 * A seed here costs ~10-40x a seed on memory storage: by default 60 seeds (under a minute on a quiet
 * 2-core machine); `DSE_PGLITE_SIM_SEEDS=400` runs 400.
 */
const TOTAL = Number(process.env.DSE_PGLITE_SIM_SEEDS ?? 60);
describe('simulation on PGlite storage with faults', () => {
  let dir = '';
  let db: SyncStorage;
  beforeAll(async () => {
    dir = await freshPgliteDir('dse-sim-pglite-');
    db = await SyncStorage.open(dir);
  }, 300_000);
  afterAll(async () => {
    await db?.close();
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * After a run, what storage holds must be consistent on its own: the saved cut and restore points
   * load, nothing of an ended world-line lies above the restore points.
   */
  async function checkStorage(r: SimResult): Promise<string[]> {
    const problems: string[] = [];
    const rec = await db.loadCoordinator();
    if (rec === null) return [`seed ${r.seed}: no coordinator record`];
    for (const [node, v] of Object.entries(rec.cut)) {
      if (v === 0) continue;
      const cp = await db.loadCheckpoint(node, v);
      if (cp === null) problems.push(`seed ${r.seed}: ${node}@${v} (in the saved cut) cannot be loaded`);
    }
    const kept = rec.kept ?? rec.cut;
    for (const [node, v] of Object.entries(kept)) {
      if (v <= (rec.cut[node] ?? 0)) continue;
      const cp = await db.loadCheckpoint(node, v);
      if (cp === null) problems.push(`seed ${r.seed}: ${node}@${v} (a restore point) cannot be loaded`);
    }
    // Rows of the world-line that started last are above its restore points; older ones must not be.
    const start = rec.recoveryCuts.at(-1);
    const startKept = start?.worldLine === rec.worldLine ? (start.kept ?? start.cut) : kept;
    const stale = db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM dse_checkpoints WHERE world_line < $1 AND version > COALESCE(($2::jsonb ->> node)::bigint, 0)',
      [rec.worldLine, JSON.stringify(startKept)],
    );
    if (stale[0]!.n !== '0') problems.push(`seed ${r.seed}: ${stale[0]!.n} rows of ended world-lines above the restore points`);
    return problems;
  }

  // Durable mode writes every action: its seeds cost ~3x.
  const configs: [Mode, CutKind, number, number][] = [
    ['speculative', 'exact', 5000, Math.round(TOTAL * 0.5)],
    ['speculative', 'cheap', 5500, Math.round(TOTAL * 0.3)],
    ['durable', 'exact', 6000, Math.round(TOTAL * 0.1)],
    ['durable', 'cheap', 6500, Math.round(TOTAL * 0.1)],
  ];
  for (const [mode, cutKind, from, count] of configs) {
    it(`${mode} mode, ${cutKind} cut, ${count} seeds: every invariant holds, storage consistent`, async () => {
      const t = { ...emptyTotals(), problems: [] as string[] };
      for (let seed = from; seed < from + count; seed++) {
        db.reset();
        const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, mode, cutKind, storage: db });
        addResult(t, r);
        t.problems.push(...formatViolations(r), ...(await checkStorage(r)));
      }
      expect(t.problems).toEqual([]);
      // The faults really happened, recovery really ran, and the checkpoints really went through SQL.
      expect(t.kills).toBeGreaterThanOrEqual(2 * count);
      expect(t.coordinatorRestarts).toBeGreaterThanOrEqual(count);
      expect(t.versionsRolledBack).toBeGreaterThan(0);
      expect(t.checkpoints).toBeGreaterThan(20 * count);
      expect(t.committed).toBeGreaterThan(t.requests / 2);
    }, 600_000);
  }

  it('a seed on PGlite reproduces its run exactly', async () => {
    const run = async (): Promise<SimResult> => {
      db.reset();
      return runSeed({ ...DEFAULT_SIM_OPTIONS, seed: 4242, storage: db });
    };
    const a = await run();
    const b = await run();
    expect({ ...b, trace: b.trace.join('\n') }).toEqual({ ...a, trace: a.trace.join('\n') });
  });
});
