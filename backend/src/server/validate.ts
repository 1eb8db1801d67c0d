import type { ClusterConfig, Command, ConfigPatch, Json, KvRequestBody, Limits, ServiceRequestBody, SimulateBody, WorkloadConfig } from '@dse/shared';
import { CUT_KINDS, DseError, MODES, OBSERVATION_LEVELS, RECOVERY_KINDS, SERVICE_NAMES, WORKLOAD_KINDS } from '@dse/shared';
import { NODE_ID_PATTERN } from '../live/cluster';
import { SERVICE_PLACEMENT_FIELD } from '../live/requests';
import { SERVICE_PREFIXES, servicePrefixOf } from '../services';

/** Hand-written schema checks: every command from HTTP or Socket.IO passes one before it touches anything. */

export const SESSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const REQUEST_ID_PATTERN = /^r[0-9]{1,15}$/;

function bad(msg: string): never {
  throw new DseError('BadRequest', msg);
}

type Obj = Record<string, unknown>;

function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} must be a JSON object`);
  return v as Obj;
}

function onlyKeys(o: Obj, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) bad(`${what}: unknown field ${JSON.stringify(k).slice(0, 80)} (allowed: ${allowed.join(', ')})`);
}

function num(o: Obj, k: string, range: { min: number; max: number }, integer = false): number | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${k} must be a number`);
  if (integer && !Number.isInteger(v)) bad(`${k} must be an integer`);
  if (v < range.min || v > range.max) bad(`${k} must be between ${range.min} and ${range.max}, not ${v}`);
  return v;
}

function bool(o: Obj, k: string): boolean | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') bad(`${k} must be true or false`);
  return v;
}

function oneOf<T extends string>(o: Obj, k: string, values: readonly T[]): T | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !values.includes(v as T)) bad(`${k} must be one of ${values.join(', ')}`);
  return v as T;
}

export function nodeId(v: unknown, what = 'node'): string {
  if (typeof v !== 'string' || !NODE_ID_PATTERN.test(v)) bad(`${what} must be a node id (a letter, then letters, digits, _ or -; at most 32)`);
  return v;
}

export function requestId(v: unknown): string {
  if (typeof v !== 'string' || !REQUEST_ID_PATTERN.test(v)) bad('a request id looks like r123');
  return v;
}

const CONFIG_KEYS: (keyof ClusterConfig)[] = [
  'mode',
  'cut',
  'recovery',
  'checkpointIntervalMs',
  'networkDelayMs',
  'networkJitterMs',
  'messageLoss',
  'autoRestart',
  'autoRestartDelayMs',
  'heartbeatIntervalMs',
  'heartbeatTimeoutMs',
  'observation',
  'held',
];

export function configPatch(v: unknown, limits: Limits, current: ClusterConfig): ConfigPatch {
  const o = object(v, 'config');
  onlyKeys(o, CONFIG_KEYS, 'config');
  const p: ConfigPatch = {};
  const mode = oneOf(o, 'mode', MODES);
  if (mode !== undefined) p.mode = mode;
  const cut = oneOf(o, 'cut', CUT_KINDS);
  if (cut !== undefined) p.cut = cut;
  const recovery = oneOf(o, 'recovery', RECOVERY_KINDS);
  if (recovery !== undefined) p.recovery = recovery;
  const observation = oneOf(o, 'observation', OBSERVATION_LEVELS);
  if (observation !== undefined) p.observation = observation;
  const ints: [
    'checkpointIntervalMs' | 'networkDelayMs' | 'networkJitterMs' | 'autoRestartDelayMs' | 'heartbeatIntervalMs' | 'heartbeatTimeoutMs',
    { min: number; max: number },
  ][] = [
    ['checkpointIntervalMs', limits.checkpointIntervalMs],
    ['networkDelayMs', limits.networkDelayMs],
    ['networkJitterMs', limits.networkJitterMs],
    ['autoRestartDelayMs', limits.autoRestartDelayMs],
    ['heartbeatIntervalMs', limits.heartbeatIntervalMs],
    ['heartbeatTimeoutMs', limits.heartbeatTimeoutMs],
  ];
  for (const [k, range] of ints) {
    const n = num(o, k, range, true);
    if (n !== undefined) p[k] = n;
  }
  const loss = num(o, 'messageLoss', limits.messageLoss);
  if (loss !== undefined) p.messageLoss = loss;
  const ar = bool(o, 'autoRestart');
  if (ar !== undefined) p.autoRestart = ar;
  const held = bool(o, 'held');
  if (held !== undefined) p.held = held;
  const hbI = p.heartbeatIntervalMs ?? current.heartbeatIntervalMs;
  const hbT = p.heartbeatTimeoutMs ?? current.heartbeatTimeoutMs;
  if (hbT < 3 * hbI) bad(`heartbeatTimeoutMs (${hbT}) must be at least 3 × heartbeatIntervalMs (${hbI})`);
  return p;
}

