import { describe, expect, it } from 'vitest';
import type { ChaosResult } from '../../src/chaos/run';
import { DEFAULT_CHAOS, runChaos } from '../../src/chaos/run';
import { POSTGRES_REQUIRED, POSTGRES_URL, postgresProblem, reportSkip } from '../storage/pg-env';

/**
 * Short chaos runs on the live system: the server as a child process with its node processes, load
 * through the HTTP API, and every fault kind at least once (SIGKILL and SIGSTOP of nodes, the database
 * connection cut through the proxy, SIGKILL and restart of the server), for the kv scenario and for the
 * workflow scenario (travel reservations through POST /api/service). On PostgreSQL when one answers
 * (database cuts need it), else on PGlite without database cuts. Longer runs: `npm run chaos`.
 */

describe('chaos (short run)', () => {
  it('every fault kind once; nothing committed lost, nothing applied twice, no orphans, prefixes, cuts never back', async () => {
    const problem = await postgresProblem();
    if (problem !== null && POSTGRES_REQUIRED) throw new Error(`PostgreSQL required: ${problem}`);
    if (problem !== null) reportSkip('chaos database cuts (the short run uses PGlite instead)', problem);
    const storage = problem === null ? 'postgres' : 'pglite';
    const lines: string[] = [];
    let r: ChaosResult;
    try {
      r = await runChaos({
        ...DEFAULT_CHAOS,
        seconds: 40,
        seed: 20261127,
        storage,
        databaseUrl: POSTGRES_URL,
        clients: 3,
        rate: 4,
        gapMs: [300, 1500],
        holdMs: [400, 2500],
        settleMs: 90_000,
        everyKindOnce: true,
        log: (l) => lines.push(l),
      });
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${lines.join('\n')}`);
    }
    const why = `${JSON.stringify(r.violationDetails, null, 1)}\n${lines.join('\n')}`;
    expect(r.kills, why).toBeGreaterThan(0);
    expect(r.stops, why).toBeGreaterThan(0);
    expect(r.serverRestarts, why).toBeGreaterThan(0);
    if (storage === 'postgres') expect(r.dbCuts, why).toBeGreaterThan(0);
    expect(r.committed, why).toBeGreaterThan(20);
    expect(r.applicationsSeen, why).toBeGreaterThan(0);
    expect({ lost: r.lostCommitted, duplicates: r.duplicates, orphans: r.orphans, prefix: r.prefixViolations, cut: r.cutViolations, liveness: r.livenessViolations, violations: r.violations }, why).toEqual({
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
    const problem = await postgresProblem();
    if (problem !== null && POSTGRES_REQUIRED) throw new Error(`PostgreSQL required: ${problem}`);
    const storage = problem === null ? 'postgres' : 'pglite';
    const lines: string[] = [];
    let r: ChaosResult;
    try {
      r = await runChaos({
        ...DEFAULT_CHAOS,
        seconds: 35,
        seed: 20261128,
        scenario: 'workflow',
        storage,
        databaseUrl: POSTGRES_URL,
        clients: 3,
        rate: 4,
        gapMs: [300, 1200],
        holdMs: [400, 2000],
        settleMs: 90_000,
        everyKindOnce: true,
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
    expect(r.stats.workflowsCommitted ?? 0, why).toBeGreaterThan(10);
    // Both ends of a saga happened: some workflows completed, some failed and were compensated.
    expect(r.stats.workflowsCompleted ?? 0, why).toBeGreaterThan(0);
    expect(r.stats.workflowsFailed ?? 0, why).toBeGreaterThan(0);
    expect({ lost: r.lostCommitted, duplicates: r.duplicates, orphans: r.orphans, prefix: r.prefixViolations, service: r.serviceViolations, cut: r.cutViolations, liveness: r.livenessViolations, violations: r.violations }, why).toEqual({
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
