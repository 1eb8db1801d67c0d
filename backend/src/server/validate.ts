import type { Command, KvRequestBody, Limits, ServiceRequestBody, SimulateBody, WorkloadConfig } from '@dse/shared';
import { apiSchemas, DseError, parseWith } from '@dse/shared';
import type { ClusterConfig, ConfigPatch, z } from '@dse/shared';
import { SERVICE_PLACEMENT_FIELD } from '../live/requests';
import { SERVICE_PREFIXES, servicePrefixOf } from '../services';

/**
 * Every command from HTTP or Socket.IO passes here before it touches anything. The shapes are the
 * shared schemas (`apiSchemas` in `shared/src/api.ts`, the same ones the clients' types come from);
 * what is checked here besides is what needs the server: a patch as applied to the current settings,
 * a value's size, and the keys the services hold.
 */

type Schemas = ReturnType<typeof apiSchemas>;

/**
 * Limits for the schemas that no limit bounds (ids, simulations): any set will do, this one is
 * never used for a bound.
 */
const NO_LIMITS: Limits = {
  nodesMax: 0,
  bodyBytesMax: 0,
  keyLengthMax: 0,
  valueBytesMax: 0,
  workloadRateMax: 0,
  checkpointIntervalMs: { min: 0, max: 0 },
  networkDelayMs: { min: 0, max: 0 },
  networkJitterMs: { min: 0, max: 0 },
  messageLoss: { min: 0, max: 0 },
  heartbeatIntervalMs: { min: 0, max: 0 },
  heartbeatTimeoutMs: { min: 0, max: 0 },
  autoRestartDelayMs: { min: 0, max: 0 },
  commandsPerSecond: 0,
  historyEventsMax: 0,
};

/** The schemas for one set of limits, built once (a server's limits do not change). */
const schemasByLimits = new WeakMap<Limits, Schemas>();
function schemas(limits: Limits): Schemas {
  let s = schemasByLimits.get(limits);
  if (s === undefined) {
    s = apiSchemas(limits);
    schemasByLimits.set(limits, s);
  }
  return s;
}

function bad(problem: string): DseError {
  return new DseError('BadRequest', problem);
}

function parse<T extends z.ZodType>(schema: T, v: unknown, what: string): z.output<T> {
  return parseWith(schema, v, what, bad);
}

export function nodeId(v: unknown, what = 'node'): string {
  return parse(schemas(NO_LIMITS).nodeId, v, what);
}

export function requestId(v: unknown): string {
  return parse(schemas(NO_LIMITS).requestId, v, 'request id');
}

export function session(v: unknown): string {
  return parse(schemas(NO_LIMITS).sessionId, v, 'request: session');
}

/** `POST /api/nodes`: `{id?}`. */
export function addNode(v: unknown): Extract<Command, { type: 'addNode' }> {
  const b = parse(schemas(NO_LIMITS).addNode, v, 'the body');
  return b.id === undefined ? { type: 'addNode' } : { type: 'addNode', id: b.id };
}

/** The heartbeat timeout must leave room for a few heartbeats, as the patch leaves them. */
function checkHeartbeats(p: ConfigPatch, current: ClusterConfig): void {
  const hbI = p.heartbeatIntervalMs ?? current.heartbeatIntervalMs;
  const hbT = p.heartbeatTimeoutMs ?? current.heartbeatTimeoutMs;
  if (hbT < 3 * hbI) throw bad(`heartbeatTimeoutMs (${hbT}) must be at least 3 × heartbeatIntervalMs (${hbI})`);
}

export function configPatch(v: unknown, limits: Limits, current: ClusterConfig): ConfigPatch {
  const p = parse(schemas(limits).configPatch, v, 'config');
  checkHeartbeats(p, current);
  return p;
}

/** A workload patch (`POST /api/workload`), as applied to the current workload. */
export function workload(v: unknown, limits: Limits, current: WorkloadConfig): WorkloadConfig {
  const w = parse(schemas(limits).workloadPatch, v, 'workload');
  if (w.kind === undefined && w.rate === undefined) throw bad('workload: give kind and/or rate');
  return { kind: w.kind ?? current.kind, rate: w.rate ?? current.rate };
}

function jsonSize(v: unknown): number {
  return JSON.stringify(v)?.length ?? 0;
}

/** The size of a value, and the keys of the services' state (`POST /api/service` is theirs). */
function checkKv(r: KvRequestBody, limits: Limits): void {
  const prefix = servicePrefixOf(r.key);
  if (prefix !== undefined) {
    throw bad(
      `request: key must not start with ${prefix}: keys starting with ${SERVICE_PREFIXES.join(', ')} hold the services' state (send those requests to POST /api/service)`,
    );
  }
  if (r.value !== undefined && jsonSize(r.value) > limits.valueBytesMax)
    throw new DseError('LimitExceeded', `request: the value is larger than ${limits.valueBytesMax} bytes of JSON`);
}

export function kvRequest(v: unknown, limits: Limits): KvRequestBody {
  const r = parse(schemas(limits).kvRequest, v, 'request');
  checkKv(r, limits);
  return r;
}

/**
 * The size of the payload, and what the service places the request by (`log`, `key`, `topic`, `id`):
 * needed unless `node` is given. The payload goes on without `svc` (the server sets it).
 */
function checkService(r: ServiceRequestBody, limits: Limits): ServiceRequestBody {
  if (jsonSize(r.payload) > limits.valueBytesMax)
    throw new DseError('LimitExceeded', `service request: the payload is larger than ${limits.valueBytesMax} bytes of JSON`);
  const field = SERVICE_PLACEMENT_FIELD[r.svc];
  const placeBy = r.payload[field];
  if (r.node === undefined && (typeof placeBy !== 'string' || placeBy === ''))
    throw bad(`service request: payload.${field} must be a non-empty string (it places the ${r.svc} request on a node), or give node`);
  const { svc: _svc, ...payload } = r.payload;
  const out: ServiceRequestBody = { svc: r.svc, payload };
  if (r.session !== undefined) out.session = r.session;
  if (r.node !== undefined) out.node = r.node;
  return out;
}

/**
 * A request to one service: `{session?, svc, payload, node?}`. The payload is the service's own
 * request without `svc` (bounded like a kv value); without `node`, it must name what the service
 * places it by (`log`, `key`, `topic`, `id`). `upTo` is the server's: a read asks `committed: true`.
 */
export function serviceRequest(v: unknown, limits: Limits): ServiceRequestBody {
  return checkService(parse(schemas(limits).serviceRequest, v, 'service request'), limits);
}

export function simulate(v: unknown): SimulateBody {
  return parse(schemas(NO_LIMITS).simulate, v, 'simulate');
}

/** A command from Socket.IO (or a caller in the server): `{type, ...}`; a config patch is checked as applied to the current config. */
export function command(v: unknown, limits: Limits, current: { config: ClusterConfig; workload: WorkloadConfig }): Command {
  const c = parse(schemas(limits).command, v, 'command');
  switch (c.type) {
    case 'config':
      checkHeartbeats(c.config, current.config);
      return c;
    case 'workload':
      if (c.workload.kind === undefined && c.workload.rate === undefined) throw bad('workload: give kind and/or rate');
      return c;
    case 'request':
      checkKv(c, limits);
      return c;
    case 'service':
      return { type: 'service', ...checkService(c, limits) };
    default:
      return c;
  }
}
