import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DseError } from '@dse/shared';
import type { Socket } from 'socket.io';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase());
}

/**
 * The pages' Content-Security-Policy: scripts, styles and connections (Socket.IO over WebSocket) only
 * from this server, nothing inline (React and d3 set styles through the CSSOM, which CSP allows);
 * no plugins, no framing. `playwright/csp.spec.ts` checks the playground runs without a violation.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function cookieToken(cookie: string | undefined): string | null {
  if (cookie === undefined) return null;
  for (const part of cookie.split(';')) {
    const [k, ...rest] = part.trim().split('=');
    if (k === 'dse_token') return decodeURIComponent(rest.join('='));
  }
  return null;
}

/** Who may talk to the server, for HTTP and both Socket.IO paths (see docs/security.md). */
export interface Security {
  /** The cluster's token; `null`: none, and the server listens on loopback only. */
  readonly token: string | null;
  tokenOk(t: unknown): boolean;
  hostHeaderOk(req: IncomingMessage): boolean;
  /** A browser request made by a page of another site (its Origin, or its Sec-Fetch-Site, says so). */
  crossSite(req: IncomingMessage): boolean;
  /** An HTTP request carries the token (bearer or cookie), or none is needed. */
  authorized(req: IncomingMessage): boolean;
  /** Socket.IO's check of the handshake's HTTP request (Host, and Origin without a token). */
  allowRequest: (req: IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void) => void;
  /** Socket.IO middleware: the connection presents the token (auth, bearer header or cookie). */
  authMiddleware: (socket: Socket, next: (err?: Error) => void) => void;
}

export function createSecurity(token: string | null): Security {
  const tokenDigest = token === null ? null : digest(token);
  const tokenOk = (t: unknown): boolean => tokenDigest === null || (typeof t === 'string' && timingSafeEqual(digest(t), tokenDigest));

  const hostHeaderOk = (req: IncomingMessage): boolean => {
    if (token !== null) return true;
    // Without a token the server is on loopback: refuse other Host names (DNS rebinding).
    const h = (req.headers.host ?? '').toLowerCase();
    const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
    return isLoopback(name);
  };
  const crossSite = (req: IncomingMessage): boolean => {
    if (req.headers['sec-fetch-site'] === 'cross-site') return true;
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === 'null' && token === null;
    let o: URL;
    try {
      o = new URL(origin);
    } catch {
      return true;
    }
    if (token === null) return !isLoopback(o.hostname);
    return o.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase();
  };
  const authorized = (req: IncomingMessage): boolean => {
    if (token === null) return true;
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && auth.startsWith('Bearer ') && tokenOk(auth.slice(7))) return true;
    const c = cookieToken(req.headers.cookie);
    return c !== null && tokenOk(c);
  };

  const allowRequest = (req: IncomingMessage, cb: (err: string | null | undefined, success: boolean) => void): void => {
    if (!hostHeaderOk(req)) {
      cb('Unauthorized: wrong Host', false);
      return;
    }
    if (token === null) {
      // Browsers from other sites must not drive a loopback server.
      const origin = req.headers.origin;
      if (origin !== undefined) {
        let ok = false;
        try {
          ok = isLoopback(new URL(origin).hostname);
        } catch {
          ok = false;
        }
        if (!ok) {
          cb('Unauthorized: cross-origin', false);
          return;
        }
      }
    }
    cb(null, true);
  };
  const authMiddleware = (socket: Socket, next: (err?: Error) => void): void => {
    if (token === null) {
      next();
      return;
    }
    const auth = socket.handshake.auth as { token?: unknown } | undefined;
    const header = socket.handshake.headers.authorization;
    const ok =
      tokenOk(auth?.token) ||
      (typeof header === 'string' && header.startsWith('Bearer ') && tokenOk(header.slice(7))) ||
      tokenOk(cookieToken(socket.handshake.headers.cookie));
    if (!ok) {
      const err = new Error('Unauthorized: this server needs its token in the handshake (io(url, {auth: {token}}))') as Error & { data: unknown };
      err.data = { error: new DseError('Unauthorized', 'missing or wrong token').toBody() };
      next(err);
      return;
    }
    next();
  };

  return { token, tokenOk, hostHeaderOk, crossSite, authorized, allowRequest, authMiddleware };
}
