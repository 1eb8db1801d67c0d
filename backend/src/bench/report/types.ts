import type { Mode } from '@dse/shared';
import type { Histogram, Percentiles } from './stats';

/**
 * The benchmark's result: the last line of `npm run bench` (one JSON object) and the `.json` file
 * next to the HTML report. The playground's latency race can read the same shape (see the README's
 * Performance section).
 */
export interface BenchResult {
  /** Shape version of this object. */
  schema: 1;
  storage: 'postgres' | 'pglite';
  /** Where the data lived (no password). */
  storageDescribe: string;
  /** Added to every storage commit on top of the real one: a model of a slower (cloud) disk, not measured. */
  storageDelayMs: number;
  storageDelayModelled: true;
  quick: boolean;
  /** The command line that produced this result. */
  command: string;
  startedAt: string;
  elapsedMs: number;
  machine: { cpus: number; loadAvg1m: number; node: string; platform: string };
  /** `processes`: one OS process per node and a server; `embedded`: everything in the benchmark's process. */
  deployment: 'processes' | 'embedded';
  /** What the nodes report to the observer: `full` (every message), `summary`, or `off` (embedded: off). */
  observation: 'full' | 'summary' | 'off';
  cluster: { nodes: number; rounds: number; checkpointIntervalMs: number; cut: 'exact' | 'cheap'; relay: string };
  /** Durable-execution engines measured in the same run, same storage, same step counts (interleaved rounds). */
  peers: PeerRow[];
  /** Why a peer was not measured (PGlite: DBOS needs a PostgreSQL server; `--peers none`). */
  peersSkipped: string | null;
  /** End to end, request → the workflow's speculative outcome; every step is a round trip to another node process. */
  workflow: WorkflowRow[];
  /** Request → the outcome committed (durable), in the modes that commit. */
  workflowCommit: WorkflowRow[];
  /** Key-value store at saturation (closed loop, `sessions` concurrent sessions). */
  kv: KvRow[];
  /** Key-value store at fixed offered loads (open loop; latency counted from the planned send time). */
  kvLoad: KvLoadRow[];
  recovery: RecoveryResult;
  /** CPU use per mode and phase, in % of one core: where the time goes. */
  cpu: CpuRow[];
  /** Ratios the goals are stated in (from this one run). */
  ratios: Ratios;
  goals: GoalCheck[];
}

/** A workflow latency row: its percentiles (`n`, `p50Ms` … `maxMs`) and histogram. */
export interface WorkflowRow extends Percentiles {
  steps: number;
  mode: Mode;
  /** Log-spaced latency histogram (for a distribution chart). */
  hist: Histogram;
}

/** A peer's workflow of `steps` steps, each one persisted before the next runs: request → durable result. */
export interface PeerRow {
  name: 'dbos';
  /** The peer's version, as installed. */
  version: string;
  steps: number;
  n: number;
  p50Ms: number;
  p99Ms: number;
}

export interface KvRow {
  mode: Mode;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  n: number;
  sessions: number;
  seconds: number;
  /** Requests that failed (rolled back, refused); not counted in opsPerSec. */
  errors: number;
}

export interface KvLoadRow {
  mode: Mode;
  offeredOpsPerSec: number;
  achievedOpsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  n: number;
  /** Arrivals not sent because too many requests were outstanding (overload). */
  dropped: number;
  seconds: number;
}

export interface RecoveryKill {
  victim: string;
  detectMs: number;
  worldLineMs: number;
  killToFirstCommitMs: number;
  rolledBackVersions: number;
  /** No commit within the limit (30 s): the time is a lower bound. */
  stalled: boolean;
}

export interface RecoveryResult {
  mode: 'speculative';
  checkpointIntervalMs: number;
  kills: number;
  /** Medians over the kills. */
  killToFirstCommitMs: number;
  rolledBackVersions: number;
  detectMs: number;
  maxKillToFirstCommitMs: number;
  /** Kills after which nothing committed within 30 s (counted in the median at 30 s). */
  stalls: number;
  each: RecoveryKill[];
}

export interface CpuRow {
  mode: Mode;
  phase: 'workflow' | 'kv-saturation';
  /** The server process: control plane, coordinator, sessions, storage client on PGlite (and PGlite itself, in a worker thread). */
  serverCpuPct: number;
  /** All node processes together; null where /proc cannot be read. */
  nodesCpuPct: number | null;
  wallMs: number;
  /** Event-loop delay of the server process (the session host and the coordinator run on it), over the phase: p99 and max (worst round). */
  serverLoopDelayP99Ms: number;
  serverLoopDelayMaxMs: number;
}

export interface Ratios {
  /** At 5 steps: durable p50 / speculative p50. */
  durableOverSpeculativeP50At5: number | null;
  /** At 5 steps: speculative p50 / none p50. */
  speculativeOverNoneP50At5: number | null;
  /** speculative ops/s / none ops/s at saturation. */
  kvSpeculativeOverNoneThroughput: number | null;
  /** At 5 steps: speculative commit p50 / speculative answer p50. */
  commitOverAnswerP50At5: number | null;
  /** At 5 steps: the peer's (DBOS) p50 / speculative answer p50: how much sooner DSE answers. */
  peerOverSpeculativeP50At5: number | null;
  /** At 5 steps: the peer's p50 / speculative committed p50: above 1, DSE commits sooner than the peer executes durably. */
  peerOverCommitP50At5: number | null;
}

export interface GoalCheck {
  goal: string;
  value: number | null;
  target: string;
  met: boolean | null;
}
