import type { ErrorBody } from './errors';
import type { InspectionEvent } from './events';
import type { NodeStateBase } from './state-mirror';
import type { Cut, CutKind, Deps, Json, Mode, NodeId, ObservationLevel, RecoveryKind, Version, WorldLine } from './protocol';

/**
 * The live cluster's API: HTTP routes for scripts and the same commands over Socket.IO for the
 * browser, plus the inspection event stream. Every command is validated by the server and answered
 * with `{ok: true, ...}` or `{error: {code, message, definite}}`.
 *
 * HTTP (JSON bodies; `Authorization: Bearer <token>` when the server has a `DSE_TOKEN`):
 *
 * | method and path              | body                 | reply (besides `ok: true`) |
 * | ---------------------------- | -------------------- | -------------------------- |
 * | `GET /api/health`            |                      | —                          |
 * | `GET /api/cluster`           |                      | `ClusterInfo`              |
 * | `GET /api/config`            |                      | `{config, workload, limits}` |
 * | `POST /api/nodes/:id/kill`   |                      | `{node}` (SIGKILL)         |
 * | `POST /api/nodes/:id/restart`|                      | `{node}`                   |
 * | `POST /api/nodes`            | `{id?}`              | `{node}` (added, started)  |
 * | `DELETE /api/nodes/:id`      |                      | `{node}` (stopped, removed)|
 * | `POST /api/config`           | `ConfigPatch`        | `{config}`                 |
 * | `POST /api/workload`         | `WorkloadConfig`     | `{workload}` (rate 0 stops)|
 * | `POST /api/requests`         | `KvRequestBody`      | `RequestInfo`              |
 * | `POST /api/service`          | `ServiceRequestBody` | `ServiceRequestInfo`       |
 * | `GET /api/requests/:id`      |                      | `RequestInfo` or `ServiceRequestInfo` |
 * | `POST /api/sessions/:name/resume` |                 | `{session, resumed}`       |
 * | `POST /api/simulate`         | `SimulateBody`       | `SimulateResult`           |
 *
 * A session with a rolled-back request stays rolled back: `POST /api/requests` (and `/api/service`) on it
 * answer 409 with a definite `SessionRolledBack` error naming the rolled-back request and the last one
 * that survived, until `POST /api/sessions/:name/resume` (or a new session name).
 *
 * HTTP status: 200 with `ok`; 400 BadRequest, 401 Unauthorized, 404 NotFound, 409 Conflict and SessionRolledBack,
 * 413/429 LimitExceeded, 504 Timeout, 500 Internal; the body is always `{error: ErrorBody}`.
 *
 * Socket.IO (same port, default namespace `/`; when the server has a token, pass it as
 * `io(url, {auth: {token}})`, otherwise the connection is refused with an `Unauthorized` error):
 * - server → browser `snapshot` (`StreamSnapshot`): sent on connect, and again (`reason: 'resync'`)
 *   whenever this browser fell behind and its queued events were dropped. Replace the view with it.
 * - server → browser `events` (`EventBatch`, with an acknowledgement callback): numbered events in
 *   order, about every 50 ms. The browser MUST call the callback (`socket.on('events', (b, ack) =>
 *   {...; ack()})`): a browser with too many unacknowledged batches is "slow", its queue is dropped,
 *   and it gets a `resync` snapshot with a notice instead.
 * - server → browser `notice` (`Notice`).
 * - browser → server `command` (`Command`, with a callback receiving the `CommandReply`).
 *
 * Node processes use the `/node` namespace (see `backend/src/live`); browsers never do.
 */

// ------------------------------------------------------------------ cluster state

export type LiveNodeStatus = 'up' | 'down' | 'recovering';

export interface NodeInfo {
  id: NodeId;
  /** `up`: running; `recovering`: process running, restoring its cut version; `down`: no process. */
  status: LiveNodeStatus;
  /** The OS process id, null when down (or not known, for a node joined from another host). */
  pid: number | null;
  /** The node's open version, as last reported. */
  version: Version;
  persistedVersion: Version;
  /** The node's entry in the committed cut. */
  committedVersion: Version;
  worldLine: WorldLine;
  /** `local`: spawned by the server; `remote`: joined over the network (`npm run node`). */
  origin: 'local' | 'remote';
  /** Processes started for this node since it was added (1 for the first). */
  starts: number;
  /**
   * While `recovering`, what it waits for: `connecting` (its process has not joined the server yet),
   * `coordinator` (joined; the coordinator has not served its recovery yet, say while a world-line
   * change is saved), `restoring` (told to restore; it has not reported the restored world-line yet).
   */
  waitingFor?: 'connecting' | 'coordinator' | 'restoring';
}

