import * as net from 'node:net';
import type { ClusterInfo, Json } from '@dse/shared';
import { ERROR_CODES } from '@dse/shared';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wallNow } from '../live/clock';
import { Rng } from '../sim/rng';
import type { HttpAnswer } from './api';
import { HttpClient, IoClient } from './api';
import { ServerProcess, freePort } from './server-proc';
import { CutWatch } from './verify';

/**
 * Seeded property-based fuzzing of every command the server accepts, over HTTP and Socket.IO: valid
 * commands, the same with fields dropped, added, retyped, oversized or nested absurdly deep, random
 * JSON, bodies that are not JSON, unknown routes and methods, raw malformed HTTP, and commands out of
 * order (nodes that do not exist or are down, requests never made). Properties:
 * - every answer is a valid reply (`{ok: true, ...}`) or a typed error `{error: {code, message, definite}}`
 *   whose code is known and whose `definite` matches the code (an `Internal` error is a failure: the
 *   server threw something it did not expect);
 * - the server stays up (the process runs and answers `health`);
 * - the committed state is unchanged: keys written (and committed) before the run, which the fuzzer
 *   never writes, read the same afterwards; the cut never goes back.
 *
 * Command `i` of seed `s` is generated from its own random source, so a failure names the seed and the
 * command's number, and `describeCommand(s, i)` shows it again.
 */

export interface FuzzOptions {
  commands: number;
  seed: number;
  /** Parallel HTTP and Socket.IO clients (each its own rate-limit bucket). */
  workers?: number;
  log: (line: string) => void;
  /** Share of valid commands that change the cluster (kill, config, ...), 0..1; default 0.15. */
  disruptive?: number;
  /**
   * Leave out inputs that trigger a known, reported bug (so that a short run can guard everything
   * else): `deep-values`, put values nested deeper than the storage accepts (backend/test/chaos/bugs.test.ts).
   */
  avoid?: KnownBug[];
}

export type KnownBug = 'deep-values';

export interface FuzzFailure {
  index: number;
  what: string;
  problem: string;
}

export interface FuzzResult {
  seed: number;
  commands: number;
  http: number;
  socket: number;
  raw: number;
  ok: number;
  errors: Record<string, number>;
  failures: number;
  failureDetails: FuzzFailure[];
  serverUp: boolean;
  committedUnchanged: boolean;
  /** After the run, a put on every first node commits (nothing the fuzzer sent stopped the cut). */
  cutMoves: boolean;
  sentinels: number;
  cutViolations: number;
  elapsedMs: number;
}

// ---------------------------------------------------------------- generation

type Obj = Record<string, unknown>;

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

let avoidDeep = false;

function deep(rng: Rng): unknown {
  if (rng.chance(0.3)) return deepArrays(rng, avoidDeep);
  const depth = rng.pick([100, 1000, 5000, 20_000]);
  let v: unknown = rng.chance(0.5) ? 1 : {};
  for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { a: v };
  return v;
}

