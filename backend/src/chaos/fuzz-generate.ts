import type { Json } from '@dse/shared';
import { Rng } from '../sim/rng';

// Generation: command number `i` of seed `s`, from its own random source (see fuzz.ts).

/**
 * Inputs that trigger a known, reported bug, which a run may leave out: `deep-values`, put values nested
 * deeper than the storage accepts (backend/test/chaos/bugs.test.ts).
 */
export type KnownBug = 'deep-values';

export type Obj = Record<string, unknown>;

export type FuzzCase =
  | {
      transport: 'http';
      method: string;
      path: string;
      body?: string | Buffer | Json | Obj;
      headers?: Record<string, string>;
      oversize?: boolean;
      label: string;
    }
  | { transport: 'io'; payload: unknown; ack: boolean; event: string; label: string }
  | { transport: 'raw'; bytes: Buffer; label: string };

const NODE_IDS = ['n1', 'n2', 'n3', 'n4', 'n5', 'n9', 'zz', 'N1', 'n1-', 'a'.repeat(32)];
const BAD_IDS = ['', '1n', 'n 1', 'n1/../n2', '..', '%2e%2e', 'a'.repeat(33), 'n\u0000', 'ñ', '<script>', "n1' OR '1'='1", 'n1;DROP TABLE dse_checkpoints'];
const SQLISH = ["'; DROP TABLE dse_checkpoints; --", "' OR 1=1 --", '$1', '\\x00', 'dse_coordinator', "');DELETE FROM dse_coordinator;--"];

function bigString(rng: Rng): string {
  const n = rng.pick([257, 1000, 16 * 1024 + 1, 40_000, 70_000]);
  return rng.pick(['x', 'é', '\u{1F600}', '"', '\\']).repeat(n);
}

/** Arrays nested 1001..1500 deep: a small value (3 KB) deeper than the SQL storage accepts. */
function deepArrays(rng: Rng, avoid: boolean): unknown {
  const depth = avoid ? rng.int(100, 900) : rng.int(1001, 1500);
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function deep(rng: Rng, avoidDeep: boolean): unknown {
  if (rng.chance(0.3)) return deepArrays(rng, avoidDeep);
  const depth = rng.pick([100, 1000, 5000, 20_000]);
  let v: unknown = rng.chance(0.5) ? 1 : {};
  for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { a: v };
  return v;
}

function weird(rng: Rng, avoidDeep: boolean): unknown {
  switch (rng.int(0, 22)) {
    case 0:
      return null;
    case 1:
      return true;
    case 2:
      return -1;
    case 3:
      return 0;
    case 4:
      return 1e308;
    case 5:
      return -1e-308;
    case 6:
      return 1.5;
    case 7:
      return 2 ** 53 + 1;
    case 8:
      return '';
    case 9:
      return bigString(rng);
    case 10:
      return '\u0000\u0001\u001f';
    case 11:
      return rng.pick(SQLISH);
    case 12:
      return {};
    case 13:
      return [];
    case 14:
      return deep(rng, avoidDeep);
    case 15:
      return rng.pick(BAD_IDS);
    case 16:
      return rng.pick(NODE_IDS);
    case 17:
      return Array.from({ length: rng.int(1, 3000) }, (_, i) => i);
    case 18:
      return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } };
    case 19:
      return '-Infinity';
    case 20:
      return 'NaN';
    case 21:
      return rng.int(-1e9, 1e9);
    default:
      return { type: 'kill', node: 'n1' };
  }
}

