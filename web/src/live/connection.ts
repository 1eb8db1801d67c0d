import { io, type Socket } from 'socket.io-client';
import type {
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
import { isApiError } from '@dse/shared';

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected';

export interface ConnectionHandlers {
  onSnapshot(s: StreamSnapshot): void;
  onBatch(b: EventBatch): void;
  onNotice(n: Notice): void;
  onStatus(s: ConnectionStatus, detail?: string): void;
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
    const opts = { transports: ['websocket', 'polling'], ...(token !== undefined && token !== '' ? { auth: { token } } : {}) };
    this.socket = url === undefined ? io(opts) : io(url, opts);
    h.onStatus('connecting');
    this.socket.on('connect', () => h.onStatus('connected'));
    this.socket.on('disconnect', (reason) => h.onStatus('disconnected', reason));
    this.socket.on('connect_error', (err) => h.onStatus('disconnected', err.message));
    this.socket.on('snapshot', (s) => {
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
      this.socket.timeout(timeoutMs).emit('command', c, (err: Error | null, reply: CommandReply) => {
        if (err !== null) {
          reject(new CommandError('Timeout', `no answer to ${c.type} within ${timeoutMs} ms`, false));
          return;
        }
        if (isApiError(reply)) reject(new CommandError(reply.error.code, reply.error.message, reply.error.definite));
        else resolve(reply as unknown as CommandResults[C]);
      });
    });
  }

  close(): void {
    this.socket.removeAllListeners();
    this.socket.disconnect();
  }
}
