import { ClusterConfigSchema, WorkloadConfigSchema } from './config';
import { MODES, RECOVERY_KINDS } from './protocol';
import { bool, discriminatorError, json, list, map, num, oneOf, reply, str, z } from './schema';

/**
 * The inspection stream: every state change of the runtime, in order. The simulator's checker, the
 * server's history and the playground all read this one stream. Each event is a schema (trace files
 * are checked with them); the types are inferred from the schemas.
 */
export const MESSAGE_KINDS = ['app', 'ack', 'request', 'reply', 'reject'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

const kind = () => oneOf(MESSAGE_KINDS);
const int = () => num(true);
const versionMap = () => map(num(true), 'a map of node ids to versions');
/** Values in events come from the runtime, which bounds them already. */
const anyJson = () => json(Infinity);

/** One event: its `type`, its clock time `t` (milliseconds), and its fields. */
function event<T extends string, S extends z.ZodRawShape>(type: T, shape: S) {
  return reply({ type: z.literal(type), t: num(), ...shape });
}

/** One version of one node. */
export const VersionRefSchema = reply({ node: str(), version: int() });
export type VersionRef = z.infer<typeof VersionRefSchema>;

/** Why a world-line started. */
/** `nodeRemoved`: a removed node's versions above the cut are rolled back, with what depends on them. */
export const WORLD_LINE_REASONS = ['start', 'failure', 'coordinatorRestart', 'modeChange', 'nodeRemoved'] as const;
export type WorldLineReason = (typeof WORLD_LINE_REASONS)[number];

/** What a recovery rolled back on one node, and why. */
export const RolledBackVersionsSchema = reply({
  node: str(),
  /** Everything of the node above this version was rolled back (its restore point). */
  above: int(),
  /** The rolled-back versions the coordinator knew of, ascending (a failed node's unpersisted ones are not known one by one). */
  versions: list(int()),
  /**
   * `lost`: the node failed and these versions were not persisted. `dependency`: the node's first
   * rolled-back version depends on lost state, through `path`. `cut`: recovery `cut` rolls back
   * everything uncommitted, whatever it depends on.
   */
  reason: oneOf(['lost', 'dependency', 'cut']),
  /**
   * From the node's first rolled-back version to a lost version: each step is a dependency recorded by
   * the step before it (or the same node's earlier version). Empty unless `reason` is `dependency`.
   */
  path: list(VersionRefSchema),
});
export type RolledBackVersions = z.infer<typeof RolledBackVersionsSchema>;

const message = { id: str(), kind: kind(), from: str(), to: str() };

/** One schema per type of event. */
const EVENT_SCHEMAS = [
  event('versionOpened', { node: str(), worldLine: int(), version: int(), prevVersion: int() }),
  // label: what an app message is, for people (a hand-off of units between nodes), when the app says.
  event('messageSent', { ...message, worldLine: int(), srcVersion: int(), seq: int(), resend: bool(), label: str().optional() }),
  event('messageDelivered', { ...message, version: int(), duplicate: bool() }),
  event('messageRejected', { ...message, worldLine: int(), receiverWorldLine: int() }),
  event('dependencyRecorded', { node: str(), version: int(), on: versionMap() }),
  event('checkpointStarted', {
    node: str(),
    worldLine: int(),
    version: int(),
    prevVersion: int(),
    deps: versionMap(),
    changedKeys: int(),
    full: bool(),
  }),
  event('checkpointPersisted', { node: str(), worldLine: int(), version: int(), deps: versionMap() }),
  event('checkpointFailed', { node: str(), worldLine: int(), version: int(), code: str(), definite: bool() }),
  event('cutAdvanced', { worldLine: int(), cut: versionMap() }),
  event('nodeFailed', { node: str(), reason: oneOf(['exit', 'heartbeat', 'restart', 'killed']) }),
  event('nodeRestarted', { node: str() }),
  event('worldLineChanged', {
    worldLine: int(),
    cut: versionMap(),
    failed: list(str()),
    // `kept`, `reason` and `recovery` are absent from the traces of releases before precise recovery
    // (the runtime always sets them; a reader takes a missing `kept` as `cut`).
    /** Each node's restore point: it keeps every version up to this one (the cut, or above it with precise recovery). */
    kept: versionMap().optional(),
    reason: oneOf(WORLD_LINE_REASONS).optional(),
    recovery: oneOf(RECOVERY_KINDS).optional(),
  }),
  /**
   * The coordinator's repair of one recovery, right after its `worldLineChanged`: what was lost, what
   * rolled back and why, and which uncommitted versions were kept.
   */
  event('recoveryPlan', {
    worldLine: int(),
    recovery: oneOf(RECOVERY_KINDS),
    /** State lost with failed nodes: every version of `node` above `version` (its last persisted one). */
    lost: list(VersionRefSchema),
    rolledBack: list(RolledBackVersionsSchema),
    /** Uncommitted versions that survive onto the new world-line (and commit once persisted). */
    kept: list(VersionRefSchema),
  }),
  event('rollback', {
    node: str(),
    worldLine: int(),
    /** The node's restore point (the cut, or above it with precise recovery); execution continues above it. */
    toVersion: int(),
    /** Versions discarded, inclusive range; null when the node kept everything (or started fresh). */
    discarded: reply({ from: int(), to: int() }).nullable(),
  }),
  event('stateChanged', { node: str(), version: int(), set: map(anyJson()), deleted: list(str()) }),
  event('sessionResult', {
    session: str(),
    seq: int(),
    status: oneOf(['speculative', 'committed', 'rolledBack']),
    result: anyJson(),
    deps: versionMap(),
    worldLine: int(),
  }),
  event('modeChanged', { mode: oneOf(MODES) }),
  // Live cluster only (the server and the node processes emit these; the simulator does not).
  /**
   * A message the network did not deliver, said by its sender: its receiver had no connection (`down`:
   * the node is down or not joined yet), or the configured message loss took it (`loss`). The sender's
   * resends (same id) show as further `messageSent` events.
   */
  event('messageLost', { ...message, reason: oneOf(['down', 'loss']) }),
  event('nodeAdded', { node: str() }),
  /** A node removed for good; `left`: it left quietly (drained, its last version committed: no world-line), not stopped as a failure. */
  event('nodeRemoved', { node: str(), left: bool().optional() }),
  /**
   * A membership change (see `placement.ts`, docs/protocol.md): version `version` over `members` was
   * sent to the nodes (`sent`), its answers committed (`committed`), every hand-off arrived
   * (`handedOver`). `change` says what for: `join n5`, `drain n2`, `restore n3` (a down node's
   * committed state taken over from storage).
   */
  event('placementChanged', { version: int(), members: list(str()), phase: oneOf(['sent', 'committed', 'handedOver']), change: str() }),
  /** A node's OS process: spawned by the server, joined over the network, or exited (code or signal). */
  event('nodeProcess', {
    node: str(),
    pid: int().nullable(),
    state: oneOf(['spawned', 'joined', 'exited']),
    code: int().nullable(),
    signal: str().nullable(),
  }),
  event('configChanged', { config: ClusterConfigSchema }),
  event('workloadChanged', { workload: WorkloadConfigSchema }),
] as const;

export const InspectionEventSchema = z.discriminatedUnion('type', EVENT_SCHEMAS, {
  error: discriminatorError(EVENT_SCHEMAS.map((o) => o.shape.type.value)),
});

export type InspectionEvent = z.infer<typeof InspectionEventSchema>;
export type InspectionEventType = InspectionEvent['type'];

/** Every type of inspection event, from the schema. */
export const INSPECTION_EVENT_TYPES: ReadonlySet<string> = new Set(EVENT_SCHEMAS.map((o) => o.shape.type.value));

/** Event types a node process emits, each about the node itself (the server and the coordinator emit every other type). */
export const NODE_EVENT_TYPES: ReadonlySet<string> = new Set<InspectionEventType>([
  'versionOpened',
  'messageSent',
  'messageDelivered',
  'messageRejected',
  'dependencyRecorded',
  'checkpointStarted',
  'checkpointPersisted',
  'checkpointFailed',
  'rollback',
  'stateChanged',
  'messageLost',
]);
