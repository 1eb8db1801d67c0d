import type { InspectionEvent, Mode, NodeId, Version } from '@dse/shared';
import type { App } from '../core/app';
import type { Session, SessionHost } from '../core/session';
import type { PlacementView } from '../services/common';
import type { Checker, NodeView, RequestOutcome } from './checker';
import type { Rng } from './rng';

/** The scenarios the simulator runs: its own test app, and the four services. */
export type ScenarioName = 'kvtest' | 'wal' | 'kv' | 'broker' | 'workflow';
export const SCENARIO_NAMES: readonly ScenarioName[] = ['kvtest', 'wal', 'kv', 'broker', 'workflow'];

/** What a scenario's workload gets from the simulated world. */
export interface WorkloadEnv {
  /** The run's one seeded random source: draw from it only in the order the run proceeds. */
  rng: Rng;
  /** The nodes the services are spread over at the start (with membership: the founders). */
  nodes: readonly NodeId[];
  /**
   * With membership changes (`SimOptions.membership`): the placement every client of the run routes by
   * and learns from `WrongOwner` answers (one object, shared), and the members as the membership actor
   * last changed them (at the end: the final members, the units' owners). Absent: `nodes`, never changing.
   */
  placement?: PlacementView;
  members?: () => readonly NodeId[];
  host: SessionHost;
  mode: Mode;
  sessions: number;
  requestsPerSession: number;
  /** Resolves after `ms` of virtual time. */
  sleep(ms: number): Promise<void>;
}

/**
 * A scenario's own invariants, on top of the six generic ones (liveness and prefix per session are
 * checked by the checker for every scenario). Each hook reports through `c.fail`.
 */
export interface ScenarioChecks {
  onEvent?(c: Checker, e: InspectionEvent): void;
  /** A node has just restored to `toVersion` (its state is the restored one). */
  onRestored?(c: Checker, node: NodeId, toVersion: Version, view: NodeView, t: number): void;
  /** At the end, after faults stopped and the run settled (or gave up settling). */
  finish(c: Checker, t: number, outcomes: readonly RequestOutcome[], views: ReadonlyMap<NodeId, NodeView>, expectLiveness: boolean): void;
}

/** One run of a scenario: created before the world starts, started once nodes and sessions exist. */
export interface ScenarioRun {
  readonly checks: ScenarioChecks;
  /** Starts the workload (no random draws before this call); returns the sessions it uses. */
  start(env: WorkloadEnv): Session[];
  /** True once every session of the workload has done its work. */
  done(): boolean;
}

/** A scenario: the app every node runs, the workload, and its own invariants. */
export interface Scenario {
  readonly name: ScenarioName;
  readonly app: App;
  /** Virtual milliseconds the workload roughly takes: crashes are drawn within it. */
  workloadMs(requestsPerSession: number): number;
  createRun(): ScenarioRun;
}
