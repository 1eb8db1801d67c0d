import { ERROR_CODES } from './errors';
import type { ErrorCode } from './errors';
import type { Limits } from './config';
import { ClusterConfigSchema, configShape, LimitsSchema, WORKLOAD_KINDS, WorkloadConfigSchema } from './config';
import { InspectionEventSchema } from './events';
import { CUT_KINDS, MODES, NODE_ID_PATTERN, RECOVERY_KINDS, REQUEST_ID_PATTERN, SESSION_PATTERN } from './protocol';
import { bool, bounded, discriminatorError, json, jsonObject, list, map, matching, num, obj, oneOf, reply, str, z } from './schema';

export * from './config';

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

// ------------------------------------------------------------------ primitives

const nodeId = () => matching(NODE_ID_PATTERN, 'a node id (a letter, then letters, digits, _ or -; at most 32)');
const sessionId = () => matching(SESSION_PATTERN, '1 to 64 letters, digits, . _ or -');
const versionMap = () => map(num(true), 'a map of node ids to versions');

// ------------------------------------------------------------------ cluster state

export const LIVE_NODE_STATUSES = ['up', 'down', 'recovering'] as const;
export type LiveNodeStatus = (typeof LIVE_NODE_STATUSES)[number];

export const NodeInfoSchema = reply({
  id: str(),
  /** `up`: running; `recovering`: process running, restoring its cut version; `down`: no process. */
  status: oneOf(LIVE_NODE_STATUSES),
  /** The OS process id, null when down (or not known, for a node joined from another host). */
  pid: num(true).nullable(),
  /** The node's open version, as last reported. */
  version: num(true),
  persistedVersion: num(true),
  /** The node's entry in the committed cut. */
  committedVersion: num(true),
  worldLine: num(true),
  /** `local`: spawned by the server; `remote`: joined over the network (`npm run node`). */
  origin: oneOf(['local', 'remote']),
  /** Processes started for this node since it was added (1 for the first). */
  starts: num(true),
  /**
   * While `recovering`, what it waits for: `connecting` (its process has not joined the server yet),
   * `coordinator` (joined; the coordinator has not served its recovery yet, say while a world-line
   * change is saved), `restoring` (told to restore; it has not reported the restored world-line yet).
   */
  waitingFor: oneOf(['connecting', 'coordinator', 'restoring']).optional(),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const ClusterInfoSchema = reply({
  worldLine: num(true),
  mode: oneOf(MODES),
  cutKind: oneOf(CUT_KINDS),
  cut: versionMap(),
  nodes: list(NodeInfoSchema),
  /** Where the data lives (`describe` of the storage; never a password). */
  storage: str(),
  /** Number of the last inspection event emitted. */
  lastEvent: num(true),
  /** Wall-clock time (ms since 1970) that event times `t` count from. */
  epochMs: num().optional(),
  /** The placement the server routes service requests by: its version and members (see docs/protocol.md, membership). */
  placement: reply({ version: num(true), members: list(str()) }).optional(),
});
export type ClusterInfo = z.infer<typeof ClusterInfoSchema>;

// ------------------------------------------------------------------ requests

export const ErrorBodySchema = reply({
  code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]], { error: 'must be a known error code' }),
  message: str(),
  definite: bool(),
});

/**
 * `failed`: the runtime closed the request with an error that is not a rollback (`error` says which: a
 * request for a removed node, `NodeRemoved`, never ran; one under way at a node removed while down,
 * `Orphaned`, ran in part and its effects are committed, but no answer will come).
 */
