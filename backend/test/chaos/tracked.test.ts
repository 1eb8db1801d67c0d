import { describe, expect, it } from 'vitest';
import type { TrackedRequest } from '../../src/chaos/tracked';
import { applyReply, readReply } from '../../src/chaos/tracked';

describe("the load clients' reading of a reply", () => {
  const fresh = (): TrackedRequest => ({ incarnation: 1, id: null, outcome: 'pending', answerWorldLine: null, resumes: 0 });

  it('an Orphaned request is neither rolled back nor refused: unknown outcome, with its error', () => {
    // The POST answers the error with the request's id; asked later, the request is `failed` with it.
    const rec = fresh();
    const first = applyReply(rec, 409, { error: { code: 'Orphaned', message: 'm', definite: false }, id: 'r7' });
    expect(first).toMatchObject({ kind: 'error', code: 'Orphaned', id: 'r7' });
    const later = applyReply(rec, 200, { ok: true, id: 'r7', status: 'failed', result: null, error: { code: 'Orphaned', message: 'm', definite: false } });
    expect(later).toMatchObject({ kind: 'error', code: 'Orphaned' });
    expect(rec.outcome).toBe('unknown');
  });

  it('a request failed with a definite error (NodeRemoved) never ran: refused', () => {
    const rec = fresh();
    applyReply(rec, 200, { ok: true, id: 'r8', status: 'failed', result: null, error: { code: 'NodeRemoved', message: 'm', definite: true } });
    expect(rec.outcome).toBe('refused');
    expect(readReply(200, { ok: true, id: 'r9', status: 'rolled-back', result: null })).toMatchObject({ kind: 'answer', outcome: 'rolled-back' });
  });

  it('a typed refusal (WrongOwner after every try) is refused, answered at once or asked about later, never committed (chaos M35)', () => {
    const error = { code: 'WrongOwner', message: 'wal:x is owned by n12 (placement version 0)', definite: true };
    const rec = fresh();
    expect(applyReply(rec, 409, { error, id: 'r10' })).toMatchObject({ kind: 'error', code: 'WrongOwner', id: null });
    expect(rec.outcome).toBe('refused');
    const later = fresh();
    applyReply(later, 200, { ok: true, id: 'r10', status: 'committed', result: { error }, worldLine: 3 });
    expect(later.outcome).toBe('refused');
  });
});
