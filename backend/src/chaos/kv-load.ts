import type { Json } from '@dse/shared';
import { wallNow } from '../live/clock';
import { HttpClient } from './api';
import type { RunContext } from './run-context';
import { sleep } from './run-context';
import type { Load } from './service-load';
import { applyReply, isOpen, pollOpen, sessionRolledBack } from './tracked';
import type { PutRecord } from './verify';

/** The kv scenario's load: clients putting unique keys through HTTP. */
export class KvLoadClient implements Load {
  private readonly http: HttpClient;
  private readonly seqs = new Map<string, number>();
  private readonly mine: PutRecord[] = [];

  constructor(
    private readonly ctx: RunContext,
    private readonly index: number,
  ) {
    this.http = new HttpClient(ctx.server.url, { localAddress: `127.0.0.${20 + index}`, timeoutMs: 15_000 });
  }

  async run(): Promise<void> {
    const interval = 1000 / this.ctx.o.rate;
    let pollAt = 0;
    while (!this.ctx.stopping) {
      if (!this.ctx.up) {
        await sleep(100);
        continue;
      }
      const started = wallNow();
      await this.putOnce();
      if (started - pollAt > 300) {
        pollAt = started;
        await this.poll();
      }
      const wait = interval - (wallNow() - started);
      if (wait > 0) await sleep(wait);
    }
  }

  private async putOnce(): Promise<void> {
    const inc = this.ctx.incarnation;
    // Sessions live in the server: a new server incarnation gets new sessions.
    const session = `${this.ctx.keyPrefix}${this.index}-${inc}`;
    const q = (this.seqs.get(session) ?? 0) + 1;
    this.seqs.set(session, q);
    const key = `${session}.${q}`;
    const value: Json = { q, s: session };
    const rec: PutRecord = {
      session,
      q,
      key,
      value,
      incarnation: inc,
      id: null,
      outcome: 'pending',
      answerWorldLine: null,
      resumes: this.ctx.sessions.of(session),
    };
    this.ctx.records.push(rec);
    this.mine.push(rec);
    const a = await this.http.request('POST', '/api/requests', { session, op: 'put', key, value });
    if ('transport' in a) {
      rec.outcome = 'unknown';
      return;
    }
    // An earlier put of the session was rolled back: this one was refused, never sent. Resume and go on.
    if (sessionRolledBack(applyReply(rec, a.status, a.json))) await this.ctx.sessions.resume(this.http, session);
  }

  /** Asks for the outcome of requests of the current server incarnation that are not final. */
  poll(max = 25): Promise<number> {
    return pollOpen(this.ctx, this.http, this.mine, applyReply, max);
  }

  /** The server incarnation ended: whatever was not final is unknown now. */
  orphanIncarnation(inc: number): void {
    for (const r of this.mine) if (r.incarnation === inc && isOpen(r)) r.outcome = 'unknown';
  }

  openCount(): number {
    const inc = this.ctx.incarnation;
    return this.mine.filter((r) => r.incarnation === inc && isOpen(r)).length;
  }

  close(): void {
    this.http.close();
  }
}