export const REQUEST_STATUSES = ['speculative', 'committed', 'rolled-back', 'failed'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** The services of the `playground` (and `services`) app: write-ahead log, kv store, broker, workflows. */
export const SERVICE_NAMES = ['wal', 'kv', 'broker', 'wf'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Values and service payloads nested deeper than this are refused (the SQL storage refuses deep JSON, and the node would retry forever). */
export const VALUE_DEPTH_MAX = 32;

/** A request to the key-value app: the fields, bounded by `limits`. */
function kvRequestShape(limits: Pick<Limits, 'keyLengthMax'>) {
  return {
    /** A session id to continue (letters, digits, `._-`, at most 64); omitted: a new session. */
    session: sessionId().optional(),
    op: oneOf(['put', 'get']),
    key: z
      .string({ error: `must be a string of 1 to ${limits.keyLengthMax} characters` })
      .min(1, { error: `must be a string of 1 to ${limits.keyLengthMax} characters` })
      .max(limits.keyLengthMax, { error: `must be a string of 1 to ${limits.keyLengthMax} characters` })
      .regex(/^[^\u0000-\u001f\u007f]*$/, { error: 'must not contain control characters' }),
    /** For `put`: any JSON value. */
    value: json(VALUE_DEPTH_MAX).optional(),
    /** For `get`: read only committed state (from the node's committed checkpoint), not speculative writes. */
    committedOnly: bool().optional(),
    /**
     * The node to send it to; default: the key's owner under the placement (rendezvous hashing over the
     * members, see `placement.ts`). A node that does not own the key answers `WrongOwner` and the server
     * sends the request on to the owner it names (the request's `seq` is then the later one).
     */
    node: nodeId().optional(),
  };
}

/** A put needs a value, a get has none (and only a get may be committed-only). */
function kvRules(r: { op: 'put' | 'get'; value?: unknown; committedOnly?: unknown }, ctx: z.RefinementCtx): void {
  if (r.op === 'put' && r.value === undefined) ctx.addIssue({ code: 'custom', message: 'a put needs a value' });
  if (r.op === 'put' && r.committedOnly !== undefined) ctx.addIssue({ code: 'custom', message: 'committedOnly is for gets' });
  if (r.op === 'get' && r.value !== undefined) ctx.addIssue({ code: 'custom', message: 'a get has no value' });
}

/** A request to one service, bounded by `limits`: see `ServiceRequestBody`. */
function serviceRequestShape() {
  return {
    /** A session id to continue (letters, digits, `._-`, at most 64); omitted: a new session. */
    session: sessionId().optional(),
    svc: oneOf(SERVICE_NAMES),
    /**
     * The service's own request payload, WITHOUT `svc` (the server adds it), e.g.
     * `{op: 'append', log: 'audit', data: {...}}` (see `backend/src/services`). For a committed-only
     * wal `read`/`length` or broker `poll`, give `committed: true`: the server sets `upTo` to the
     * cut's version of the node (an `upTo` of your own is refused). Bounded like a kv value.
     */
    payload: jsonObject(VALUE_DEPTH_MAX),
    /**
     * The node to send it to; default: the owner under the placement (`placement.ts`): by log for wal,
     * by key for kv, by topic for broker, by workflow id for wf, as the typed clients place it. A node
     * that does not own the unit answers `WrongOwner`; the server follows it to the owner.
     */
    node: nodeId().optional(),
  };
}

/** What the payload of a service request may not hold, whatever the service. */
function serviceRules(r: { svc: string; payload: { [k: string]: unknown } }, ctx: z.RefinementCtx): void {
  const p = r.payload;
  if (p.svc !== undefined && p.svc !== r.svc)
    ctx.addIssue({ code: 'custom', path: ['payload', 'svc'], message: 'must be absent (the server sets it from svc)' });
  if (typeof p.op !== 'string' || p.op.length === 0)
    ctx.addIssue({ code: 'custom', path: ['payload', 'op'], message: 'must be a string (e.g. append, read, put, publish, poll, start)' });
  if (p.upTo !== undefined)
    ctx.addIssue({ code: 'custom', path: ['payload', 'upTo'], message: 'is set by the server: ask committed: true for a committed-only read' });
  if (p.committed !== undefined && typeof p.committed !== 'boolean')
    ctx.addIssue({ code: 'custom', path: ['payload', 'committed'], message: 'must be true or false' });
}

function simulateShape() {
  return {
    seed: bounded({ min: 0, max: 2 ** 32 - 1 }, true),
    mode: oneOf(MODES).optional(),
    cut: oneOf(CUT_KINDS).optional(),
    /** Default `precise`. */
    recovery: oneOf(RECOVERY_KINDS).optional(),
    faults: bool().optional(),
    /** 2..8, default 4. */
    nodes: bounded({ min: 2, max: 8 }, true).optional(),
    /** 1..16, default 8. */
    sessions: bounded({ min: 1, max: 16 }, true).optional(),
    /** 1..100, default 26. */
    requestsPerSession: bounded({ min: 1, max: 100 }, true).optional(),
  };
}

function optional<S extends Record<string, z.ZodType>>(shape: S): { [K in keyof S]: z.ZodOptional<S[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, s]) => [k, s.optional()])) as { [K in keyof S]: z.ZodOptional<S[K]> };
}