export interface ClusterInfo {
  worldLine: WorldLine;
  mode: Mode;
  cutKind: CutKind;
  cut: Cut;
  nodes: NodeInfo[];
  /** Where the data lives (`describe` of the storage; never a password). */
  storage: string;
  /** Number of the last inspection event emitted. */
  lastEvent: number;
  /** Wall-clock time (ms since 1970) that event times `t` count from. */
  epochMs?: number;
  /** The placement the server routes service requests by: its version and members (see docs/protocol.md, membership). */
  placement?: { version: number; members: NodeId[] };
}

// ------------------------------------------------------------------ configuration

export interface ClusterConfig {
  mode: Mode;
  cut: CutKind;
  /** `precise`: only what depends on lost state rolls back after a failure; `cut`: every node back to the committed cut. Takes effect at the next recovery. */
  recovery: RecoveryKind;
  /** How often a node closes its open version (checkpoint). */
  checkpointIntervalMs: number;
  /** Added to every message between nodes and sessions (by its sender). */
  networkDelayMs: number;
  /** Uniform extra delay in [0, jitter]: messages overtake each other. */
  networkJitterMs: number;
  /** Probability in [0, 1) that a message between nodes and sessions is lost (control messages never are). */
  messageLoss: number;
  /** Restart a node whose process died (killed, crashed, or failed its heartbeats). */
  autoRestart: boolean;
  autoRestartDelayMs: number;
  /** Nodes send a heartbeat this often; one silent for `heartbeatTimeoutMs` is failed and killed. */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  /** What nodes report to the observer (and so what the page can draw): `full`, `summary` or `off`. */
  observation: ObservationLevel;
  /**
   * The cluster holds (a tour's question is asked about a state that stands still): the workload sends
   * nothing, nodes close no version and resend nothing. Messages already in flight still arrive.
   */
  held: boolean;
}

/**
 * Any subset of the settings. `checkpointIntervalMs`, the network settings, `autoRestart` and the
 * heartbeats take effect at once; changing `mode` or `cut` restarts every node process in the new
 * setting (a new world-line starts from the committed cut).
 *
 * Mode `none` persists nothing: the cut it announces covers versions never written, and what it
 * reports `committed` is lost with the process. Switching from `none` back to `speculative` or
 * `durable` therefore starts from the last cut that was persisted before `none`, below what `none`
 * announced: everything done in `none` mode is rolled back.
 */
export type ConfigPatch = Partial<ClusterConfig>;

export type WorkloadKind = 'kv' | 'chain' | 'mixed' | 'wal' | 'kvstore' | 'broker' | 'workflow';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['kv', 'chain', 'mixed', 'wal', 'kvstore', 'broker', 'workflow'];

/**
 * The built-in load generator: `rate` requests a second (0 stops it) over a few sessions.
 * - `kv`: puts and gets of random keys of the small kv app, each on the key's node;
 * - `chain`: puts that the node replicates to one or two other nodes (node-to-node messages, so
 *   versions of several nodes depend on each other and a failure rolls back across nodes);
 * - `mixed`: both;
 * - `wal`: appends (`{i, at}`) to a few logs of the write-ahead-log service (`audit`, `orders`),
 *   now and then a committed-only read;
 * - `kvstore`: put / get / delete / compare-and-set over 16 keys of the kv store service;
 * - `broker`: producers publishing to 2 topics with (producerId, seq), now and then a duplicate
 *   publish (dropped by the broker's dedup); consumers of 2 groups polling (one speculative, one
 *   committed-only);
 * - `workflow`: travel reservations of 1–10 steps; a small share has a declined payment or a
 *   sold-out item, so compensations show.
 */
export interface WorkloadConfig {
  kind: WorkloadKind;
  rate: number;
}