function weird(rng: Rng): unknown {
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
      return deep(rng);
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
function validCommand(rng: Rng, disruptive: boolean): Obj {
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
function mutate(rng: Rng, cmd: Obj): unknown {
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
          weird(rng);
        break;
      case 2:
      case 3:
        if (keys.length > 0) c[rng.pick(keys)] = weird(rng);
        break;
      case 4: {
        const inner = keys.find((k) => typeof c[k] === 'object' && c[k] !== null && !Array.isArray(c[k]));
        if (inner !== undefined) {
          const o = c[inner] as Obj;
          const ik = Object.keys(o);
          if (ik.length > 0 && rng.chance(0.7)) o[rng.pick(ik)] = weird(rng);
          else o[rng.pick(['mode', 'cut', 'rate', 'kind', 'bogus', 'messageLoss', 'heartbeatTimeoutMs'])] = weird(rng);
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

function randomJson(rng: Rng, depth = 0): unknown {
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
      return weird(rng);
    case 5:
      return Array.from({ length: rng.int(0, 4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Obj = {};
      for (let i = 0; i < rng.int(0, 5); i++)
        o[rng.pick(['type', 'op', 'key', 'value', 'node', 'id', 'config', 'workload', 'session', 'seed', 'x'])] = randomJson(rng, depth + 1);
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

const FIRST_NODES = new Set(['n1', 'n2', 'n3', 'n4']);

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
  avoidDeep = avoid.includes('deep-values');
  const rng = new Rng((seed * 1_000_003 + index * 7919) >>> 0);
  const isDisruptive = rng.chance(disruptive);
  const family = rng.int(0, 99);
  const viaIo = rng.chance(0.4);
  let cmd: unknown;
  let label: string;
  if (family < 30) {
    cmd = validCommand(rng, isDisruptive);
    label = 'valid';
  } else if (family < 75) {
    cmd = mutate(rng, validCommand(rng, isDisruptive));
    label = 'mutated';
  } else if (family < 85) {
    cmd = randomJson(rng);
    label = 'random';
  } else if (family < 95) {
    if (viaIo) {
      const event = rng.pick(['command', 'command', 'join', 'up', 'st', 'm', 'events', 'snapshot', 'x'.repeat(200), 'disconnect']);
      return {
        transport: 'io',
        event,
        payload: rng.chance(0.3) ? Buffer.from([1, 2, 3]) : randomJson(rng),
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
                : jsonOrDeep(randomJson(rng));
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

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch (e) {
    return `<${e instanceof Error ? e.message : 'unserializable'}>`;
  }
}

// ---------------------------------------------------------------- checking answers

/** Null when `body` is a valid reply: `{ok: true, ...}` or a typed error; otherwise what is wrong. */
export function replyProblem(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return `the reply is not an object: ${safeJson(body).slice(0, 200)}`;
  const b = body as Obj;
  if (b.ok === true && !('error' in b)) return null;
  const e = b.error as Obj | undefined;
  if (typeof e !== 'object' || e === null) return `neither ok nor error: ${safeJson(body).slice(0, 200)}`;
  if (typeof e.code !== 'string' || !Object.prototype.hasOwnProperty.call(ERROR_CODES, e.code)) return `unknown error code ${safeJson(e.code)}`;
  if (typeof e.message !== 'string') return 'the error has no message';
  if (e.definite !== ERROR_CODES[e.code as keyof typeof ERROR_CODES].definite) return `error ${e.code} with definite ${safeJson(e.definite)}`;
  if (e.code === 'Internal') return `Internal error (the server threw something it did not expect): ${e.message.slice(0, 300)}`;
  return null;
}

function errorCode(body: unknown): string {
  const e = (body as { error?: { code?: unknown } } | null)?.error;
  return typeof e?.code === 'string' ? e.code : 'ok';
}

function httpProblem(c: Extract<FuzzCase, { transport: 'http' }>, a: HttpAnswer): { problem: string | null; code: string } {
  if ('transport' in a) {
    // A body over the limit is refused and the connection closed while the client may still be sending.
    if (c.oversize) return { problem: null, code: 'closed' };
    // So is a request line over Node's header limit (16 KiB): 431 and the connection closed at once.
    if (c.path.length > 16 * 1024) return { problem: null, code: 'closed' };
    return { problem: `no HTTP answer: ${a.transport}`, code: 'transport' };
  }
  // Node's HTTP parser refuses request lines and headers over its limit (16 KiB) before the server sees them.
  if (a.status === 431 || a.status === 414) return { problem: null, code: String(a.status) };
  const isApi = c.path === '/api' || c.path.startsWith('/api/') || c.path.startsWith('/api?') || c.path.startsWith('/api#');
  if (!isApi) {
    if (c.path.startsWith('/socket.io/')) return { problem: a.status >= 500 ? `status ${a.status}` : null, code: `socket.io ${a.status}` };
    // Static files: the page (200), 405 for other methods, 404 outside the folder.
    if (a.status >= 500) return { problem: `status ${a.status} on a static path`, code: String(a.status) };
    if (a.json !== undefined) return { problem: replyProblem(a.json), code: `static ${a.status}` };
    return { problem: null, code: `static ${a.status}` };
  }
  if (c.method === 'HEAD') return { problem: a.status >= 500 ? `status ${a.status}` : null, code: `HEAD ${a.status}` };
  if (a.json === undefined) return { problem: `status ${a.status} with a body that is not JSON: ${a.text.slice(0, 200)}`, code: String(a.status) };
  const p = replyProblem(a.json);
  if (p !== null) return { problem: p, code: errorCode(a.json) };
  const ok = errorCode(a.json) === 'ok';
  if (ok !== (a.status === 200)) return { problem: `status ${a.status} with ${ok ? 'ok' : 'an error'}`, code: errorCode(a.json) };
  return { problem: null, code: errorCode(a.json) };
}

function rawExchange(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = (r: string | null): void => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    // Either the server answers and/or closes, or it waits for more bytes (a partial request): both fine.
    const t = setTimeout(() => done(null), timeoutMs);
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', () => done(null));
    s.on('close', () => done(null));
    s.on('connect', () => {
      s.write(bytes, () => {
        setTimeout(() => {
          const text = Buffer.concat(chunks).toString('latin1');
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
          if (status !== null && Number(status[1]) >= 500 && Number(status[1]) !== 505) {
            clearTimeout(t);
            s.destroy();
            resolve(`raw request answered ${status[1]}`);
          }
        }, 300);
      });
    });
  });
}

// ---------------------------------------------------------------- the run

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Sentinel {
  key: string;
  node: string;
  value: Json;
}

async function committedRead(http: HttpClient, s: Sentinel): Promise<Json | undefined> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await http.request('POST', '/api/requests', { op: 'get', key: s.key, committedOnly: true, node: s.node }, {}, 30_000);
    if ('status' in a && a.status === 200) return ((a.json as { result: { value: Json } }).result ?? { value: null }).value;
    await sleep(500);
  }
  return undefined;
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const t0 = wallNow();
  const log = o.log;
  const dataDir = mkdtempSync(join(tmpdir(), 'dse-fuzz-'));
  const port = await freePort();
  const server = new ServerProcess({ port, dataDir });
  const workers = o.workers ?? 8;
  const result: FuzzResult = {
    seed: o.seed,
    commands: 0,
    http: 0,
    socket: 0,
    raw: 0,
    ok: 0,
    errors: {},
    failures: 0,
    failureDetails: [],
    serverUp: false,
    committedUnchanged: false,
    cutMoves: false,
    sentinels: 0,
    cutViolations: 0,
    elapsedMs: 0,
  };
  const fail = (index: number, what: string, problem: string): void => {
    result.failures++;
    if (result.failureDetails.length < 30) result.failureDetails.push({ index, what, problem });
    log(`FAIL #${index}: ${problem}\n    ${what}`);
  };
  const control = new HttpClient(server.url, { localAddress: '127.0.0.1', timeoutMs: 30_000 });
  const cuts = new CutWatch(new Set(['n1', 'n2', 'n3', 'n4']));
  const watchCut = async (): Promise<ClusterInfo | null> => {
    const a = await control.request('GET', '/api/cluster');
    if ('status' in a && a.status === 200) {
      const c = a.json as ClusterInfo;
      cuts.observe(c.worldLine, c.cut, 'GET /api/cluster');
      return c;
    }
    return null;
  };
  const ios: IoClient[] = [];
  const https: HttpClient[] = [];
  try {
    log(`fuzz: seed ${o.seed}, ${o.commands} commands; starting the server`);
    await server.start(180_000);
    await control.request('POST', '/api/config', { checkpointIntervalMs: 50 });
    // Sentinels: committed values the fuzzer never writes.
    for (let end = wallNow() + 120_000; ;) {
      const c = await watchCut();
      if (c !== null && c.nodes.every((n) => n.status === 'up')) break;
      if (wallNow() > end) throw new Error('the nodes did not come up');
      await sleep(300);
    }
    const sentinels: Sentinel[] = [];
    for (let i = 0; i < 8; i++) {
      const s: Sentinel = { key: `sentinel.${i}`, node: `n${(i % 4) + 1}`, value: { i, seed: o.seed } };
      const a = await control.request('POST', '/api/requests', { session: 'sentinels', op: 'put', key: s.key, value: s.value, node: s.node });
      if (!('status' in a) || a.status !== 200) throw new Error(`sentinel put failed: ${'status' in a ? a.text : a.transport}`);
      sentinels.push(s);
    }
    const before = new Map<string, Json | undefined>();
    for (let end = wallNow() + 120_000; ;) {
      let all = true;
      for (const s of sentinels) {
        const v = await committedRead(control, s);
        before.set(s.key, v);
        if (JSON.stringify(v) !== JSON.stringify(s.value)) all = false;
      }
      if (all) break;
      if (wallNow() > end) throw new Error('the sentinel values did not commit within 120 s');
      await sleep(500);
    }
    result.sentinels = sentinels.length;
    log(`sentinels committed; fuzzing with ${workers} workers`);

    for (let i = 0; i < workers; i++) {
      https.push(new HttpClient(server.url, { localAddress: `127.0.0.${60 + i}`, timeoutMs: 40_000, keepAlive: false }));
      ios.push(await IoClient.connect(server.url));
    }
    let next = 0;
    let serverDied = false;
    let lastLog = wallNow();
    const worker = async (w: number): Promise<void> => {
      for (;;) {
        const index = next++;
        if (index >= o.commands) return;
        const c = generateCase(o.seed, index, o.disruptive ?? 0.15, o.avoid ?? []);
        result.commands++;
        if (wallNow() - lastLog > 5000) {
          lastLog = wallNow();
          log(`  ${index}/${o.commands} commands, ${result.failures} failures`);
          void watchCut();
        }
        switch (c.transport) {
          case 'http': {
            result.http++;
            const a = await https[w]!.request(c.method, c.path, c.body, c.headers ?? {});
            const { problem, code } = httpProblem(c, a);
            result.errors[code] = (result.errors[code] ?? 0) + 1;
            if (code === 'ok') result.ok++;
            if (problem !== null) fail(index, describeCase(c), problem);
            break;
          }
          case 'io': {
            result.socket++;
            let io = ios[w]!;
            if (!io.connected) {
              // The server may drop a connection that sent something absurd (too large): that is allowed; reconnect.
              io.close();
              io = ios[w] = await IoClient.connect(server.url);
            }
            try {
              JSON.stringify(c.payload);
            } catch {
              // socket.io-client encodes with JSON.stringify too: this cannot leave the client.
              result.errors.clientRefused = (result.errors.clientRefused ?? 0) + 1;
              break;
            }
            if (c.event === 'command' && c.ack) {
              const a = await io.command(c.payload, 40_000);
              if ('transport' in a && a.transport.startsWith('client:')) {
                result.errors.clientRefused = (result.errors.clientRefused ?? 0) + 1;
              } else if ('transport' in a) {
                if (io.connected) fail(index, describeCase(c), `no Socket.IO answer: ${a.transport}`);
                result.errors.dropped = (result.errors.dropped ?? 0) + 1;
              } else {
                const p = replyProblem(a.reply);
                const code = errorCode(a.reply);
                result.errors[code] = (result.errors[code] ?? 0) + 1;
                if (code === 'ok') result.ok++;
                if (p !== null) fail(index, describeCase(c), p);
              }
            } else {
              try {
                if (c.ack) io.socket.timeout(2000).emit(c.event, c.payload, () => undefined);
                else io.emitRaw(c.event, c.payload);
              } catch (e) {
                // socket.io-client refuses reserved event names itself: nothing reached the server
                result.errors.clientRefused = (result.errors.clientRefused ?? 0) + 1;
                void e;
              }
              await sleep(5);
            }
            break;
          }
          case 'raw': {
            result.raw++;
            const p = await rawExchange(port, c.bytes);
            if (p !== null) fail(index, describeCase(c), p);
            break;
          }
        }
        if (!server.running) {
          if (!serverDied)
            fail(
              index,
              describeCase(c),
              `the server process exited (the command, or one just before it, killed it): ${server.recentLog().slice(-12).join(' | ')}`,
            );
          serverDied = true;
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
    log(`${result.commands} commands sent; checking the server and the committed state`);

    // Back to a quiet cluster, then read the sentinels again.
    result.serverUp = server.running;
    const h = await control.request('GET', '/api/health');
    if (!('status' in h) || h.status !== 200) {
      result.serverUp = false;
      fail(-1, 'GET /api/health', 'the server does not answer after the run');
    }
    if (result.serverUp) {
      await control.request('POST', '/api/workload', { rate: 0 });
      for (let attempt = 0; ; attempt++) {
        const a = await control.request(
          'POST',
          '/api/config',
          { mode: 'speculative', cut: 'exact', messageLoss: 0, networkDelayMs: 0, networkJitterMs: 0, autoRestart: true },
          {},
          120_000,
        );
        if ('status' in a && a.status === 200) break;
        if (attempt >= 10) throw new Error(`could not reset the configuration: ${'status' in a ? a.text : a.transport}`);
        await sleep(1000);
      }
      // Nodes the fuzzer killed come back (autoRestart covers later deaths; restart the ones down now).
      const now = await watchCut();
      for (const n of now?.nodes ?? []) if (FIRST_NODES.has(n.id) && n.status === 'down') await control.request('POST', `/api/nodes/${n.id}/restart`);
      await watchCut();
      let same = true;
      for (const s of sentinels) {
        const v = await committedRead(control, s);
        if (JSON.stringify(v) !== JSON.stringify(before.get(s.key))) {
          same = false;
          fail(-1, `committed read of ${s.key} at ${s.node}`, `was ${JSON.stringify(before.get(s.key))}, now ${JSON.stringify(v)}`);
        }
      }
      result.committedUnchanged = same;
      // Liveness: a put on each first node commits (no input left a node unable to persist).
      const ids: string[] = [];
      for (let i = 1; i <= 4; i++) {
        const a = await control.request('POST', '/api/requests', { session: `after-${i}`, op: 'put', key: `after.${i}`, value: i, node: `n${i}` }, {}, 60_000);
        if ('status' in a && a.status === 200) ids.push((a.json as { id: string }).id);
        else fail(-1, `put on n${i} after the run`, `refused: ${'status' in a ? a.text.slice(0, 200) : a.transport}`);
      }
      const undecided = new Set(ids);
      for (const end = wallNow() + 90_000; undecided.size > 0 && wallNow() < end;) {
        for (const id of [...undecided]) {
          const a = await control.request('GET', `/api/requests/${id}`);
          if ('status' in a && a.status === 200 && (a.json as { status: string }).status !== 'speculative') undecided.delete(id);
        }
        if (undecided.size > 0) await sleep(500);
      }
      result.cutMoves = undecided.size === 0 && ids.length === 4;
      if (undecided.size > 0) {
        const c = await watchCut();
        for (const id of undecided) {
          const a = await control.request('GET', `/api/requests/${id}`);
          log(`  undecided: ${'status' in a ? a.text.slice(0, 400) : a.transport}`);
        }
        fail(
          -1,
          'puts on n1..n4 after the run',
          `${undecided.size} of them did not commit within 90 s: the cut is stuck (${JSON.stringify(c?.cut)}; persisted ${JSON.stringify(c?.nodes.map((n) => `${n.id}:${n.persistedVersion}/${n.version}`))})`,
        );
      }
      await watchCut();
    }
    result.cutViolations = cuts.violations;
    for (const n of cuts.notes) fail(-1, 'cut', n.message);
  } finally {
    for (const io of ios) io.close();
    for (const h of https) h.close();
    control.close();
    await server.stop(10_000).catch(() => undefined);
    server.dispose();
    rmSync(dataDir, { recursive: true, force: true });
    result.elapsedMs = Math.round(wallNow() - t0);
  }
  return result;
}