/**
 * The schemas the server checks input with, bounded by its `limits`. Rules that need the server's
 * state (a patch as applied to the current config, a value's size, keys reserved for the services)
 * are the server's (`backend/src/server/validate.ts`).
 */
export function apiSchemas(limits: Limits) {
  const configPatch = obj(optional(configShape(limits)));
  const workloadPatch = obj({ kind: oneOf(WORKLOAD_KINDS).optional(), rate: bounded({ min: 0, max: limits.workloadRateMax }).optional() });
  const kvRequest = obj(kvRequestShape(limits)).superRefine(kvRules);
  const serviceRequest = obj(serviceRequestShape()).superRefine(serviceRules);
  const simulate = obj(simulateShape());
  const node = { node: nodeId() };
  const typed = <T extends string>(type: T) => ({ type: z.literal(type) });
  const command = z
    .discriminatedUnion(
      'type',
      [
        obj(typed('health')),
        obj(typed('cluster')),
        obj(typed('getConfig')),
        obj({ ...typed('kill'), ...node }),
        obj({ ...typed('restart'), ...node }),
        obj({ ...typed('addNode'), id: nodeId().optional() }),
        obj({ ...typed('removeNode'), ...node }),
        obj({ ...typed('config'), config: configPatch }),
        obj({ ...typed('workload'), workload: workloadPatch }),
        obj({ ...typed('request'), ...kvRequestShape(limits) }),
        obj({ ...typed('service'), ...serviceRequestShape() }),
        obj({ ...typed('getRequest'), id: matching(REQUEST_ID_PATTERN, 'a request id (like r123)') }),
        /** Acknowledges a session's rollback: it takes requests again (see `SessionRolledBack`). */
        obj({ ...typed('resumeSession'), session: sessionId() }),
        obj({ ...typed('simulate'), ...simulateShape() }),
      ],
      { error: unknownType },
    )
    .superRefine((c, ctx) => {
      if (c.type === 'request') kvRules(c, ctx);
      if (c.type === 'service') serviceRules(c, ctx);
    });
  return {
    configPatch,
    workloadPatch,
    kvRequest,
    serviceRequest,
    simulate,
    command,
    nodeId: nodeId(),
    sessionId: sessionId(),
    requestId: matching(REQUEST_ID_PATTERN, 'a request id (like r123)'),
    addNode: obj({ id: nodeId().optional() }),
  };
}

type ApiSchemas = ReturnType<typeof apiSchemas>;

/** Every command's `type`, for the message that refuses another. */
const COMMAND_TYPES = [
  'health',
  'cluster',
  'getConfig',
  'kill',
  'restart',
  'addNode',
  'removeNode',
  'config',
  'workload',
  'request',
  'service',
  'getRequest',
  'resumeSession',
  'simulate',
];
const unknownType = discriminatorError(COMMAND_TYPES);

export type KvRequestBody = z.infer<ApiSchemas['kvRequest']>;
export type ServiceRequestBody = z.infer<ApiSchemas['serviceRequest']>;
export type SimulateBody = z.infer<ApiSchemas['simulate']>;
/** `kind` and/or `rate`; the other stays as it is. */
export type WorkloadPatch = z.infer<ApiSchemas['workloadPatch']>;