/** Bounds the server enforces; the browser can use them for its controls. */
export interface Limits {
  nodesMax: number;
  bodyBytesMax: number;
  keyLengthMax: number;
  /** Size of a value once JSON-encoded. */
  valueBytesMax: number;
  workloadRateMax: number;
  checkpointIntervalMs: { min: number; max: number };
  networkDelayMs: { min: number; max: number };
  networkJitterMs: { min: number; max: number };
  messageLoss: { min: number; max: number };
  heartbeatIntervalMs: { min: number; max: number };
  heartbeatTimeoutMs: { min: number; max: number };
  autoRestartDelayMs: { min: number; max: number };
  /** Commands a second per client (HTTP address or Socket.IO connection) before `LimitExceeded`. */
  commandsPerSecond: number;
  /** Inspection events the server keeps for late joiners. */
  historyEventsMax: number;
}

// ------------------------------------------------------------------ requests to the key-value app

export interface KvRequestBody {
  /** A session id to continue (letters, digits, `._-`, at most 64); omitted: a new session. */
  session?: string;
  op: 'put' | 'get';
  key: string;
  /** For `put`: any JSON value. */
  value?: Json;
  /** For `get`: read only committed state (from the node's committed checkpoint), not speculative writes. */
  committedOnly?: boolean;
  /**
   * The node to send it to; default: the key's owner under the placement (rendezvous hashing over the
   * members, see `placement.ts`). A node that does not own the key answers `WrongOwner` and the server
   * sends the request on to the owner it names (the request's `seq` is then the later one).
   */
  node?: NodeId;
}

export type RequestStatus = 'speculative' | 'committed' | 'rolled-back';

// ------------------------------------------------------------------ requests to the services

/** The services of the `playground` (and `services`) app: write-ahead log, kv store, broker, workflows. */
export type ServiceName = 'wal' | 'kv' | 'broker' | 'wf';
export const SERVICE_NAMES: readonly ServiceName[] = ['wal', 'kv', 'broker', 'wf'];

export interface ServiceRequestBody {
  /** A session id to continue (letters, digits, `._-`, at most 64); omitted: a new session. */
  session?: string;
  svc: ServiceName;
  /**
   * The service's own request payload, WITHOUT `svc` (the server adds it), e.g.
   * `{op: 'append', log: 'audit', data: {...}}` (see `backend/src/services`). For a committed-only
   * wal `read`/`length` or broker `poll`, give `committed: true`: the server sets `upTo` to the
   * cut's version of the node (an `upTo` of your own is refused). Bounded like a kv value.
   */
  payload: { [k: string]: Json };
  /**
   * The node to send it to; default: the owner under the placement (`placement.ts`): by log for wal,
   * by key for kv, by topic for broker, by workflow id for wf, as the typed clients place it. A node
   * that does not own the unit answers `WrongOwner`; the server follows it to the owner.
   */
  node?: NodeId;
}

export interface ServiceRequestInfo {
  /** Server-assigned id, for `GET /api/requests/:id`. */
  id: string;
  session: string;
  /** The request's number in its session. */
  seq: number;
  node: NodeId;
  svc: ServiceName;
  status: RequestStatus;
  /** The service's answer (a typed refusal is answered as that error instead). */
  result: Json;
  worldLine: WorldLine;
  deps: Deps;
}

export interface RequestInfo {
  /** Server-assigned id, for `GET /api/requests/:id`. */
  id: string;
  session: string;
  /** The request's number in its session. 0 for a `committedOnly` get (no session request). */
  seq: number;
  node: NodeId;
  op: 'put' | 'get';
  key: string;
  status: RequestStatus;
  /** The app's answer: `{key, value}` for a get (value null when absent), `{key, version}` for a put. */
  result: Json;
  worldLine: WorldLine;
  deps: Deps;
}

// ------------------------------------------------------------------ simulation (seeded, in the server)

export interface SimulateBody {
  seed: number;
  mode?: Mode;
  cut?: CutKind;
  /** Default `precise`. */
  recovery?: RecoveryKind;
  faults?: boolean;
  /** 2..8, default 4. */
  nodes?: number;
  /** 1..16, default 8. */
  sessions?: number;
  /** 1..100, default 26. */
  requestsPerSession?: number;
}

export interface SimulateResult {
  seed: number;
  violations: { invariant: string; message: string; t: number }[];
  requests: number;
  committed: number;
  rolledBack: number;
  kills: number;
  worldLines: number;
  /** Uncommitted versions recoveries kept, versions they rolled back, and coordinator restarts (see `npm run sim -- --json`). */
  versionsKept: number;
  versionsRolledBack: number;
  coordinatorRestarts: number;
  /** Every inspection event of the run in order (virtual time `t`); capped, see `truncated`. */
  events: InspectionEvent[];
  truncated: boolean;
}

