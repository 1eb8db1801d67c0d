import { io, type Socket } from 'socket.io-client';
import type {
  ApiReply,
  BrowserToServerEvents,
  Command,
  CommandReply,
  CommandResults,
  CommandType,
  EventBatch,
  Notice,
  ServerToBrowserEvents,
  StreamSnapshot,
} from '@dse/shared';
import { isApiError, PROTOCOL_VERSION } from '@dse/shared';

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected';

export interface ConnectionHandlers {
  onSnapshot(s: StreamSnapshot): void;
  onBatch(b: EventBatch): void;
  onNotice(n: Notice): void;
  onStatus(s: ConnectionStatus, detail?: string): void;
}

/** Why this page stops listening to a server of another protocol version. */
export function protocolMismatch(serverProtocol: unknown): string {
  return `the server speaks protocol version ${String(serverProtocol)} and this page ${PROTOCOL_VERSION}: reload the page`;
}

export class CommandError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly definite: boolean,
  ) {
    super(message);
  }
}

/** The browser's side of the server's Socket.IO API: snapshot, numbered batches (acknowledged), commands. */
export class LiveConnection {
  private socket: Socket<ServerToBrowserEvents, BrowserToServerEvents>;
  /** Number of the last event applied: a batch that does not follow it means events were missed. */
  private lastEvent = 0;

  constructor(
    private readonly h: ConnectionHandlers,
    url?: string,
    token?: string,
  ) {
    // The protocol version goes in the handshake: a server of another release refuses this page by name.
    const auth = { protocol: PROTOCOL_VERSION, ...(token !== undefined && token !== '' ? { token } : {}) };
    const opts = { transports: ['websocket', 'polling'], auth };
    this.socket = url === undefined ? io(opts) : io(url, opts);
    h.onStatus('connecting');
    this.socket.on('connect', () => h.onStatus('connected'));
    this.socket.on('disconnect', (reason) => h.onStatus('disconnected', reason));
    this.socket.on('connect_error', (err) => h.onStatus('disconnected', err.message));
    this.socket.on('snapshot', (s) => {
      if (s.protocol !== PROTOCOL_VERSION) {
        // A server of another release: its stream would be misread. Stop, and say why.
        this.close();
        h.onStatus('disconnected', protocolMismatch(s.protocol));
        return;
      }
      this.lastEvent = s.lastEvent;
      h.onSnapshot(s);
    });
    this.socket.on('events', (b, ack) => {
      // Acknowledge first: the server counts unacknowledged batches to find slow browsers.
      ack();
      if (b.to <= this.lastEvent) return;
      if (b.from !== this.lastEvent + 1 && this.lastEvent !== 0) {
        h.onNotice({ level: 'warning', message: `events ${this.lastEvent + 1}–${b.from - 1} were missed; reconnecting for a fresh snapshot` });
        this.resync();
        return;
      }
      this.lastEvent = b.to;
      h.onBatch(b);
    });
    this.socket.on('notice', (n) => h.onNotice(n));
  }

  /** Drops the connection and connects again: the server answers a connect with a full snapshot. */
  resync(): void {
    this.socket.disconnect();
    this.socket.connect();
  }

  command<C extends CommandType>(c: Extract<Command, { type: C }>, timeoutMs = 30_000): Promise<CommandResults[C]> {
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit('command', c, (err: Error | null, anyReply: CommandReply) => {
        if (err !== null) {
          reject(new CommandError('Timeout', `no answer to ${c.type} within ${timeoutMs} ms`, false));
          return;
        }
        // The server answers a command of type C with C's reply (Socket.IO's event map cannot say so).
        const reply = anyReply as ApiReply<CommandResults[C]>;
        if (isApiError(reply)) reject(new CommandError(reply.error.code, reply.error.message, reply.error.definite));
        else resolve(reply);
      });
    });
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
