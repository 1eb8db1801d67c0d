import type { Mode } from '@dse/shared';
import type { SessionRequestView } from './views';

/** The sessions' requests (`session#seq`), oldest first, at most `max` (the oldest go first). */
export class SessionLog {
  readonly requests = new Map<string, SessionRequestView>();

  constructor(private readonly max: number) {}

  /** The request, recorded now if it is new. */
  request(session: string, seq: number): SessionRequestView {
    const key = `${session}#${seq}`;
    let r = this.requests.get(key);
    if (r === undefined) {
      r = { session, seq, sentAt: null, mode: null, speculativeAt: null, committedAt: null, rolledBackAt: null };
      this.requests.set(key, r);
      if (this.requests.size > this.max) {
        const oldest = this.requests.keys().next();
        if (oldest.done !== true) this.requests.delete(oldest.value);
      }
    }
    return r;
  }

  /** A session heard its request's answer (in the cluster's `mode` then). */
  result(session: string, seq: number, status: 'speculative' | 'committed' | 'rolledBack', t: number, mode: Mode | null): void {
    const r = this.request(session, seq);
    r.mode ??= mode;
    if (status === 'speculative') r.speculativeAt ??= t;
    else if (status === 'committed') r.committedAt ??= t;
    else r.rolledBackAt ??= t;
  }
}