// ------------------------------------------------------------------ commands (Socket.IO) and replies

export type Command =
  | { type: 'health' }
  | { type: 'cluster' }
  | { type: 'getConfig' }
  | { type: 'kill'; node: NodeId }
  | { type: 'restart'; node: NodeId }
  | { type: 'addNode'; id?: NodeId }
  | { type: 'removeNode'; node: NodeId }
  | { type: 'config'; config: ConfigPatch }
  | { type: 'workload'; workload: WorkloadConfig }
  | ({ type: 'request' } & KvRequestBody)
  | ({ type: 'service' } & ServiceRequestBody)
  | { type: 'getRequest'; id: string }
  /** Acknowledges a session's rollback: it takes requests again (see `SessionRolledBack`). */
  | { type: 'resumeSession'; session: string }
  | ({ type: 'simulate' } & SimulateBody);

export type CommandType = Command['type'];

export interface ConfigInfo {
  config: ClusterConfig;
  workload: WorkloadConfig;
  limits: Limits;
}

/** What each command answers with, besides `ok: true`. */
export interface CommandResults {
  health: object;
  cluster: ClusterInfo;
  getConfig: ConfigInfo;
  kill: { node: NodeId };
  restart: { node: NodeId };
  /** Answered once the node is a member: `version` and `members` of the placement after the change. */
  addNode: { node: NodeId; version: number; members: NodeId[]; how: 'joined' };
  /** `drained`: the node was live and handed its units over before it stopped; `restored`: it was down, and its committed state was taken over from storage. */
  removeNode: { node: NodeId; version: number; members: NodeId[]; how: 'drained' | 'restored' };
  config: { config: ClusterConfig };
  workload: { workload: WorkloadConfig };
  request: RequestInfo;
  service: ServiceRequestInfo;
  /** A kv app request (`op`, `key`) or a service request (`svc`). */
  getRequest: RequestInfo | ServiceRequestInfo;
  /** `resumed`: false when the session was not rolled back (nothing to acknowledge). */
  resumeSession: { session: string; resumed: boolean };
  simulate: SimulateResult;
}

export interface ApiError {
  error: ErrorBody;
  /** For a request that timed out waiting for its answer: its id, to ask for it later. */
  id?: string;
}

export type Ok<T> = { ok: true } & T;
export type ApiReply<T> = Ok<T> | ApiError;
export type CommandReply<C extends CommandType = CommandType> = C extends CommandType ? ApiReply<CommandResults[C]> : never;

export function isApiError(r: unknown): r is ApiError {
  return typeof r === 'object' && r !== null && 'error' in r;
}

// ------------------------------------------------------------------ the event stream

/** An inspection event with its number: 1, 2, 3 … in the order the server received them. */
export type NumberedEvent = InspectionEvent & { n: number };

export interface EventBatch {
  /** Numbers of the first and last event in the batch; `from` follows the previous batch's `to`. */
  from: number;
  to: number;
  events: NumberedEvent[];
}

export interface StreamSnapshot {
  reason: 'connect' | 'resync';
  /** The number of the last event this snapshot covers; the next batch starts at `lastEvent + 1`. */
  lastEvent: number;
  cluster: ClusterInfo;
  config: ClusterConfig;
  workload: WorkloadConfig;
  limits: Limits;
  /** The most recent events (at most `limits.historyEventsMax`), oldest first, ending at `lastEvent`. */
  history: NumberedEvent[];
  /**
   * Each node's app state as of just before `history[0]` (committed base and the uncommitted changes
   * above it), from every event that fell out of the history: start from it, then replay `history`,
   * and a browser that joins late still has the whole state. Absent from older servers.
   */
  baseStates?: Record<NodeId, NodeStateBase>;
  /** Set on a resync: why (e.g. this browser fell behind and events were dropped). */
  notice?: string;
}

export interface Notice {
  level: 'info' | 'warning';
  message: string;
}

/** Socket.IO event maps, for typed `io()` / `Server` instances. */
export interface ServerToBrowserEvents {
  snapshot: (s: StreamSnapshot) => void;
  events: (b: EventBatch, ack: () => void) => void;
  notice: (n: Notice) => void;
}

export interface BrowserToServerEvents {
  command: (c: Command, reply: (r: CommandReply) => void) => void;
}
