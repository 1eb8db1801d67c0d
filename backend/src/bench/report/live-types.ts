import type { NodeId } from '@dse/shared';
import type { ServerMemory } from '../live/memory';

/** One reading of the soak (`bench:soak`). */
export interface SoakSample {
  /** Minutes since the cluster came up. */
  tMin: number;
  server: ServerMemory;
  /** Resident set of each node process (MB); null while it has none (killed, restarting). */
  nodes: Record<NodeId, number | null>;
  rows: number | null;
  tableBytes: number | null;
  folderBytes: number | null;
  /** The server's event-loop delay since the previous sample. */
  loopP50Ms: number;
  loopP99Ms: number;
  loopMaxMs: number;
  worldLine: number;
  kills: number;
  load1m: number;
}

export interface SoakResult {
  schema: 1;
  kind: 'soak';
  command: string;
  /** The server and its node processes ran from the build (compiled JavaScript), not under tsx. */
  compiled: boolean;
  startedAt: string;
  elapsedMs: number;
  machine: { cpus: number; node: string; platform: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  storage: 'pglite' | 'postgres';
  storageDescribe: string;
  nodes: number;
  /** The first `spare` nodes are never killed. */
  spare: number;
  minutes: number;
  killEveryS: number;
  sampleS: number;
  warmupMin: number;
  workload: { kind: string; rate: number };
  kills: { tMin: number; victim: NodeId; killToFirstCommitMs: number | null }[];
  recovery: { n: number; medianMs: number | null; maxMs: number | null; stalls: number };
  /** Least-squares slopes per hour over the samples after the warm-up (a killed node's: over its last life, when that lasted 10 minutes or more; else null). */
  slopesPerHour: {
    spanMin: number;
    serverRssMb: number | null;
    serverHeapUsedMb: number | null;
    nodesRssMb: Record<NodeId, number | null>;
    rows: number | null;
    tableMb: number | null;
    folderMb: number | null;
  };
  storageBound: {
    maxRowsFirstHalf: number | null;
    maxRowsSecondHalf: number | null;
    lastRows: number | null;
    lastTableBytes: number | null;
    lastFolderBytes: number | null;
  };
  loopDelay: { p99MedianMs: number; p99MaxMs: number; maxMs: number };
  serverLogTail: string[];
  samples: SoakSample[];
}

/** One cluster size of `bench:scale`. */
export interface ScaleRow {
  nodes: number;
  /** startServer → every node process up (joined, restored, running). */
  startupMs: number;
  /** Node processes that exited during start-up (a join unanswered on a slow machine) and were started again. */
  startupRestarts: number;
  /** After the settle time, before any load. */
  serverIdle: ServerMemory;
  /** Each node process's resident set after the settle time (MB). */
  nodeRssMb: number[];
  nodeRssMedianMb: number;
  nodeRssMaxMb: number;
  /** Each node process's private memory (anonymous resident pages: without the Node binary's pages, which every process shares), median (MB). */
  nodePrivateMedianMb: number;
  /** After the key-value load and the kills. */
  serverAfter: ServerMemory;
  kv: { sessions: number; seconds: number; opsPerSec: number; p50Ms: number; p99Ms: number; errors: number };
  recovery: { kills: number; medianMs: number; maxMs: number; detectMedianMs: number; stalls: number };
  loadAvg1m: number;
}

export interface ScaleResult {
  schema: 1;
  kind: 'scale';
  command: string;
  compiled: boolean;
  startedAt: string;
  elapsedMs: number;
  machine: { cpus: number; node: string; platform: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  storage: 'pglite' | 'postgres';
  checkpointIntervalMs: number;
  settleS: number;
  rows: ScaleRow[];
  /** Sizes that could not be measured, and why. */
  failed: { nodes: number; error: string }[];
  goals: { goal: string; value: number | null; target: string; met: boolean | null }[];
}
