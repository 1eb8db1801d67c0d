import type {
  Cut,
  Deps,
  Json,
  MessageKind,
  Mode,
  NodeId,
  LiveNodeStatus,
  RecoveryKind,
  RolledBackVersions,
  Version,
  VersionRef,
  WorldLine,
  WorldLineReason,
} from '@dse/shared';
import type { MigrationMoves } from './placement';

/** What the playground's model holds: versions, messages, nodes, world-lines, recoveries, sessions, membership. */

export type VersionState = 'speculative' | 'persisting' | 'committed' | 'rolled-back';

export interface VersionView {
  key: string;
  node: NodeId;
  worldLine: WorldLine;
  version: Version;
  prevVersion: Version;
  openedAt: number;
  /** When the node left this version (checkpoint or jump); null while it is the open version. */
  closedAt: number | null;
  state: VersionState;
  /** The checkpoint started (the version was closed and is being written). */
  checkpointAt: number | null;
  persistedAt: number | null;
  committedAt: number | null;
  rolledBackAt: number | null;
  /** The world-line whose recovery discarded it. */
  rolledBackBy: WorldLine | null;
  /** The latest world-line whose recovery kept it though it was uncommitted (precise recovery). */
  keptBy: WorldLine | null;
  checkpointFailures: number;
  changedKeys: number | null;
  /** Cross-node dependencies recorded in this version: node → highest version depended on. */
  deps: Deps;
}

export interface MessageView {
  uid: number;
  id: string;
  kind: MessageKind;
  from: string;
  to: string;
  worldLine: WorldLine;
  srcVersion: Version;
  resend: boolean;
  sentAt: number;
  deliveredAt: number | null;
  deliveredVersion: Version | null;
  duplicate: boolean;
  rejectedAt: number | null;
  receiverWorldLine: WorldLine | null;
  /** Its sender reported it lost by the network: the receiver was down or not joined (no connection), or the configured loss took it. */
  lostAt: number | null;
  lostReason: 'down' | 'loss' | null;
  /** Sent again later (same id) before this copy was seen arriving. */
  superseded: boolean;
  /** What the app says the message is ("hand-off v3: 5 units"), or null for an ordinary one. */
  label: string | null;
}

export interface StateChange {
  worldLine: WorldLine;
  version: Version;
  set: Record<string, Json>;
  deleted: string[];
}

export interface NodeView {
  id: NodeId;
  status: LiveNodeStatus;
  pid: number | null;
  version: Version;
  persistedVersion: Version;
  committedVersion: Version;
  worldLine: WorldLine;
  failures: number;
  starts: number;
  removed: boolean;
  /** The node's latest state change (its app state itself is in the model's `appState`). */
  lastChange: StateChange | null;
}

export interface WorldLineView {
  worldLine: WorldLine;
  startAt: number;
  cut: Cut;
  failed: NodeId[];
  /** Each node's restore point: the cut, or above it where precise recovery kept uncommitted versions. */
  kept: Cut;
  /** Null in traces recorded before world-lines carried their reason and recovery kind. */
  reason: WorldLineReason | null;
  recovery: RecoveryKind | null;
}

/** The coordinator's account of one recovery (its `recoveryPlan` event). */
export interface RecoveryPlanView {
  recovery: RecoveryKind;
  lost: VersionRef[];
  rolledBack: RolledBackVersions[];
  kept: VersionRef[];
}

/** What one recovery discarded, and what it kept. */
export interface RollbackRecord {
  worldLine: WorldLine;
  t: number;
  failed: NodeId[];
  cut: Cut;
  reason: WorldLineReason | null;
  recovery: RecoveryKind | null;
  /** Versions lost with the failed nodes (above a failed node's restore point): the causes. */
  roots: string[];
  /** Every version this recovery discarded, in the order the events reported it. */
  discarded: string[];
  /** Null for traces recorded before recoveries reported their plan: the "why" is then derived from dependencies. */
  plan: RecoveryPlanView | null;
  /** Uncommitted versions the plan kept (they commit later, in this world-line). */
  kept: string[];
}

/** The placement the server routes by: its version and members (snapshot, then `placementChanged`). */
export interface PlacementInfo {
  version: number;
  members: NodeId[];
}

/** One membership change, from its `placementChanged` events. */
export interface MigrationView {
  version: number;
  /** What for: `join n5`, `drain n2`, `restore n3`. */
  change: string;
  members: NodeId[];
  /** The members before, when the page knew them. */
  prevMembers: NodeId[] | null;
  phase: 'sent' | 'committed' | 'handedOver';
  sentAt: number | null;
  committedAt: number | null;
  handedOverAt: number | null;
  /**
   * What moved, fixed a little after every hand-off arrived (the receivers' state reaches the page when
   * they close a version); null until then: measure it live with `migrationMoves`.
   */
  moves: MigrationMoves | null;
}

/** Versions dropped from the diagram to keep memory flat: only their counts remain. */
export interface CompressedHistory {
  versions: number;
  committed: number;
  rolledBack: number;
  fromT: number;
  toT: number;
}

export interface SessionRequestView {
  session: string;
  seq: number;
  /** When the session first sent it (from the request's message id, when it has the session's form). */
  sentAt: number | null;
  /** The cluster's mode when the answer came. */
  mode: Mode | null;
  speculativeAt: number | null;
  committedAt: number | null;
  rolledBackAt: number | null;
}

export interface ModelLimits {
  versionsPerNodeMax: number;
  messagesMax: number;
  eventsMax: number;
  rollbackRecordsMax: number;
  sessionRequestsMax: number;
  stateChangesPerNodeMax: number;
  cutHistoryMax: number;
  /** World-lines remembered (their bands in the diagram); older ones are forgotten. */
  worldLinesMax: number;
}

export const DEFAULT_MODEL_LIMITS: ModelLimits = {
  versionsPerNodeMax: 240,
  messagesMax: 1500,
  eventsMax: 20_000,
  rollbackRecordsMax: 20,
  sessionRequestsMax: 2000,
  stateChangesPerNodeMax: 200,
  cutHistoryMax: 2000,
  worldLinesMax: 200,
};

/** Why a world-line started, in a few words: "n2 failed", "coordinator restarted", "mode change". */
export function worldLineCause(w: { worldLine: WorldLine; reason: WorldLineReason | null; failed: readonly NodeId[] }): string {
  const failed = w.failed.length > 0 ? `${w.failed.join(', ')} failed` : null;
  switch (w.reason) {
    case 'start':
      return 'start';
    case 'failure':
      return failed ?? 'failure';
    case 'coordinatorRestart':
      return failed === null ? 'coordinator restarted' : `coordinator restarted; ${failed}`;
    case 'modeChange':
      return 'mode change';
    case 'nodeRemoved':
      return w.failed.length > 0 ? `${w.failed.join(', ')} removed` : 'node removed';
    case null:
      // An older trace: only the failed nodes are told.
      return failed ?? (w.worldLine === 1 ? 'start' : 'recovery');
  }
}

export function versionKey(node: NodeId, worldLine: WorldLine, version: Version): string {
  return `${node}|${worldLine}|${version}`;
}