function validConfig(rng: Rng, disruptive: boolean): Obj {
  const c: Obj = {};
  const fields: [string, () => unknown][] = [
    ['checkpointIntervalMs', () => rng.int(5, 2000)],
    ['networkDelayMs', () => rng.int(0, 50)],
    ['networkJitterMs', () => rng.int(0, 50)],
    ['messageLoss', () => rng.next() * 0.3],
    ['autoRestart', () => rng.chance(0.5)],
    ['autoRestartDelayMs', () => rng.int(0, 2000)],
    ['heartbeatIntervalMs', () => rng.int(20, 500)],
    ['heartbeatTimeoutMs', () => rng.int(2000, 10_000)],
  ];
  if (disruptive) {
    // Not 'none': by design it gives up durability (its cut covers nothing written), so the committed
    // state need not survive a trip through it; the fuzzer's property would not hold.
    fields.push(['mode', () => rng.pick(['speculative', 'durable'])]);
    fields.push(['cut', () => rng.pick(['exact', 'cheap'])]);
  }
  for (const [k, f] of fields) if (rng.chance(0.3)) c[k] = f();
  if (Object.keys(c).length === 0) c.networkDelayMs = rng.int(0, 20);
  return c;
}

function fuzzKey(rng: Rng): string {
  const k = rng.pick(['fz', 'fz.a', 'k1', 'fz/../x', 'fz é', `fz${rng.int(0, 50)}`, '~n1/fz', 'a:fz', 'r:cl:server', 'r:out:n1:1']);
  return k;
}

/** A valid command (as the Socket.IO `command` object). Disruptive ones only when `disruptive`. */
function validCommand(rng: Rng, disruptive: boolean, avoidDeep: boolean): Obj {
  const kinds = [
    'health',
    'cluster',
    'getConfig',
    'request',
    'request',
    'request',
    'service',
    'service',
    'getRequest',
    'workload',
    'config',
    'addNode',
    'removeNode',
    'kill',
    'restart',
    'simulate',
  ];
  const kind = rng.pick(kinds);
  const anyNode = (): string => (disruptive ? rng.pick(['n1', 'n2', 'n3', 'n4', 'n5', 'n6']) : rng.pick(['n9', 'zz', 'nope']));
  switch (kind) {
    case 'health':
    case 'cluster':
    case 'getConfig':
      return { type: kind };
    case 'request': {
      const put = rng.chance(0.5);
      const r: Obj = { type: 'request', op: put ? 'put' : 'get', key: fuzzKey(rng) };
      if (put) r.value = rng.chance(0.05) ? deepArrays(rng, avoidDeep) : rng.pick<Json>([1, 'v', null, { a: [1, 2] }, 'x'.repeat(100)]);
      else if (rng.chance(0.5)) r.committedOnly = true;
      if (rng.chance(0.5)) r.session = rng.pick(['fz', 'fz.1', `fz-${rng.int(0, 9)}`]);
      if (rng.chance(0.3)) r.node = rng.pick(['n1', 'n2', 'n3', 'n4', 'n9']);
      return r;
    }
    case 'service': {
      const [svc, payload] = rng.pick<[string, Obj]>([
        ['wal', { op: 'append', log: 'fz', data: { i: rng.int(0, 9) } }],
        ['wal', { op: 'read', log: rng.pick(['fz', 'audit']), from: 0, max: 5, committed: rng.chance(0.5) }],
        ['kv', { op: rng.pick(['put', 'get', 'delete']), key: fuzzKey(rng), value: rng.int(0, 9) }],
        ['kv', { op: 'cas', key: 'fz', expected: null, value: 1 }],
        ['broker', { op: 'publish', topic: 'fz', producer: 'fz', seq: rng.int(1, 4), data: 'x' }],
        ['broker', { op: 'poll', topic: 'fz', group: 'fz', max: 5, committed: rng.chance(0.5) }],
        ['wf', { op: 'status', id: `fz${rng.int(0, 9)}` }],
      ]);
      const r: Obj = { type: 'service', svc, payload };
      if (rng.chance(0.5)) r.session = rng.pick(['fz', 'fz.1', `fz-${rng.int(0, 9)}`]);
      if (rng.chance(0.2)) r.node = rng.pick(['n1', 'n2', 'n9']);
      return r;
    }
    case 'getRequest':
      return { type: 'getRequest', id: `r${rng.int(0, 100_000)}` };
    case 'workload':
      return {
        type: 'workload',
        workload: { kind: rng.pick(['kv', 'chain', 'mixed', 'wal', 'kvstore', 'broker', 'workflow']), rate: disruptive ? rng.int(0, 30) : 0 },
      };
    case 'config':
      return { type: 'config', config: validConfig(rng, disruptive) };
    case 'addNode':
      return rng.chance(0.5) ? { type: 'addNode' } : { type: 'addNode', id: rng.pick(['n1', 'n5', 'n6', 'fz1']) };
    case 'removeNode':
      // Removing one of the first nodes would make its committed keys unreadable by design: only nodes the fuzzer may have added, or none.
      return { type: 'removeNode', node: rng.pick(['n5', 'n6', 'fz1', 'n9', 'zz']) };
    case 'kill':
    case 'restart':
      return { type: kind, node: anyNode() };
    default:
      return { type: 'simulate', seed: rng.int(0, 1000), nodes: rng.int(2, 4), sessions: rng.int(1, 3), requestsPerSession: rng.int(1, 5) };
  }
}

