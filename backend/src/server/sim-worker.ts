/**
 * Runs one seeded simulation in its own process (a run is CPU-bound; in the server's process it would
 * stall the live cluster's heartbeats) and prints a `SimulateResult` as JSON on stdout.
 * Usage: node --import tsx sim-worker.ts '<SimulateBody as JSON>'
 */
import type { InspectionEvent, SimulateBody, SimulateResult } from '@dse/shared';
import { DEFAULT_SIM_OPTIONS, runSeed } from '../sim/world';

export const SIM_EVENTS_MAX = 200_000;

const body = JSON.parse(process.argv[2] ?? '{}') as SimulateBody;
const events: InspectionEvent[] = [];
let truncated = false;
const r = await runSeed({
  ...DEFAULT_SIM_OPTIONS,
  seed: body.seed,
  mode: body.mode ?? DEFAULT_SIM_OPTIONS.mode,
  cutKind: body.cut ?? DEFAULT_SIM_OPTIONS.cutKind,
  recovery: body.recovery ?? DEFAULT_SIM_OPTIONS.recovery,
  faults: body.faults ?? DEFAULT_SIM_OPTIONS.faults,
  nodes: body.nodes ?? DEFAULT_SIM_OPTIONS.nodes,
  sessions: body.sessions ?? DEFAULT_SIM_OPTIONS.sessions,
  requestsPerSession: body.requestsPerSession ?? DEFAULT_SIM_OPTIONS.requestsPerSession,
  // The replay shows each node's state, as the live view does.
  emitStateChanges: true,
  onEvent: (e) => {
    if (events.length < SIM_EVENTS_MAX) events.push(e);
    else truncated = true;
  },
});
const out: SimulateResult = {
  seed: r.seed,
  violations: r.violations.map((v) => ({ invariant: v.invariant, message: v.message, t: v.t })),
  requests: r.requests,
  committed: r.committed,
  rolledBack: r.rolledBack,
  kills: r.kills,
  worldLines: r.worldLines,
  versionsKept: r.versionsKept,
  versionsRolledBack: r.versionsRolledBack,
  coordinatorRestarts: r.coordinatorRestarts,
  events,
  truncated,
};
process.stdout.write(JSON.stringify(out));