export function workload(v: unknown, limits: Limits, current: WorkloadConfig): WorkloadConfig {
  const o = object(v, 'workload');
  onlyKeys(o, ['kind', 'rate'], 'workload');
  const kind = oneOf(o, 'kind', WORKLOAD_KINDS) ?? current.kind;
  const rate = num(o, 'rate', { min: 0, max: limits.workloadRateMax });
  if (rate === undefined && o.kind === undefined) bad('workload: give kind and/or rate');
  return { kind, rate: rate ?? current.rate };
}

function jsonSize(v: unknown): number {
  return JSON.stringify(v)?.length ?? 0;
}

/** Values nested deeper than this are refused (the SQL storage refuses deep JSON, and the node would retry forever). */
export const VALUE_DEPTH_MAX = 32;

function depth(v: unknown, limit: number): number {
  if (typeof v !== 'object' || v === null) return 0;
  if (limit <= 0) return 1;
  let d = 0;
  for (const x of Object.values(v)) d = Math.max(d, depth(x, limit - 1));
  return d + 1;
}

export function kvRequest(v: unknown, limits: Limits, extraKeys: readonly string[] = []): KvRequestBody {
  const o = object(v, 'request');
  onlyKeys(o, ['session', 'op', 'key', 'value', 'committedOnly', 'node', ...extraKeys], 'request');
  const op = oneOf(o, 'op', ['put', 'get'] as const);
  if (op === undefined) bad('request: op is required (put or get)');
  if (typeof o.key !== 'string' || o.key.length === 0 || o.key.length > limits.keyLengthMax)
    bad(`request: key must be a string of 1 to ${limits.keyLengthMax} characters`);
  if (/[\u0000-\u001f\u007f]/.test(o.key)) bad('request: key must not contain control characters');
  const prefix = servicePrefixOf(o.key);
  if (prefix !== undefined) {
    bad(
      `request: key must not start with ${prefix}: keys starting with ${SERVICE_PREFIXES.join(', ')} hold the services' state (send those requests to POST /api/service)`,
    );
  }
  const r: KvRequestBody = { op, key: o.key };
  if (o.session !== undefined) r.session = session(o.session);
  if (op === 'put') {
    if (!('value' in o)) bad('request: a put needs a value');
    if (jsonSize(o.value) > limits.valueBytesMax)
      throw new DseError('LimitExceeded', `request: the value is larger than ${limits.valueBytesMax} bytes of JSON`);
    if (depth(o.value, VALUE_DEPTH_MAX + 1) > VALUE_DEPTH_MAX) bad(`request: the value is nested deeper than ${VALUE_DEPTH_MAX} levels`);
    if (o.committedOnly !== undefined) bad('request: committedOnly is for gets');
    r.value = o.value as Json;
  } else {
    if (o.value !== undefined) bad('request: a get has no value');
    const co = bool(o, 'committedOnly');
    if (co !== undefined) r.committedOnly = co;
  }
  if (o.node !== undefined) r.node = nodeId(o.node);
  return r;
}

export function session(v: unknown): string {
  if (typeof v !== 'string' || !SESSION_PATTERN.test(v)) bad('request: session must be 1 to 64 letters, digits, . _ or -');
  return v;
}

/**
 * A request to one service: `{session?, svc, payload, node?}`. The payload is the service's own
 * request without `svc` (bounded like a kv value); without `node`, it must name what the service
 * places it by (`log`, `key`, `topic`, `id`). `upTo` is the server's: a read asks `committed: true`.
 */