export const ServiceRequestInfoSchema = reply({
  /** Server-assigned id, for `GET /api/requests/:id`. */
  id: str(),
  session: str(),
  /** The request's number in its session. */
  seq: num(true),
  node: str(),
  svc: oneOf(SERVICE_NAMES),
  status: oneOf(REQUEST_STATUSES),
  /** The service's answer (a typed refusal is answered as that error instead). */
  result: json(Infinity),
  worldLine: num(true),
  deps: versionMap(),
  /** Why a `failed` request failed. */
  error: ErrorBodySchema.optional(),
});
export type ServiceRequestInfo = z.infer<typeof ServiceRequestInfoSchema>;

export const RequestInfoSchema = reply({
  /** Server-assigned id, for `GET /api/requests/:id`. */
  id: str(),
  session: str(),
  /** The request's number in its session. 0 for a `committedOnly` get (no session request). */
  seq: num(true),
  node: str(),
  op: oneOf(['put', 'get']),
  key: str(),
  status: oneOf(REQUEST_STATUSES),
  /** The app's answer: `{key, value}` for a get (value null when absent), `{key, version}` for a put. */
  result: json(Infinity),
  worldLine: num(true),
  deps: versionMap(),
  /** Why a `failed` request failed. */
  error: ErrorBodySchema.optional(),
});
export type RequestInfo = z.infer<typeof RequestInfoSchema>;

// ------------------------------------------------------------------ simulation (seeded, in the server)

export const SimulateResultSchema = reply({
  seed: num(true),
  violations: list(reply({ invariant: str(), message: str(), t: num() })),
  requests: num(true),
  committed: num(true),
  rolledBack: num(true),
  kills: num(true),
  worldLines: num(true),
  /** Uncommitted versions recoveries kept, versions they rolled back, and coordinator restarts (see `npm run sim -- --json`). */
  versionsKept: num(true),
  versionsRolledBack: num(true),
  coordinatorRestarts: num(true),
  /** Every inspection event of the run in order (virtual time `t`); capped, see `truncated`. */
  events: list(InspectionEventSchema),
  truncated: bool(),
});
export type SimulateResult = z.infer<typeof SimulateResultSchema>;

// ------------------------------------------------------------------ commands (Socket.IO) and replies

export type Command = z.infer<ApiSchemas['command']>;
export type CommandType = Command['type'];

export const ConfigInfoSchema = reply({ config: ClusterConfigSchema, workload: WorkloadConfigSchema, limits: LimitsSchema });
export type ConfigInfo = z.infer<typeof ConfigInfoSchema>;

const membershipChange = { node: str(), version: num(true), members: list(str()) };

/** What each command answers with, besides `ok: true`. */
export const CommandResultSchemas = {
  health: z.custom<object>((v) => typeof v === 'object' && v !== null),
  cluster: ClusterInfoSchema,
  getConfig: ConfigInfoSchema,
  kill: reply({ node: str() }),
  restart: reply({ node: str() }),
  /** Answered once the node is a member: `version` and `members` of the placement after the change. */
  addNode: reply({ ...membershipChange, how: z.literal('joined') }),
  /** `drained`: the node was live and handed its units over before it stopped; `restored`: it was down, and its committed state was taken over from storage. */
  removeNode: reply({ ...membershipChange, how: oneOf(['drained', 'restored']) }),
  config: reply({ config: ClusterConfigSchema }),
  workload: reply({ workload: WorkloadConfigSchema }),
  request: RequestInfoSchema,
  service: ServiceRequestInfoSchema,
  /** A kv app request (`op`, `key`) or a service request (`svc`). */
  getRequest: z.union([RequestInfoSchema, ServiceRequestInfoSchema]),
  /** `resumed`: false when the session was not rolled back (nothing to acknowledge). */
  resumeSession: reply({ session: str(), resumed: bool() }),
  simulate: SimulateResultSchema,
} satisfies Record<CommandType, z.ZodType>;

