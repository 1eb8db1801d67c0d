import { describe, expect, it } from 'vitest';
import type { ChaosOptions, ChaosResult } from '../../src/chaos/run';
import { DEFAULT_CHAOS, runChaos } from '../../src/chaos/run';
import { POSTGRES_REQUIRED, POSTGRES_URL, postgresProblem, reportSkip } from '../storage/pg-env';

/**
 * Short chaos runs on the live system: the server as a child process with its node processes, load
 * through the HTTP API, and every fault kind at least once (SIGKILL and SIGSTOP of nodes, the database
 * connection cut through the proxy, SIGKILL and restart of the server), for the kv scenario and for the
 * workflow scenario (travel reservations through POST /api/service). On PostgreSQL when one answers
 * (database cuts need it), else on PGlite without database cuts. Longer runs: `npm run chaos`.
 */

/** Storage for the short runs: PostgreSQL when one answers (database cuts need it), else PGlite. */
async function shortRunStorage(): Promise<'postgres' | 'pglite'> {
  const problem = await postgresProblem();
  if (problem !== null && POSTGRES_REQUIRED) throw new Error(`PostgreSQL required: ${problem}`);
  if (problem !== null) reportSkip('chaos database cuts (the short runs use PGlite instead)', problem);
  return problem === null ? 'postgres' : 'pglite';
}

/**
 * A short run with every fault kind at least once; returns its result and the text to show when an
 * assertion fails (violations, stats and the run's log). Checks that each fault kind happened.
 */
async function shortRun(over: Partial<ChaosOptions>): Promise<{ r: ChaosResult; why: string }> {
  const storage = await shortRunStorage();
  const lines: string[] = [];
  let r: ChaosResult;
  try {
    r = await runChaos({
      ...DEFAULT_CHAOS,
      storage,
      databaseUrl: POSTGRES_URL,
      clients: 3,
      rate: 4,
      settleMs: 90_000,
      everyKindOnce: true,
      ...over,
      log: (l) => lines.push(l),
    });
  } catch (e) {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${lines.join('\n')}`);
  }
  const why = `${JSON.stringify(r.violationDetails, null, 1)}\n${JSON.stringify(r.stats)}\n${lines.join('\n')}`;
  expect(r.kills, why).toBeGreaterThan(0);
  expect(r.stops, why).toBeGreaterThan(0);
  expect(r.serverRestarts, why).toBeGreaterThan(0);
  if (storage === 'postgres') expect(r.dbCuts, why).toBeGreaterThan(0);
  return { r, why };
}

describe('chaos (short run)', () => {
  it('every fault kind once; nothing committed lost, nothing applied twice, no orphans, prefixes, cuts never back', async () => {
    const { r, why } = await shortRun({ seconds: 40, seed: 20261127, gapMs: [300, 1500], holdMs: [400, 2500] });
    expect(r.committed, why).toBeGreaterThan(20);
    expect(r.applicationsSeen, why).toBeGreaterThan(0);
    expect(
      {
        lost: r.lostCommitted,
        duplicates: r.duplicates,
        orphans: r.orphans,
        prefix: r.prefixViolations,
        cut: r.cutViolations,
        liveness: r.livenessViolations,
        violations: r.violations,
      },
      why,
    ).toEqual({
      lost: 0,
      duplicates: 0,
      orphans: 0,
      prefix: 0,
      cut: 0,
      liveness: 0,
      violations: 0,
    });
  }, 400_000);

  it('workflow scenario, every fault kind once: committed workflows done as told, each step once, sagas compensated, stock matches bookings', async () => {
    const { r, why } = await shortRun({ seconds: 35, seed: 20261128, scenario: 'workflow', gapMs: [300, 1200], holdMs: [400, 2000] });
    expect(r.stats.workflowsCommitted ?? 0, why).toBeGreaterThan(10);
    // Both ends of a saga happened: some workflows completed, some failed and were compensated.
    expect(r.stats.workflowsCompleted ?? 0, why).toBeGreaterThan(0);
    expect(r.stats.workflowsFailed ?? 0, why).toBeGreaterThan(0);
    expect(
      {
        lost: r.lostCommitted,
        duplicates: r.duplicates,
        orphans: r.orphans,
        prefix: r.prefixViolations,
        service: r.serviceViolations,
        cut: r.cutViolations,
        liveness: r.livenessViolations,
        violations: r.violations,
      },
      why,
    ).toEqual({
      lost: 0,
      duplicates: 0,
      orphans: 0,
      prefix: 0,
      service: 0,
      cut: 0,
      liveness: 0,
      violations: 0,
    });
  }, 300_000);
});
