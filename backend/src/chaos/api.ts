import * as http from 'node:http';
import type { NumberedEvent, StreamSnapshot, EventBatch } from '@dse/shared';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';

/**
 * Clients of the live server for the chaos tool and the fuzzer: HTTP (one keep-alive agent per client,
 * each from its own loopback address so that each has its own rate-limit bucket, as separate machines
 * would) and Socket.IO (commands and the event stream). Transport failures are answers too: the server
 * may be down on purpose.
 */

export type HttpAnswer = { status: number; json: unknown; text: string } | { transport: string };

export interface HttpClientOptions {
  /** Source address, e.g. 127.0.0.2 (any 127/8 address works on Linux). */
  localAddress?: string;
  token?: string;
  timeoutMs?: number;
  /** Reuse connections (default true). Off: a connection per request, so that no answer depends on an earlier request on the same connection, nor races its closing. */
  keepAlive?: boolean;
}

export class HttpClient {
  private readonly agent: http.Agent;
  constructor(
    public baseUrl: string,
    private readonly o: HttpClientOptions = {},
  ) {
    this.agent = new http.Agent({ keepAlive: o.keepAlive ?? true, maxSockets: 4, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) });
  }

  /** `body`: a value to JSON-encode, or a string/Buffer sent as is. */
  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = this.o.timeoutMs ?? 20_000): Promise<HttpAnswer> {
    return new Promise((resolve) => {
      const u = new URL(path, this.baseUrl);
      const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
      const h: Record<string, string> = { ...headers };
      if (payload !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/json';
      // Node sends DELETE/OPTIONS bodies without framing unless told their length.
      if (payload !== undefined) h['content-length'] = String(Buffer.byteLength(payload));
      if (this.o.token !== undefined && h.authorization === undefined) h.authorization = `Bearer ${this.o.token}`;
      let done = false;
      const finish = (a: HttpAnswer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(a);
      };
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = undefined;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          finish({ status: res.statusCode ?? 0, json, text });
        });
        res.on('error', (e) => finish({ transport: e.message }));
      });
      const timer = setTimeout(() => {
        req.destroy(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (e) => finish({ transport: e.message }));
      if (payload !== undefined) req.end(payload);
      else req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export type IoAnswer = { reply: unknown } | { transport: string };

/** One Socket.IO connection: commands with acknowledgements, and (optionally) the event stream. */
export class IoClient {
  private constructor(readonly socket: Socket) {}

  static connect(
    url: string,
    o: { token?: string; timeoutMs?: number; onEvents?: (events: NumberedEvent[], snapshot: StreamSnapshot | null) => void } = {},
  ): Promise<IoClient> {
    return new Promise((resolve, reject) => {
      const socket = io(url, {
        transports: ['websocket'],
        reconnection: false,
        timeout: o.timeoutMs ?? 15_000,
        auth: o.token !== undefined ? { token: o.token } : {},
      });
      socket.on('snapshot', (s: StreamSnapshot) => o.onEvents?.(s.history, s));
      socket.on('events', (b: EventBatch, ack?: () => void) => {
        o.onEvents?.(b.events, null);
        if (typeof ack === 'function') ack();
      });
      socket.once('connect', () => resolve(new IoClient(socket)));
      socket.once('connect_error', (e) => {
        socket.close();
        reject(e);
      });
    });
  }

  get connected(): boolean {
    return this.socket.connected;
  }

  /** Sends `command` with an acknowledgement; a lost connection or no answer is a transport failure. */
  command(cmd: unknown, timeoutMs = 20_000): Promise<IoAnswer> {
    if (!this.socket.connected) return Promise.resolve({ transport: 'not connected' });
    let sent: Promise<unknown>;
    try {
      sent = this.socket.timeout(timeoutMs).emitWithAck('command', cmd);
    } catch (e) {
      // socket.io-client could not encode it (too deep for JSON.stringify): nothing left this process.
      return Promise.resolve({ transport: `client: ${e instanceof Error ? e.message : String(e)}` });
    }
    return sent.then(
      (reply: unknown) => ({ reply }),
      (e: unknown) => ({ transport: e instanceof Error ? e.message : String(e) }),
    );
  }

  /** Emits anything without waiting (for the fuzzer: events the server does not know, no callback). */
  emitRaw(event: string, ...args: unknown[]): void {
    this.socket.emit(event, ...args);
  }

  close(): void {
    this.socket.close();
  }
}