/** Drops, adds, retypes or inflates fields of a command. */
function mutate(rng: Rng, cmd: Obj, avoidDeep: boolean): unknown {
  const c: Obj = JSON.parse(JSON.stringify(cmd)) as Obj;
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) {
    const keys = Object.keys(c);
    switch (rng.int(0, 6)) {
      case 0:
        if (keys.length > 0) delete c[rng.pick(keys)];
        break;
      case 1:
        c[rng.pick(['extra', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'type', 'op', 'value', 'committedOnly', 'id', 'node'])] =
          weird(rng, avoidDeep);
        break;
      case 2:
      case 3:
        if (keys.length > 0) c[rng.pick(keys)] = weird(rng, avoidDeep);
        break;
      case 4: {
        const inner = keys.find((k) => typeof c[k] === 'object' && c[k] !== null && !Array.isArray(c[k]));
        if (inner !== undefined) {
          const o = c[inner] as Obj;
          const ik = Object.keys(o);
          if (ik.length > 0 && rng.chance(0.7)) o[rng.pick(ik)] = weird(rng, avoidDeep);
          else o[rng.pick(['mode', 'cut', 'rate', 'kind', 'bogus', 'messageLoss', 'heartbeatTimeoutMs'])] = weird(rng, avoidDeep);
        }
        break;
      }
      case 5:
        for (let k = 0; k < rng.int(10, 500); k++) c[`f${k}`] = k;
        break;
      default:
        c.type = rng.pick(['', 'KILL', 'health ', 'request\u0000', 'simulate', 'eval', 'constructor', '__proto__', 42, null]);
    }
  }
  return c;
}

/** Where an HTTP command goes, and its body. */
function toHttp(cmd: Obj): { method: string; path: string; body?: unknown } {
  const seg = (v: unknown): string => encodeURIComponent(typeof v === 'string' ? v : safeJson(v ?? null));
  const { type, ...rest } = cmd;
  switch (type) {
    case 'health':
      return { method: 'GET', path: '/api/health' };
    case 'cluster':
      return { method: 'GET', path: '/api/cluster' };
    case 'getConfig':
      return { method: 'GET', path: '/api/config' };
    case 'kill':
    case 'restart':
      return { method: 'POST', path: `/api/nodes/${seg(cmd.node)}/${type}` };
    case 'addNode':
      return { method: 'POST', path: '/api/nodes', body: rest };
    case 'removeNode':
      return { method: 'DELETE', path: `/api/nodes/${seg(cmd.node)}` };
    case 'config':
      return { method: 'POST', path: '/api/config', body: cmd.config };
    case 'workload':
      return { method: 'POST', path: '/api/workload', body: cmd.workload };
    case 'request':
      return { method: 'POST', path: '/api/requests', body: rest };
    case 'getRequest':
      return { method: 'GET', path: `/api/requests/${seg(cmd.id)}` };
    case 'simulate':
      return { method: 'POST', path: '/api/simulate', body: rest };
    default:
      return { method: 'POST', path: `/api/${seg(type)}`, body: rest };
  }
}