export function serviceRequest(v: unknown, limits: Limits, extraKeys: readonly string[] = []): ServiceRequestBody {
  const o = object(v, 'service request');
  onlyKeys(o, ['session', 'svc', 'payload', 'node', ...extraKeys], 'service request');
  const svc = oneOf(o, 'svc', SERVICE_NAMES);
  if (svc === undefined) bad(`service request: svc is required (${SERVICE_NAMES.join(', ')})`);
  const payload = object(o.payload, 'service request: payload');
  if (jsonSize(payload) > limits.valueBytesMax)
    throw new DseError('LimitExceeded', `service request: the payload is larger than ${limits.valueBytesMax} bytes of JSON`);
  if (depth(payload, VALUE_DEPTH_MAX + 1) > VALUE_DEPTH_MAX) bad(`service request: the payload is nested deeper than ${VALUE_DEPTH_MAX} levels`);
  if (payload.svc !== undefined && payload.svc !== svc) bad('service request: payload.svc must be absent (the server sets it from svc)');
  if (typeof payload.op !== 'string' || payload.op.length === 0)
    bad('service request: payload.op must be a string (e.g. append, read, put, publish, poll, start)');
  if (payload.upTo !== undefined) bad('service request: payload.upTo is set by the server: ask committed: true for a committed-only read');
  if (payload.committed !== undefined && typeof payload.committed !== 'boolean') bad('service request: payload.committed must be true or false');
  const field = SERVICE_PLACEMENT_FIELD[svc];
  if (o.node === undefined && (typeof payload[field] !== 'string' || payload[field] === ''))
    bad(`service request: payload.${field} must be a non-empty string (it places the ${svc} request on a node), or give node`);
  const { svc: _svc, ...rest } = payload;
  const r: ServiceRequestBody = { svc, payload: rest as { [k: string]: Json } };
  if (o.session !== undefined) r.session = session(o.session);
  if (o.node !== undefined) r.node = nodeId(o.node);
  return r;
}

export function simulate(v: unknown, extraKeys: readonly string[] = []): SimulateBody {
  const o = object(v, 'simulate');
  onlyKeys(o, ['seed', 'mode', 'cut', 'recovery', 'faults', 'nodes', 'sessions', 'requestsPerSession', ...extraKeys], 'simulate');
  const seed = num(o, 'seed', { min: 0, max: 2 ** 32 - 1 }, true);
  if (seed === undefined) bad('simulate: seed is required');
  const b: SimulateBody = { seed };
  const mode = oneOf(o, 'mode', MODES);
  if (mode !== undefined) b.mode = mode;
  const cut = oneOf(o, 'cut', CUT_KINDS);
  if (cut !== undefined) b.cut = cut;
  const recovery = oneOf(o, 'recovery', RECOVERY_KINDS);
  if (recovery !== undefined) b.recovery = recovery;
  const faults = bool(o, 'faults');
  if (faults !== undefined) b.faults = faults;
  const nodes = num(o, 'nodes', { min: 2, max: 8 }, true);
  if (nodes !== undefined) b.nodes = nodes;
  const sessions = num(o, 'sessions', { min: 1, max: 16 }, true);
  if (sessions !== undefined) b.sessions = sessions;
  const rps = num(o, 'requestsPerSession', { min: 1, max: 100 }, true);
  if (rps !== undefined) b.requestsPerSession = rps;
  return b;
}

/** A command from Socket.IO: `{type, ...}`. */
export function command(v: unknown, limits: Limits, current: { config: ClusterConfig; workload: WorkloadConfig }): Command {
  const o = object(v, 'command');
  if (typeof o.type !== 'string') bad('command: type is required');
  switch (o.type) {
    case 'health':
    case 'cluster':
    case 'getConfig':
      onlyKeys(o, ['type'], o.type);
      return { type: o.type };
    case 'kill':
    case 'restart':
    case 'removeNode':
      onlyKeys(o, ['type', 'node'], o.type);
      return { type: o.type, node: nodeId(o.node) };
    case 'addNode':
      onlyKeys(o, ['type', 'id'], o.type);
      return o.id === undefined ? { type: 'addNode' } : { type: 'addNode', id: nodeId(o.id, 'id') };
    case 'config':
      onlyKeys(o, ['type', 'config'], o.type);
      return { type: 'config', config: configPatch(o.config, limits, current.config) };
    case 'workload':
      onlyKeys(o, ['type', 'workload'], o.type);
      return { type: 'workload', workload: workload(o.workload, limits, current.workload) };
    case 'request':
      return { type: 'request', ...kvRequest(o, limits, ['type']) };
    case 'service':
      return { type: 'service', ...serviceRequest(o, limits, ['type']) };
    case 'getRequest':
      onlyKeys(o, ['type', 'id'], o.type);
      return { type: 'getRequest', id: requestId(o.id) };
    case 'resumeSession':
      onlyKeys(o, ['type', 'session'], o.type);
      return { type: 'resumeSession', session: session(o.session) };
    case 'simulate':
      return { type: 'simulate', ...simulate(o, ['type']) };
    default:
      bad(`command: unknown type ${JSON.stringify(o.type).slice(0, 60)}`);
  }
}
