import { parseCommandLine } from '../command-line';
import type { CutKind, Mode } from '@dse/shared';
import { DEFAULT_SIM_OPTIONS, runSeed } from '../sim/world';

/**
 * How many simulated seeds a minute this machine checks, each with at least 200 requests and 2
 * crashes, per mode and cut. Single process, one core: the figure is per core.
 *
 *   npm run bench:sim -- [--seeds 400] [--json]
 */
const { values } = parseCommandLine(
  {
    options: { seeds: { type: 'string', default: '400' }, json: { type: 'boolean', default: false } },
    strict: true,
  },
  'usage: npm run bench:sim -- [--seeds 400] [--json]',
);
const seeds = Number(values.seeds);
if (!Number.isInteger(seeds) || seeds < 1) {
  process.stderr.write(`--seeds must be a positive integer, not ${values.seeds}\n`);
  process.exit(2);
}

const configs: [Mode, CutKind][] = [
  ['speculative', 'exact'],
  ['speculative', 'cheap'],
  ['durable', 'exact'],
  ['durable', 'cheap'],
];
const rows = [];
for (const [mode, cutKind] of configs) {
  let requests = 0;
  let kills = 0;
  let minKills = Infinity;
  let minRequests = Infinity;
  let violations = 0;
  const started = performance.now();
  for (let seed = 1; seed <= seeds; seed++) {
    const r = await runSeed({ ...DEFAULT_SIM_OPTIONS, seed, mode, cutKind });
    requests += r.requests;
    kills += r.kills;
    minKills = Math.min(minKills, r.kills);
    minRequests = Math.min(minRequests, r.requests);
    violations += r.violations.length;
    if (process.stderr.isTTY && seed % 50 === 0) process.stderr.write(`\r${mode}/${cutKind}: ${seed}/${seeds} seeds`);
  }
  const ms = performance.now() - started;
  const row = {
    mode,
    cut: cutKind,
    seeds,
    seedsPerMinute: Math.round((seeds / ms) * 60_000),
    requestsPerSeed: Math.round(requests / seeds),
    minRequestsPerSeed: minRequests,
    crashesPerSeed: Number((kills / seeds).toFixed(2)),
    minCrashesPerSeed: minKills,
    violations,
  };
  rows.push(row);
  if (!values.json) {
    process.stderr.write('\r');
    process.stdout.write(
      `${mode.padEnd(11)} ${cutKind.padEnd(5)}  ${String(row.seedsPerMinute).padStart(6)} seeds/min   ${row.requestsPerSeed} requests/seed (min ${minRequests})   ${row.crashesPerSeed} crashes/seed (min ${minKills})   ${violations} violations\n`,
    );
  }
}
if (values.json) process.stdout.write(`${JSON.stringify({ benchmark: 'sim-speed', cores: 1, rows })}\n`);
