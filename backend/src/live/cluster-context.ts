import type { ChildProcess } from 'node:child_process';
import type { ClusterConfig, InspectionEvent, Limits, NodeId, WorldLine } from '@dse/shared';
import type { Coordinator } from '../core/coordinator';
import type { CheckpointRecord } from '../core/ports';
import type { LogFn } from '../log';
import type { OpenedStorage } from '../storage/open';
import type { RealClock } from './clock';
import { wallNow } from './clock';
import type { NodeConnection } from './wire';

export interface ClusterOptions {
  storage: OpenedStorage;
  config: ClusterConfig;
  limits: Limits;
  /** The app node processes run (by name, see `apps.ts`). */
  app: string;
  /** Where spawned node processes connect (known once the server listens). */
  serverUrl: () => string;
  token: string | null;
  /** Every inspection event of the cluster, in order (node events arrive in frames, see `UpFrame`). */
  emit: (e: InspectionEvent) => void;
  log: LogFn;
  /** Show node processes' stderr in the server's (default true). */
  nodeStderr?: boolean;
  /** A node process's JSON log line, passed on as it is (default: its message and fields through `log`). */
  nodeLogLine?: (line: string) => void;
  /** Called with every batch of checkpoints the storage made durable (a checker's ground truth). */
  onDurable?: (records: readonly CheckpointRecord[]) => void;
}

export interface NodeEntry {
  id: NodeId;
  origin: 'local' | 'remote';
  /** The spawned process, while it runs. */
  proc: ChildProcess | null;
  pid: number | null;
  /** The current process's connection, once it joined. */
  conn: NodeConnection | null;
  /** The incarnation the server expects to join (local nodes). */
  incarnation: string | null;
  starts: number;
  /** The server killed the current process (kill, remove, heartbeat): its exit is reported as `killed`. */
  killing: boolean;
  /** Start a new process when the current one exits (restart of a running node). */
  respawn: boolean;
  removed: boolean;
  /** Removed after it left quietly (`DseNode.leave`): its stop is no failure. */
  left: boolean;
  lastHeard: number;
  restartTimer: NodeJS.Timeout | null;
  // What the node last reported (from its events).
  version: number;
  persistedVersion: number;
  worldLine: WorldLine;
  /** The world-line the node last restored into; `recovering` until it matches the coordinator's. */
  restoredWorldLine: WorldLine;
  /** Where its peers reach the current process (its data-plane listener), once it joined. */
  address: { host: string; port: number } | null;
}

export function newEntry(id: NodeId, origin: 'local' | 'remote'): NodeEntry {
  return {
    id,
    origin,
    proc: null,
    pid: null,
    conn: null,
    incarnation: null,
    starts: 0,
    killing: false,
    respawn: false,
    removed: false,
    left: false,
    lastHeard: wallNow(),
    restartTimer: null,
    version: 0,
    persistedVersion: 0,
    worldLine: 0,
    restoredWorldLine: 0,
    address: null,
  };
}

/**
 * What the parts of the live cluster (gateway, supervisor, router, coordinator host) share. The
 * `Cluster` facade makes one; the config and the coordinator are functions because both are replaced
 * while the cluster runs (a patch, a mode change, a coordinator's fatal error).
 */
export interface ClusterContext {
  readonly opts: ClusterOptions;
  readonly clock: RealClock;
  /** Every node the server knows, removed ones included until their process is gone. */
  readonly nodes: Map<NodeId, NodeEntry>;
  config(): ClusterConfig;
  coordinator(): Coordinator;
  shuttingDown(): boolean;
  /** The cluster's first members (the placement of version 0). */
  founders(): readonly NodeId[];
  /** A node joined from elsewhere under a new id: it is made a member (in the background). */
  remoteNodeAdded(id: NodeId): void;
}
