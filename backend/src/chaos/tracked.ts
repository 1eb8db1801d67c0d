import type { Json, WorldLine } from '@dse/shared';
import type { HttpClient } from './api';
import type { Outcome } from './verify';

/**
 * What the load clients of every scenario share: a request they sent, followed through the server's
 * replies (`POST /api/requests` or `/api/service`, then `GET /api/requests/:id`) to its outcome.
 */
export interface TrackedRequest {
  /** Server incarnation (1, 2, …) the request was sent to; request ids are only meaningful within it. */
  incarnation: number;
  id: string | null;
  outcome: Outcome;
  answerWorldLine: WorldLine | null;
  /** The session's resumes (as the client counted them) when the request was made. */
  resumes: number;
}

/** What one reply says, read once for every client. */
export type ReplyReading =
  /** An answer: the request's id, its status now, and its answer (result and world-line) once there was one. */
  | { kind: 'answer'; id: string; outcome: Outcome; answer: { result: Json; worldLine: WorldLine } | null; node: string | null }
  /** An error; with an id when the request exists but was not answered in time (ask later). */
  | { kind: 'error'; code: string; definite: boolean; id: string | null }
  /** Nothing to learn from it. */
  | { kind: 'none' };

export function readReply(status: number, json: unknown): ReplyReading {
  const j = (json ?? {}) as { id?: string; node?: string; status?: string; worldLine?: number; result?: Json; error?: { code: string; definite: boolean } };
  if (status === 200 && typeof j.id === 'string' && j.status === 'failed' && j.error !== undefined)
    // Closed with an error that is not a rollback (NodeRemoved, Orphaned): as if the request had answered it.
    return { kind: 'error', code: j.error.code, definite: j.error.definite, id: null };
  const refusal = resultError(j.result);
  if (status === 200 && typeof j.id === 'string' && j.status === 'committed' && refusal !== null)
    // A typed refusal by the service (a WrongOwner still, after every try), answered and committed: it did not happen.
    return { kind: 'error', code: refusal.code, definite: refusal.definite, id: null };
  if (status === 200 && typeof j.id === 'string') {
    const outcome: Outcome = j.status === 'committed' ? 'committed' : j.status === 'rolled-back' ? 'rolled-back' : 'speculative';
    const answer = j.result !== null && j.result !== undefined && typeof j.worldLine === 'number' ? { result: j.result, worldLine: j.worldLine } : null;
    return { kind: 'answer', id: j.id, outcome, answer, node: typeof j.node === 'string' ? j.node : null };
  }
  // With an id, an indefinite error (no answer in time, Orphaned) is asked about later; a definite one is final.
  if (j.error !== undefined)
    return { kind: 'error', code: j.error.code, definite: j.error.definite, id: typeof j.id === 'string' && !j.error.definite ? j.id : null };
  return { kind: 'none' };
}

/** The typed error a result holds (`{error: {code, definite}}`: the service refused), or null. */
function resultError(result: Json | undefined): { code: string; definite: boolean } | null {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return null;
  const e = result.error;
  if (typeof e !== 'object' || e === null || Array.isArray(e) || typeof e.code !== 'string') return null;
  return { code: e.code, definite: e.definite !== false };
}

/** Applies the common part of a reply to a record; returns the reading for what a client keeps besides. */
export function applyReply(rec: TrackedRequest, status: number, json: unknown): ReplyReading {
  const r = readReply(status, json);
  if (r.kind === 'answer') {
    rec.id = r.id;
    if (r.answer !== null) rec.answerWorldLine = r.answer.worldLine;
    rec.outcome = r.outcome;
  } else if (r.kind === 'error') {
    if (r.id !== null) {
      rec.id = r.id; // no answer in time: ask later
      rec.outcome = 'speculative';
    } else rec.outcome = r.definite ? 'refused' : 'unknown';
  } else rec.outcome = 'unknown';
  return r;
}

/** The reply says the session is rolled back: the request was refused, never sent, until the client resumes the session. */
export function sessionRolledBack(r: ReplyReading): boolean {
  return r.kind === 'error' && r.code === 'SessionRolledBack';
}

/**
 * A client's sessions and how often it resumed each. A session with a rolled-back request refuses
 * every later one (`SessionRolledBack`, definite) until `POST /api/sessions/:name/resume`; the
 * surviving requests of a session are a prefix between two resumes, so each request records the count
 * at the time it was made. The count goes up whenever a resume may have happened (the server said
 * `resumed: true`, or the answer was lost): a count too high only splits a segment in two (a weaker
 * check), one too low could report a prefix violation that is none.
 */
export class SessionResumes {
  private readonly counts = new Map<string, number>();
  /** Resumes the server confirmed (`resumed: true`). */
  confirmed = 0;

  of(session: string): number {
    return this.counts.get(session) ?? 0;
  }

  /** Acknowledges the session's rollback so that it takes requests again. */
  async resume(http: HttpClient, session: string): Promise<void> {
    const a = await http.request('POST', `/api/sessions/${encodeURIComponent(session)}/resume`);
    const resumed = 'status' in a && a.status === 200 ? (a.json as { resumed?: unknown } | undefined)?.resumed : undefined;
    // A definite answer that nothing was resumed (not rolled back, or no such session: the server restarted): no new segment.
    if (resumed === false || ('status' in a && a.status >= 400 && a.status < 500)) return;
    if (resumed === true) this.confirmed++;
    this.counts.set(session, this.of(session) + 1);
  }
}

/** Not final yet: it may still commit or roll back. */
export function isOpen(r: TrackedRequest): boolean {
  return r.outcome === 'speculative' || r.outcome === 'pending';
}

/**
 * Asks the server for the outcome of up to `max` open requests of the current incarnation (stopping
 * if the server restarts meanwhile); `apply` takes each 200 reply. Returns how many were open.
 */
export async function pollOpen<R extends TrackedRequest>(
  ctx: { incarnation: number },
  http: HttpClient,
  mine: readonly R[],
  apply: (r: R, status: number, json: unknown) => void,
  max = 25,
): Promise<number> {
  const inc = ctx.incarnation;
  const open = mine.filter((r) => r.incarnation === inc && r.id !== null && isOpen(r));
  for (const r of open.slice(0, max)) {
    if (ctx.incarnation !== inc) break;
    const a = await http.request('GET', `/api/requests/${r.id}`);
    if ('transport' in a || ctx.incarnation !== inc) continue;
    if (a.status === 200) apply(r, a.status, a.json);
  }
  return open.length;
}
