import { parseCommandLine } from '../command-line';
import { CUT_KINDS, MODES, RECOVERY_KINDS } from '@dse/shared';
import type { CutKind, Mode, RecoveryKind } from '@dse/shared';
import type { MembershipChangeKind } from './membership';
import type { ScenarioName } from './scenario';
import { SCENARIO_NAMES } from './scenario';
import { addResult, DEFAULT_SIM_OPTIONS, emptyTotals, PLANTED_BUGS, runSeed } from './world';

/** The most nodes a run may have (see `--nodes`). */
const MAX_NODES = 1024;
import type { PlantedBug, SimResult } from './world';

const USAGE = `usage: npm run sim -- [--scenario ${SCENARIO_NAMES.join('|')}] [--seeds N] [--from S] [--nodes ${DEFAULT_SIM_OPTIONS.nodes}] [--sessions ${DEFAULT_SIM_OPTIONS.sessions}] [--requests ${DEFAULT_SIM_OPTIONS.requestsPerSession}] [--mode speculative|durable|none] [--cut exact|cheap] [--recovery precise|cut] [--no-faults] [--no-coordinator-crashes] [--membership|--no-membership] [--changes N] [--kinds add,drain,remove-crashed] [--json] [--bug NAME]`;

function fail(msg: string): never {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(2);
}

