import * as net from 'node:net';
import { ERROR_CODES } from '@dse/shared';
import type { HttpAnswer } from './api';
import type { FuzzCase, Obj } from './fuzz-generate';
import { safeJson } from './fuzz-generate';

// Judging: whether an answer is one the server may give.

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

export function errorCode(body: unknown): string {
  const e = (body as { error?: { code?: unknown } } | null)?.error;
  return typeof e?.code === 'string' ? e.code : 'ok';
}

export function httpProblem(c: Extract<FuzzCase, { transport: 'http' }>, a: HttpAnswer): { problem: string | null; code: string } {
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

/**
 * Sends raw bytes (a `raw` case) and judges the answer: null when fine (any answer under 500, or none: the
 * server may wait for the rest of a partial request), else what is wrong.
 */
export function rawExchange(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<string | null> {
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