function randomJson(rng: Rng, avoidDeep: boolean, depth = 0): unknown {
  const k = rng.int(0, depth > 3 ? 4 : 7);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.int(-1000, 1000) * (rng.chance(0.2) ? 1.5 : 1);
    case 3:
      return rng.pick(['', 'a', 'put', 'get', 'health', ...SQLISH, ...BAD_IDS]);
    case 4:
      return weird(rng, avoidDeep);
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, avoidDeep, depth + 1));
    default: {
      const o: Obj = {};
      for (let i = 0; i < rng.int(0, 5); i++)
        o[rng.pick(['type', 'op', 'key', 'value', 'node', 'id', 'config', 'workload', 'session', 'seed', 'x'])] = randomJson(rng, avoidDeep, depth + 1);
      return o;
    }
  }
}

const PATHS = [
  '/api',
  '/api/',
  '/api/nodes',
  '/api/nodes/n9',
  '/api/nodes/n1/kill/now',
  '/api/nodes//kill',
  '/api/requests',
  '/api/requests/r1/x',
  '/api/health/',
  '/api/%00',
  '/api/..%2f..%2fetc%2fpasswd',
  '/../../etc/passwd',
  '/%2e%2e/%2e%2e/etc/passwd',
  '/index.html',
  '/assets/../../package.json',
  '/api/cluster?x=' + 'y'.repeat(3000),
  '/api/config#frag',
  '/socket.io/?EIO=4&transport=polling',
  '/node',
  '/' + 'a/'.repeat(500),
];