const { values } = parseCommandLine(
  {
    options: {
      scenario: { type: 'string', default: 'kvtest' },
      seeds: { type: 'string', default: '100' },
      from: { type: 'string', default: '1' },
      nodes: { type: 'string', default: String(DEFAULT_SIM_OPTIONS.nodes) },
      sessions: { type: 'string', default: String(DEFAULT_SIM_OPTIONS.sessions) },
      requests: { type: 'string', default: String(DEFAULT_SIM_OPTIONS.requestsPerSession) },
      mode: { type: 'string', default: 'speculative' },
      cut: { type: 'string', default: 'exact' },
      recovery: { type: 'string', default: 'precise' },
      'no-faults': { type: 'boolean', default: false },
      'no-coordinator-crashes': { type: 'boolean', default: false },
      membership: { type: 'boolean' },
      'no-membership': { type: 'boolean', default: false },
      changes: { type: 'string' },
      kinds: { type: 'string' },
      json: { type: 'boolean', default: false },
      bug: { type: 'string' },
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
const seeds = Number(values.seeds);
const from = Number(values.from);
if (!Number.isInteger(seeds) || seeds < 1) fail(`--seeds must be a positive integer, not ${values.seeds}`);
if (!Number.isInteger(from) || from < 0) fail(`--from must be a non-negative integer, not ${values.from}`);
const nodes = Number(values.nodes);
const sessionCount = Number(values.sessions);
const requests = Number(values.requests);
// Node ids are n1..nN; beyond MAX_NODES a run takes minutes a seed (the checker and every scenario are tested up to 256).
if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) fail(`--nodes must be an integer from 1 to ${MAX_NODES}, not ${values.nodes}`);
if (!Number.isInteger(sessionCount) || sessionCount < 1) fail(`--sessions must be a positive integer, not ${values.sessions}`);
if (!Number.isInteger(requests) || requests < 1) fail(`--requests must be a positive integer, not ${values.requests}`);
if (!MODES.includes(values.mode as Mode)) fail(`--mode must be one of ${MODES.join(', ')}, not ${values.mode}`);
if (!CUT_KINDS.includes(values.cut as CutKind)) fail(`--cut must be one of ${CUT_KINDS.join(', ')}, not ${values.cut}`);
if (!RECOVERY_KINDS.includes(values.recovery as RecoveryKind)) fail(`--recovery must be one of ${RECOVERY_KINDS.join(', ')}, not ${values.recovery}`);
if (!SCENARIO_NAMES.includes(values.scenario as ScenarioName)) fail(`--scenario must be one of ${SCENARIO_NAMES.join(', ')}, not ${values.scenario}`);
const scenario = values.scenario as ScenarioName;
// Membership changes are part of the fault schedule of every service scenario (off with --no-membership or --no-faults).
if (values.membership === true && values['no-membership']) fail('--membership and --no-membership contradict each other');
const membership = values.membership ?? (scenario !== 'kvtest' && !values['no-faults'] && !values['no-membership'] && nodes >= 2);
if (membership && scenario === 'kvtest') fail('--membership needs a service scenario (kv, wal, broker, workflow)');
if (membership && nodes < 2) fail('--membership needs at least 2 nodes (one joins later)');
const changes = values.changes === undefined ? undefined : Number(values.changes);
const KINDS: readonly MembershipChangeKind[] = ['add', 'drain', 'remove-crashed'];
const kinds = values.kinds === undefined ? undefined : (values.kinds.split(',') as MembershipChangeKind[]);
if (kinds !== undefined && (kinds.length === 0 || kinds.some((k) => !KINDS.includes(k)))) fail(`--kinds must be a comma-separated list of ${KINDS.join(', ')}`);
if (changes !== undefined && (!Number.isInteger(changes) || changes < 0)) fail(`--changes must be a non-negative integer, not ${values.changes}`);
if (values.bug !== undefined && !PLANTED_BUGS.includes(values.bug as PlantedBug)) fail(`--bug must be one of ${PLANTED_BUGS.join(', ')}`);

const totals = emptyTotals();
const failedSeeds: number[] = [];
const started = performance.now();
const progress = !values.json || process.stderr.isTTY;
let firstFailure: SimResult | null = null;

for (let seed = from; seed < from + seeds; seed++) {
  const r = await runSeed({
    ...DEFAULT_SIM_OPTIONS,
    seed,
    scenario,
    nodes,
    sessions: sessionCount,
    requestsPerSession: requests,
    mode: values.mode as Mode,
    cutKind: values.cut as CutKind,
    recovery: values.recovery as RecoveryKind,
    faults: !values['no-faults'],
    coordinatorCrashes: !values['no-coordinator-crashes'],
    plantedBug: values.bug as PlantedBug | undefined,
    membership,
    ...(changes !== undefined ? { membershipChanges: changes } : {}),
    ...(kinds !== undefined ? { membershipKinds: kinds } : {}),
  });
  addResult(totals, r);
  if (r.violations.length > 0) {
    failedSeeds.push(seed);
    if (firstFailure === null) {
      firstFailure = r;
      const v = r.violations[0]!;
      process.stderr.write(`\nseed ${seed}: ${v.invariant} violated at t=${v.t.toFixed(1)}: ${v.message}\n`);
      for (const other of r.violations.slice(1, 5)) process.stderr.write(`  also ${other.invariant}: ${other.message}\n`);
      process.stderr.write(`trace (last events):\n${r.trace.map((l) => `  ${l}`).join('\n')}\n`);
      const size = `${nodes !== DEFAULT_SIM_OPTIONS.nodes ? ` --nodes ${nodes}` : ''}${sessionCount !== DEFAULT_SIM_OPTIONS.sessions ? ` --sessions ${sessionCount}` : ''}${requests !== DEFAULT_SIM_OPTIONS.requestsPerSession ? ` --requests ${requests}` : ''}`;
      const extra = `${size}${scenario === 'kvtest' ? '' : ` --scenario ${scenario}`}${values['no-faults'] ? ' --no-faults' : ''}${values['no-coordinator-crashes'] ? ' --no-coordinator-crashes' : ''}${membership ? ' --membership' : scenario !== 'kvtest' && !values['no-faults'] ? ' --no-membership' : ''}${changes !== undefined ? ` --changes ${changes}` : ''}${kinds !== undefined ? ` --kinds ${kinds.join(',')}` : ''}${values.bug !== undefined ? ` --bug ${values.bug}` : ''}`;
      process.stderr.write(
        `reproduce: npm run sim -- --seeds 1 --from ${seed} --mode ${values.mode} --cut ${values.cut} --recovery ${values.recovery}${extra}\n`,
      );
    }
  }
  if (progress && (seed - from) % 10 === 9) {
    const done = seed - from + 1;
    const rate = (done / (performance.now() - started)) * 60_000;
    process.stderr.write(`\r${done}/${seeds} seeds, ${totals.violations} violations, ${Math.round(rate)} seeds/min   `);
  }
}
if (progress) process.stderr.write('\n');
const elapsedMs = performance.now() - started;
const summary = {
  ...totals,
  scenario,
  nodes,
  sessions: sessionCount,
  requestsPerSession: requests,
  mode: values.mode,
  cut: values.cut,
  recovery: values.recovery,
  faults: !values['no-faults'],
  membership,
  failedSeeds: failedSeeds.slice(0, 50),
  seedsPerMinute: Math.round((totals.seeds / elapsedMs) * 60_000),
  elapsedMs: Math.round(elapsedMs),
};
if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else {
  process.stdout.write(
    `${totals.seeds} seeds (${scenario}, ${nodes} nodes, ${values.mode}, ${values.cut} cut, ${values.recovery} recovery, faults ${summary.faults ? 'on' : 'off'}${membership ? `, ${totals.membershipChanges} membership changes, ${totals.quietLeaves} quiet leaves, ${totals.interruptedChanges} changes interrupted (${totals.nodesBroughtForward} nodes brought forward)` : ''}): ${totals.violations} violations; ` +
      `${totals.requests} requests, ${totals.committed} committed, ${totals.rolledBack} rolled back; ${totals.kills} kills, ${totals.coordinatorRestarts} coordinator restarts, ${totals.rollbacks} rollbacks; ` +
      `versions kept ${totals.versionsKept}, rolled back ${totals.versionsRolledBack}; ` +
      `${summary.seedsPerMinute} seeds/min\n`,
  );
}
process.exit(totals.violations > 0 ? 1 : 0);