export type CommandResults = { [C in CommandType]: z.infer<(typeof CommandResultSchemas)[C]> };

export const ApiErrorSchema = reply({
  error: ErrorBodySchema,
  /** For a request that timed out waiting for its answer: its id, to ask for it later. */
  id: str().optional(),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;

export type Ok<T> = { ok: true } & T;
export type ApiReply<T> = Ok<T> | ApiError;
export type CommandReply<C extends CommandType = CommandType> = C extends CommandType ? ApiReply<CommandResults[C]> : never;

/** The schema of command `type`'s reply: `{ok: true, ...}` or an error. */
export function commandReplySchema<C extends CommandType>(type: C) {
  return z.union([CommandResultSchemas[type].and(reply({ ok: z.literal(true) })), ApiErrorSchema]);
}

export function isApiError(r: unknown): r is ApiError {
  // A reply is `{ok: true, ...}` (a failed request's info has an `error` of its own) or `{error}`.
  return typeof r === 'object' && r !== null && 'error' in r && !('ok' in r);
}

// ------------------------------------------------------------------ the event stream

/** An inspection event with its number: 1, 2, 3 … in the order the server received them. */
export const NumberedEventSchema = InspectionEventSchema.and(reply({ n: num(true) }));
export type NumberedEvent = z.infer<typeof NumberedEventSchema>;

export const EventBatchSchema = reply({
  /** Numbers of the first and last event in the batch; `from` follows the previous batch's `to`. */
  from: num(true),
  to: num(true),
  events: list(NumberedEventSchema),
});
export type EventBatch = z.infer<typeof EventBatchSchema>;

const stateDelta = reply({ version: num(true), set: map(json(Infinity)), deleted: list(str()) });
export const NodeStateBaseSchema = reply({ committedVersion: num(true), committed: map(json(Infinity)), pending: list(stateDelta) });

export const StreamSnapshotSchema = reply({
  /** `PROTOCOL_VERSION` of the server: a page of another version reloads rather than misread the stream. */
  protocol: num(true),
  reason: oneOf(['connect', 'resync']),
  /** The number of the last event this snapshot covers; the next batch starts at `lastEvent + 1`. */
  lastEvent: num(true),
  cluster: ClusterInfoSchema,
  config: ClusterConfigSchema,
  workload: WorkloadConfigSchema,
  limits: LimitsSchema,
  /** The most recent events (at most `limits.historyEventsMax`), oldest first, ending at `lastEvent`. */
  history: list(NumberedEventSchema),
  /**
   * Each node's app state as of just before `history[0]` (committed base and the uncommitted changes
   * above it), from every event that fell out of the history: start from it, then replay `history`,
   * and a browser that joins late still has the whole state.
   */
  baseStates: map(NodeStateBaseSchema),
  /** Set on a resync: why (e.g. this browser fell behind and events were dropped). */
  notice: str().optional(),
});
export type StreamSnapshot = z.infer<typeof StreamSnapshotSchema>;

export const NoticeSchema = reply({ level: oneOf(['info', 'warning']), message: str() });
export type Notice = z.infer<typeof NoticeSchema>;

/** Socket.IO event maps, for typed `io()` / `Server` instances. */
export interface ServerToBrowserEvents {
  snapshot: (s: StreamSnapshot) => void;
  events: (b: EventBatch, ack: () => void) => void;
  notice: (n: Notice) => void;
}

/**
 * An event map as the receiving side sees it when the sender is another process: every argument
 * `unknown` until the receiver checked it (the server types its sockets with it: see `sockets.ts`).
 */
export type Untrusted<E> = { [K in keyof E]: (...args: unknown[]) => void };

export interface BrowserToServerEvents {
  /** Sent unchecked by the type system's word alone: the server validates every command with `apiSchemas`. */
  command: (c: Command, reply: (r: CommandReply) => void) => void;
}
