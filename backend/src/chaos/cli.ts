/**
 * `npm run chaos -- --seconds N [--seed S] [--scenario kv|workflow|broker|wal] [--mode speculative|durable]
 *   [--recovery precise|cut] [--storage pglite|postgres] [--clients C] [--rate R] [--membership] [--json] [--server-log] [--keep]`
 * `npm run chaos -- --fuzz N [--seed S] [--json]`: N fuzzed commands over HTTP and Socket.IO.
 *
 * Progress goes to stderr; the last line of stdout is one JSON object (with --json) or a summary.
 * Exit status 1 on any violation, with the seed that reproduces the fault schedule.
 */
import { parseCommandLine } from '../command-line';
import type { ChaosOptions, FaultKind, Scenario } from './run';
import { DEFAULT_CHAOS, SCENARIOS, runChaos, scenarioAvailable } from './run';
import type { KnownBug } from './fuzz';
import { runFuzz } from './fuzz';

const USAGE =
  'usage: npm run chaos -- --seconds N [--seed S] [--scenario kv|workflow|broker|wal] [--mode speculative|durable] [--recovery precise|cut] [--storage pglite|postgres] [--clients C] [--rate R] [--faults kill,stop,dbCut,serverRestart,addNode,removeNode] [--membership] [--gap-ms MIN,MAX] [--hold-ms MIN,MAX] [--json] [--server-log] [--keep]\n' +
  '       npm run chaos -- --fuzz N [--seed S] [--avoid deep-values] [--json]';

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

function int(v: string | undefined, what: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`${what} must be an integer ≥ ${min}, not ${v}`);
  return n;
}

const { values } = parseCommandLine(
  {
    options: {
      seconds: { type: 'string' },
      seed: { type: 'string' },
      scenario: { type: 'string' },
      mode: { type: 'string' },
      recovery: { type: 'string' },
      storage: { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      faults: { type: 'string' },
      'gap-ms': { type: 'string' },
      'hold-ms': { type: 'string' },
      fuzz: { type: 'string' },
      avoid: { type: 'string' },
      json: { type: 'boolean', default: false },
      'server-log': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      membership: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  },
  USAGE,
);
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const seed = values.seed !== undefined ? int(values.seed, '--seed', 0) : Math.floor(Math.random() * 2 ** 31);
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

if (values.fuzz !== undefined) {
  const n = int(values.fuzz, '--fuzz', 0, 1);
  const avoid = values.avoid === undefined ? [] : (values.avoid.split(',') as KnownBug[]);
  const r = await runFuzz({ commands: n, seed, log, avoid });
  process.stdout.write(
    values.json
      ? `${JSON.stringify(r)}\n`
      : `fuzz: ${r.commands} commands, ${r.failures} failures, server up: ${r.serverUp}, committed state unchanged: ${r.committedUnchanged}, cut still moves: ${r.cutMoves} (seed ${r.seed})\n`,
  );
  if (r.failures > 0) process.stderr.write(`FAILED: rerun with --fuzz ${n} --seed ${seed}\n`);
  process.exit(r.failures > 0 ? 1 : 0);
}

const scenario = (values.scenario ?? 'kv') as Scenario;
if (!SCENARIOS.includes(scenario)) fail(`--scenario must be one of ${SCENARIOS.join(', ')}`);
const unavailable = scenarioAvailable(scenario);
if (unavailable !== null) {
  process.stderr.write(`--scenario ${scenario}: ${unavailable}\n`);
  process.exit(2);
}
const mode = values.mode ?? 'speculative';
if (mode !== 'speculative' && mode !== 'durable') fail('--mode must be speculative or durable (none mode loses committed results by design)');
const recovery = values.recovery;
if (recovery !== undefined && recovery !== 'precise' && recovery !== 'cut') fail('--recovery must be precise or cut');
const storage = values.storage ?? (process.env.DATABASE_URL ? 'postgres' : 'pglite');
if (storage !== 'pglite' && storage !== 'postgres') fail('--storage must be pglite or postgres');
let faults: FaultKind[] | undefined;
if (values.faults !== undefined) {
  faults = values.faults.split(',').map((f) => f.trim()) as FaultKind[];
  for (const f of faults) if (!['kill', 'stop', 'dbCut', 'serverRestart', 'addNode', 'removeNode'].includes(f)) fail(`unknown fault kind ${f}`);
  if (!values.membership && faults.some((f) => f === 'addNode' || f === 'removeNode')) fail('addNode and removeNode need --membership');
}

function range(v: string | undefined, what: string, dflt: [number, number]): [number, number] {
  if (v === undefined) return dflt;
  const [a, b] = v.split(',').map((x) => int(x, what, 0));
  if (a === undefined || b === undefined || b < a) fail(`${what} is MIN,MAX in milliseconds`);
  return [a, b];
}

const opts: ChaosOptions = {
  ...DEFAULT_CHAOS,
  seconds: int(values.seconds, '--seconds', DEFAULT_CHAOS.seconds, 1),
  seed,
  scenario,
  mode,
  ...(recovery !== undefined ? { recovery } : {}),
  storage,
  clients: int(values.clients, '--clients', DEFAULT_CHAOS.clients, 1),
  rate: int(values.rate, '--rate', DEFAULT_CHAOS.rate, 1),
  gapMs: range(values['gap-ms'], '--gap-ms', DEFAULT_CHAOS.gapMs),
  holdMs: range(values['hold-ms'], '--hold-ms', DEFAULT_CHAOS.holdMs),
  log,
  serverLog: values['server-log'],
  keepData: values.keep,
  ...(faults !== undefined ? { faults } : {}),
  ...(values.membership ? { membership: true } : {}),
};

let code = 0;
try {
  const r = await runChaos(opts);
  for (const d of r.violationDetails) log(`VIOLATION ${d.invariant}: ${d.message}`);
  if (r.violations > 0) {
    log(`FAILED with ${r.violations} violations; reproduce the fault schedule with --seed ${r.seed}`);
    code = 1;
  }
  const summary = `chaos: ${r.seconds} s, ${r.kills} kills, ${r.stops} stops, ${r.dbCuts} db cuts, ${r.serverRestarts} server restarts${r.nodesAdded + r.nodesDrained + r.nodesRestored > 0 ? `, nodes ${r.nodesAdded} added, ${r.nodesDrained} drained, ${r.nodesRestored} removed down` : ''}; ${r.requests} requests, ${r.committed} committed, ${r.rolledBack} rolled back, ${r.refused} refused, ${r.unknown} unknown, ${r.resumes} sessions resumed; ${r.worldLines} world-lines (recovery ${r.recovery}, ${r.keptVersions} versions kept, ${r.coordinatorRestarts} coordinator restarts); lost ${r.lostCommitted}, duplicates ${r.duplicates}, orphans ${r.orphans}${r.scenario !== 'kv' ? `, service ${r.serviceViolations} ${JSON.stringify(r.stats)}` : ''}, violations ${r.violations} (seed ${r.seed})`;
  process.stdout.write(values.json ? `${summary}\n${JSON.stringify(r)}\n` : `${summary}\n`);
} catch (e) {
  log(`chaos run failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)} (seed ${seed})`);
  code = 1;
}
process.exit(code);
