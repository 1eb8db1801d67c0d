import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Two projects, each with the timeout it needs, so that a hang in a fast test shows in seconds rather
 * than hiding under the slow tests' allowance:
 * - fast: pure code on virtual time (core, simulator, services, web model): `npm run test:fast`, under a minute.
 * - slow: real processes, sockets, PGlite and PostgreSQL, chaos, fuzzing, the benchmark's smoke run.
 * `npm test` runs the fast project, then the slow one (apart, so that the slow tests' processes do not
 * eat the fast tests' margin), then the browser tests (`npm run test:browser`). `vitest run` runs both.
 * The fast timeout is some 5 times what the longest fast test (a 100-seed sweep) takes on an idle machine.
 */
const FAST = [
  'shared/test/**/*.test.ts',
  'backend/test/core/**/*.test.ts',
  'backend/test/sim/**/*.test.ts',
  'backend/test/services/**/*.test.ts',
  'web/test/**/*.test.{ts,tsx}',
];
/** Fast by folder, slow by what they do: these start processes. */
const SLOW_IN_FAST_FOLDERS = ['backend/test/sim/command-lines.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        // Pure CPU work: one worker per core (vitest's default leaves one core to its main process, which is
        // idle here; on 2 cores that would run the files one by one).
        test: {
          name: 'fast',
          include: FAST,
          exclude: SLOW_IN_FAST_FOLDERS,
          testTimeout: 30_000,
          hookTimeout: 30_000,
          maxWorkers: availableParallelism(),
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'slow',
          // Every backend test the fast project does not take (a new folder lands here by default).
          include: ['backend/test/**/*.test.ts'],
          exclude: ['backend/test/core/**', 'backend/test/services/**', 'backend/test/sim/!(command-lines).test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Run after the fast project when both run at once (`vitest run`): they differ in workers.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