function rawCase(rng: Rng): Buffer {
  switch (rng.int(0, 7)) {
    case 0:
      return Buffer.from(Array.from({ length: rng.int(1, 2000) }, () => rng.int(0, 255)));
    case 1:
      return Buffer.from(`POST /api/requests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{"op":"put"`);
    case 2:
      return Buffer.from(`GET /api/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    case 3:
      return Buffer.from(`POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`);
    case 4:
      return Buffer.from(`GET /api/health HTTP/1.1\r\nHost: evil.example\r\n\r\n`);
    case 5:
      return Buffer.from(`POST /api/requests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{"op":`);
    case 6:
      return Buffer.from(`GET /api/cluster HTTP/1.1\r\nHost: 127.0.0.1\r\n` + 'X: y\r\n'.repeat(3000) + '\r\n');
    default:
      return Buffer.from(`DELETE /api/nodes/n9 HTTP/1.0\r\n\r\n`);
  }
}

/** The nodes a cluster starts with: the fuzzer never removes them. */
export const FIRST_NODES: ReadonlySet<string> = new Set(['n1', 'n2', 'n3', 'n4']);

/**
 * Command number `index` of seed `seed`. Never one that removes a first node (n1..n4): removing a node
 * drops its committed keys from what the cluster reads (by design, no hand-off), which the fuzzer's
 * committed-state property cannot tell from a loss.
 */
export function generateCase(seed: number, index: number, disruptive = 0.15, avoid: readonly KnownBug[] = []): FuzzCase {
  const c = generateAny(seed, index, disruptive, avoid);
  if (c.transport === 'http' && c.method === 'DELETE' && /^\/api\/nodes\/n[1-4]\/?$/.test(c.path)) return { ...c, path: '/api/nodes/n9' };
  if (c.transport === 'io' && typeof c.payload === 'object' && c.payload !== null) {
    const p = c.payload as Obj;
    if (p.type === 'removeNode' && typeof p.node === 'string' && FIRST_NODES.has(p.node)) return { ...c, payload: { ...p, node: 'n9' } };
  }
  return c;
}

function generateAny(seed: number, index: number, disruptive: number, avoid: readonly KnownBug[]): FuzzCase {
  // Values nested deeper than the storage accepts trigger a known bug (see `KnownBug`).
  const avoidDeep = avoid.includes('deep-values');
  const rng = new Rng((seed * 1_000_003 + index * 7919) >>> 0);
  const isDisruptive = rng.chance(disruptive);
  const family = rng.int(0, 99);
  const viaIo = rng.chance(0.4);
  let cmd: unknown;
  let label: string;
  if (family < 30) {
    cmd = validCommand(rng, isDisruptive, avoidDeep);
    label = 'valid';
  } else if (family < 75) {
    cmd = mutate(rng, validCommand(rng, isDisruptive, avoidDeep), avoidDeep);
    label = 'mutated';
  } else if (family < 85) {
    cmd = randomJson(rng, avoidDeep);
    label = 'random';
  } else if (family < 95) {
    if (viaIo) {
      const event = rng.pick(['command', 'command', 'join', 'up', 'st', 'm', 'events', 'snapshot', 'x'.repeat(200), 'disconnect']);
      return {
        transport: 'io',
        event,
        payload: rng.chance(0.3) ? Buffer.from([1, 2, 3]) : randomJson(rng, avoidDeep),
        ack: rng.chance(0.5),
        label: `io-event ${event.slice(0, 20)}`,
      };
    }
    const method = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    const path = rng.pick(PATHS);
    const bodyKind = rng.int(0, 5);
    const body: string | Buffer | undefined =
      bodyKind === 0
        ? undefined
        : bodyKind === 1
          ? '{"op": "put", '
          : bodyKind === 2
            ? Buffer.from([0xff, 0xfe, 0x00, 0x7b])
            : bodyKind === 3
              ? 'x'.repeat(70_000)
              : bodyKind === 4
                ? '[]'
                : jsonOrDeep(randomJson(rng, avoidDeep));
    const headers: Record<string, string> = rng.chance(0.3)
      ? { 'content-type': rng.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16']) }
      : {};
    if (rng.chance(0.1)) headers.origin = 'http://evil.example';
    if (rng.chance(0.1)) headers.authorization = 'Bearer nope';
    return {
      transport: 'http',
      method,
      path,
      ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
      headers,
      oversize: bodyKind === 3,
      label: `route ${method} ${path.slice(0, 30)}`,
    };
  } else {
    return { transport: 'raw', bytes: rawCase(rng), label: 'raw' };
  }
  if (viaIo) return { transport: 'io', event: 'command', payload: cmd, ack: rng.chance(0.95), label: `io ${label}` };
  const o = typeof cmd === 'object' && cmd !== null && !Array.isArray(cmd) ? (cmd as Obj) : { type: 'request', body: cmd };
  const h = toHttp(o);
  const body = h.body !== undefined ? jsonOrDeep(h.body) : undefined;
  const oversize = body !== undefined && Buffer.byteLength(body) > 64 * 1024;
  return {
    transport: 'http',
    method: h.method,
    path: h.path,
    ...(body !== undefined ? { body } : {}),
    oversize,
    label: `http ${label} ${String(o.type).slice(0, 20)}`,
  };
}

/** JSON text of `v`; when it is too deep for JSON.stringify, a put whose value is nested as deep, written by hand. */
function jsonOrDeep(v: unknown): string {
  try {
    return JSON.stringify(v) ?? 'null';
  } catch {
    const d = 20_000;
    return `{"type":"request","op":"put","key":"fz","value":${'['.repeat(d)}${']'.repeat(d)}}`;
  }
}

export function describeCase(c: FuzzCase): string {
  const cut = (s: string): string => (s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s);
  switch (c.transport) {
    case 'http':
      return `HTTP ${c.method} ${cut(c.path)} ${c.body === undefined ? '' : cut(typeof c.body === 'string' ? c.body : Buffer.isBuffer(c.body) ? `<${c.body.length} bytes>` : safeJson(c.body))}`;
    case 'io':
      return `Socket.IO ${cut(c.event)}${c.ack ? ' (with ack)' : ''} ${cut(safeJson(c.payload))}`;
    case 'raw':
      return `raw TCP ${cut(JSON.stringify(c.bytes.subarray(0, 200).toString('latin1')))}`;
  }
}

export function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch (e) {
    return `<${e instanceof Error ? e.message : 'unserializable'}>`;
  }
}
