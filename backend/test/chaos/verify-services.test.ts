import type { Cut, Json, NodeId } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { FinalServiceState, Payload, ServiceName, ServiceRecord, ServiceVerdict } from '../../src/chaos/verify-services';
import { checkBroker, checkWal, checkWorkflow } from '../../src/chaos/verify-services';
import type { Outcome } from '../../src/chaos/verify';

/**
 * The service scenarios' chaos checks on made-up histories: a clean history passes, and each planted
 * bug (a lost commit, a duplicate, an orphan, a hole, a broken saga, wrong stock …) is reported.
 */

function rec(
  svc: ServiceName,
  session: string,
  q: number,
  payload: Payload,
  outcome: Outcome,
  result: Json | null,
  answerWorldLine: number | null = 1,
  resumes = 0,
): ServiceRecord {
  return { svc, session, q, incarnation: 1, id: `r${session}${q}`, node: null, payload, outcome, result, error: null, answerWorldLine, resumes };
}

function final(nodes: Record<NodeId, Record<string, Json>>, cut: Cut): FinalServiceState {
  return { nodes: new Map(Object.entries(nodes).map(([n, s]) => [n, new Map(Object.entries(s))])), cut, prefix: '' };
}

/** Every violation count of a verdict (all zero for a clean history). */
function counts(v: ServiceVerdict): Record<string, number> {
  return { lost: v.lostCommitted, duplicates: v.duplicates, orphans: v.orphans, prefix: v.prefixViolations, service: v.serviceViolations };
}
const CLEAN = { lost: 0, duplicates: 0, orphans: 0, prefix: 0, service: 0 };

// ------------------------------------------------------------------ wal

const append = (session: string, q: number, outcome: Outcome, pos: number | null, wl = 1, resumes = 0): ServiceRecord =>
  rec('wal', session, q, { op: 'append', log: 'L', data: `${session}#${q}` }, outcome, pos === null ? null : { pos }, pos === null ? null : wl, resumes);

function walState(entries: (string | null)[], n = entries.length, extra: Record<string, Json> = {}): Record<string, Json> {
  const s: Record<string, Json> = { 'wal/L/n': n, ...extra };
  entries.forEach((d, pos) => {
    if (d !== null) s[`wal/L/e/${pos}`] = { d, v: pos + 1 };
  });
  return s;
}

describe('checkWal', () => {
  const records = [
    append('a', 1, 'committed', 0),
    append('b', 1, 'committed', 1),
    append('a', 2, 'unknown', 2),
    append('a', 3, 'rolled-back', 3),
    append('b', 2, 'unknown', null),
  ];

  it('a clean history: committed appends at their positions, an unknown one there, a rolled-back one absent', () => {
    const v = checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2']) }, { n1: 5 }));
    expect(counts(v), JSON.stringify(v.notes)).toEqual(CLEAN);
    expect(v).toMatchObject({ committed: 2, rolledBack: 1, unknown: 2 });
    expect(v.stats).toMatchObject({ appends: 5, committedAppends: 2, entries: 3 });
  });

  it('a committed append missing, or at another position, is lost', () => {
    expect(checkWal(records, final({ n1: walState(['a#1']) }, { n1: 5 })).lostCommitted).toBe(1);
    const swapped = checkWal(records, final({ n1: walState(['b#1', 'a#1', 'a#2']) }, { n1: 5 }));
    expect(swapped.lostCommitted).toBe(2);
    expect(swapped.notes[0]!.message).toContain('L[0]');
  });

  it('an entry twice is a duplicate; a hole or an entry beyond the length is reported', () => {
    expect(checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2', 'a#1']) }, { n1: 5 })).duplicates).toBe(1);
    const hole = checkWal(records, final({ n1: walState(['a#1', 'b#1', null]) }, { n1: 5 }));
    expect(hole.serviceViolations).toBe(1);
    expect(hole.notes[0]).toMatchObject({ invariant: 'wal-log' });
    const beyond = checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2'], 2) }, { n1: 5 }));
    expect(beyond.serviceViolations).toBe(1);
  });

  it('an entry from a rolled-back append, or from no append at all, is an orphan', () => {
    expect(checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2', 'a#3']) }, { n1: 5 })).orphans).toBe(1);
    expect(checkWal(records, final({ n1: walState(['a#1', 'b#1', 'ghost']) }, { n1: 5 })).orphans).toBe(1);
  });

  it('an entry written above the cut it was read at is reported', () => {
    const v = checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2']) }, { n1: 2 }));
    expect(v.serviceViolations).toBe(1);
    expect(v.notes[0]).toMatchObject({ invariant: 'above-cut' });
  });

  it('a committed-only read that saw an entry the final log does not hold there: the committed prefix changed', () => {
    const read = rec('wal', 'c', 1, { op: 'read', log: 'L', from: 0, max: 10, upTo: 3 }, 'rolled-back', {
      entries: [
        { pos: 0, data: 'a#1' },
        { pos: 1, data: 'x' },
      ],
      next: 2,
      committed: true,
    });
    const v = checkWal([...records, read], final({ n1: walState(['a#1', 'b#1', 'a#2']) }, { n1: 5 }));
    expect(v.lostCommitted).toBe(1);
    expect(v.notes[0]!.message).toContain('committed-only read c#1');
  });

  it('prefix: a later append of the session survived without an earlier one', () => {
    const rs = [append('a', 1, 'unknown', 0), append('a', 2, 'unknown', 1), append('b', 1, 'unknown', 2)];
    const v = checkWal(rs, final({ n1: walState(['a#2', 'b#1']) }, { n1: 5 }));
    expect(v.prefixViolations).toBe(1);
    expect(v.notes[0]!.message).toContain('request 2');
  });

  it('prefix across world-lines: with no resume in between, an append answered in a later world-line cannot survive without an earlier one; after a resume it can', () => {
    // a#1 answered in world-line 1 and lost; a#2 answered in world-line 2 survived, no resume in between.
    const rs = [append('a', 1, 'unknown', 0, 1), append('a', 2, 'committed', 0, 2)];
    const v = checkWal(rs, final({ n1: walState(['a#2']) }, { n1: 5 }));
    expect(v.prefixViolations).toBe(1);
    expect(v.notes[0]!.message).toContain('answered in world-line 2');
    // a#1 rolled back, a#2 refused by the rolled-back session, resumed, a#3 committed: no violation.
    const resumed = [
      append('a', 1, 'rolled-back', 0, 1),
      { ...append('a', 2, 'refused', null), error: 'SessionRolledBack' },
      append('a', 3, 'committed', 0, 2, 1),
    ];
    expect(counts(checkWal(resumed, final({ n1: walState(['a#3']) }, { n1: 5 })))).toEqual(CLEAN);
    // Without that resume, a#3 surviving a#1's rollback is a violation.
    const notResumed = resumed.map((r) => ({ ...r, resumes: 0 }));
    expect(checkWal(notResumed, final({ n1: walState(['a#3']) }, { n1: 5 })).prefixViolations).toBe(1);
  });

  it("logs outside the run's prefix are not checked", () => {
    const s = final({ n1: walState(['a#1', 'b#1', 'a#2']), n2: { 'wal/other/n': 1, 'wal/other/e/0': { d: 'x', v: 1 } } }, { n1: 5, n2: 5 });
    expect(counts(checkWal(records, { ...s, prefix: 'L' }))).toEqual(CLEAN);
    expect(checkWal(records, s).orphans).toBe(1);
  });

  it('a log on two nodes is reported', () => {
    const v = checkWal(records, final({ n1: walState(['a#1', 'b#1', 'a#2']), n2: { 'wal/L/n': 0 } }, { n1: 5, n2: 1 }));
    expect(v.serviceViolations).toBe(1);
  });
});

// ------------------------------------------------------------------ broker

const publish = (session: string, q: number, producer: string, seq: number, outcome: Outcome, result: Json | null): ServiceRecord =>
  rec('broker', session, q, { op: 'publish', topic: 'T', producer, seq, data: `${producer}:${seq}` }, outcome, result);
const poll = (session: string, q: number, group: string, outcome: Outcome, from: number, events: [string, number][], upTo?: number): ServiceRecord =>
  rec('broker', session, q, { op: 'poll', topic: 'T', group, max: 10, ...(upTo !== undefined ? { upTo } : {}) }, outcome, {
    from,
    events: events.map(([p, s], i) => ({ offset: from + i, producer: p, seq: s, data: `${p}:${s}` })),
    next: from + events.length,
    committed: upTo !== undefined,
  });

function topicState(events: [string, number][], extra: Record<string, Json> = {}): Record<string, Json> {
  const s: Record<string, Json> = { 'br/T/n': events.length };
  const last = new Map<string, number>();
  events.forEach(([p, seq], o) => {
    s[`br/T/e/${o}`] = { p, s: seq, d: `${p}:${seq}`, v: o + 1 };
    last.set(p, Math.max(last.get(p) ?? 0, seq));
  });
  for (const [p, seq] of last) s[`br/T/p/${p}`] = seq;
  return { ...s, ...extra };
}

describe('checkBroker', () => {
  const events: [string, number][] = [
    ['p1', 1],
    ['p2', 1],
    ['p1', 2],
  ];
  const records = [
    publish('a', 1, 'p1', 1, 'committed', { offset: 0, duplicate: false }),
    publish('b', 1, 'p2', 1, 'committed', { offset: 1, duplicate: false }),
    publish('a', 2, 'p1', 2, 'unknown', { offset: 2, duplicate: false }),
    publish('a', 3, 'p1', 1, 'committed', { offset: null, duplicate: true }),
    publish('a', 4, 'p1', 4, 'committed', { offset: null, duplicate: false, expected: 3 }),
    poll('c', 1, 'G', 'committed', 0, [['p1', 1]]),
    poll('c', 2, 'G', 'committed', 1, [['p2', 1]], 2),
  ];

  it('a clean history: events in seq order per producer, a duplicate dropped, group offset where the committed polls left it', () => {
    const v = checkBroker(records, final({ n1: topicState(events, { 'br/T/g/G': 2 }) }, { n1: 9 }));
    expect(counts(v), JSON.stringify(v.notes)).toEqual(CLEAN);
    expect(v.stats).toMatchObject({ publishes: 5, duplicatesDropped: 1, events: 3, polls: 2 });
  });

  it('a duplicate publish that was not dropped', () => {
    const v = checkBroker(records, final({ n1: topicState([...events, ['p1', 1]], { 'br/T/g/G': 2, 'br/T/p/p1': 2 }) }, { n1: 9 }));
    expect(v.duplicates).toBe(1);
    expect(v.notes[0]!.message).toContain('p1/1 is there twice');
  });

  it("a producer's events out of order, or a seq skipped", () => {
    const swapped = checkBroker(
      records,
      final(
        {
          n1: topicState(
            [
              ['p1', 2],
              ['p2', 1],
              ['p1', 1],
            ],
            { 'br/T/g/G': 0 },
          ),
        },
        { n1: 9 },
      ),
    );
    expect(swapped.serviceViolations).toBeGreaterThan(0);
    expect(swapped.notes.some((n) => n.invariant === 'broker-order')).toBe(true);
    const skipped = checkBroker(
      [...records, publish('a', 5, 'p1', 3, 'unknown', null)],
      final({ n1: topicState([...events.slice(0, 2), ['p1', 3]], { 'br/T/g/G': 2 }) }, { n1: 9 }),
    );
    expect(skipped.notes.some((n) => n.invariant === 'broker-order' && n.message.includes('follows seq 1'))).toBe(true);
  });

  it('a committed publish lost, and an event from a rolled-back publish', () => {
    expect(checkBroker(records, final({ n1: topicState(events.slice(0, 1), { 'br/T/g/G': 1 }) }, { n1: 9 })).lostCommitted).toBeGreaterThan(0);
    const rolled = [...records.filter((r) => !(r.payload.producer === 'p1' && r.payload.seq === 2)), publish('a', 2, 'p1', 2, 'rolled-back', null)];
    expect(checkBroker(rolled, final({ n1: topicState(events, { 'br/T/g/G': 2 }) }, { n1: 9 })).orphans).toBe(1);
  });

  it('group offsets: beyond the topic, moved back below what committed polls delivered, delivered twice', () => {
    const beyond = checkBroker(records, final({ n1: topicState(events, { 'br/T/g/G': 4 }) }, { n1: 9 }));
    expect(beyond.notes.some((n) => n.invariant === 'broker-groups' && n.message.includes('beyond'))).toBe(true);
    const back = checkBroker(records, final({ n1: topicState(events, { 'br/T/g/G': 1 }) }, { n1: 9 }));
    expect(back.notes.some((n) => n.invariant === 'broker-groups' && n.message.includes('moved back'))).toBe(true);
    const twice = checkBroker(
      [
        ...records,
        poll('d', 1, 'G', 'committed', 1, [
          ['p2', 1],
          ['p1', 2],
        ]),
      ],
      final({ n1: topicState(events, { 'br/T/g/G': 3 }) }, { n1: 9 }),
    );
    expect(twice.duplicates).toBe(1);
  });

  it('a gap between committed polls is reported only when every poll of the group was decided', () => {
    const gap = [...records.slice(0, 5), poll('c', 1, 'G', 'committed', 0, [['p1', 1]]), poll('c', 3, 'G', 'committed', 2, [['p1', 2]])];
    const s = final({ n1: topicState(events, { 'br/T/g/G': 3 }) }, { n1: 9 });
    expect(checkBroker(gap, s).notes.some((n) => n.message.includes('never delivered'))).toBe(true);
    expect(counts(checkBroker([...gap, poll('c', 2, 'G', 'unknown', 1, [['p2', 1]])], s))).toEqual(CLEAN);
  });

  it('a committed-only poll that handed out an event the committed topic does not hold', () => {
    const v = checkBroker([...records, poll('e', 1, 'H', 'rolled-back', 0, [['p2', 1]], 1)], final({ n1: topicState(events, { 'br/T/g/G': 2 }) }, { n1: 9 }));
    expect(v.lostCommitted).toBe(1);
    // The same through the API (`committed: true`, the server fills upTo); a speculative poll that was rolled back: nothing to check.
    const api = poll('e', 1, 'H', 'rolled-back', 0, [['p2', 1]]);
    expect(
      checkBroker([...records, { ...api, payload: { ...api.payload, committed: true } }], final({ n1: topicState(events, { 'br/T/g/G': 2 }) }, { n1: 9 }))
        .lostCommitted,
    ).toBe(1);
    expect(counts(checkBroker([...records, api], final({ n1: topicState(events, { 'br/T/g/G': 2 }) }, { n1: 9 })))).toEqual(CLEAN);
  });
});

// ------------------------------------------------------------------ workflow

const flight = (wf: string, step: number, node = 'n1'): Json => ({
  name: 'flight LH',
  node,
  do: { svc: 'travel', op: 'reserve', wf, step, item: 'LH', capacity: 10, decline: false },
  undo: { svc: 'travel', op: 'cancel', wf, step },
});
const pay = (wf: string, step: number, decline: boolean): Json => ({
  name: 'payment visa',
  node: 'n2',
  do: { svc: 'travel', op: 'reserve', wf, step, item: 'visa', capacity: null, decline },
  undo: { svc: 'travel', op: 'cancel', wf, step },
});
const start = (session: string, q: number, id: string, steps: Json[], outcome: Outcome, result: Json | null): ServiceRecord =>
  rec('wf', session, q, { op: 'start', id, steps }, outcome, result);
const booking = (item: string, st: string, cn = 0, why: string | null = null, n = 1): Json => ({ item, st, n, cn, why, v: 1 });
const wfRec = (steps: Json[], ph: string, k: number, out: Json, f: number | null = null): Json => ({
  st: steps,
  c: 's',
  q: 1,
  k,
  ph,
  f,
  why: null,
  cp: [],
  out,
  v: 2,
});

describe('checkWorkflow', () => {
  const capacity = new Map<string, number | null>([
    ['LH', 10],
    ['visa', null],
  ]);
  const s1 = [flight('w1', 0), pay('w1', 1, false)];
  const s2 = [flight('w2', 0), pay('w2', 1, true)];
  const s3 = [flight('w3', 0), flight('w3', 1), pay('w3', 2, false)];
  const out1 = { id: 'w1', status: 'completed', compensated: [] };
  const out2 = { id: 'w2', status: 'failed', failedAt: 1, reason: 'declined', compensated: [0] };
  const records = [
    start('a', 1, 'w1', s1, 'committed', out1),
    start('a', 2, 'w2', s2, 'committed', out2),
    start('b', 1, 'w3', s3, 'unknown', null),
    start('b', 2, 'w4', [flight('w4', 0)], 'rolled-back', null),
  ];
  // n1: orchestrators and the flights; n2: payments. w3 is still running: step 0 booked, step 1 under way.
  const clean = (): Record<NodeId, Record<string, Json>> => ({
    n1: {
      'wf/w1': wfRec(s1, 'done', 2, out1),
      'wf/w2': wfRec(s2, 'done', -1, out2, 1),
      'wf/w3': wfRec(s3, 'run', 1, null),
      'tr/b/w1/0': booking('LH', 'booked'),
      'tr/b/w2/0': booking('LH', 'cancelled', 1),
      'tr/b/w3/0': booking('LH', 'booked'),
      'tr/s/LH': { c: 8, v: 1 },
    },
    n2: { 'tr/b/w1/1': booking('visa', 'booked'), 'tr/b/w2/1': booking('visa', 'refused', 0, 'declined') },
  });

  it('a clean history: completed, failed and compensated, one still running, one rolled back; stock matches', () => {
    const v = checkWorkflow(records, final(clean(), { n1: 5, n2: 5 }), capacity);
    expect(counts(v), JSON.stringify(v.notes)).toEqual(CLEAN);
    expect(v.stats).toMatchObject({
      workflowsStarted: 4,
      workflowsCommitted: 2,
      workflowsCompleted: 1,
      workflowsFailed: 1,
      workflowsUnfinished: 1,
      declined: 1,
    });
  });

  it("with membership changes a booking lives where its item moved, not necessarily at the step's first node; away from its item it is a violation", () => {
    // The payments' unit (visa) moved from n2 to n3 with its bookings; the flights stayed on n1.
    const s = clean();
    s.n3 = { 'tr/b/w1/1': s.n2!['tr/b/w1/1']!, 'tr/b/w2/1': s.n2!['tr/b/w2/1']! };
    s.n2 = {};
    const moved = final(s, { n1: 5, n2: 5, n3: 5 });
    expect(counts(checkWorkflow(records, moved, capacity)).service).toBeGreaterThan(0); // without moves: at n3, not n2
    expect(counts(checkWorkflow(records, moved, capacity, { unitsMove: true })), 'moved with its unit').toEqual(CLEAN);
    // A flight booking that is not with LH's stock (on n1): the unit is split.
    const split = clean();
    split.n2!['tr/b/w3/0'] = split.n1!['tr/b/w3/0']!;
    delete split.n1!['tr/b/w3/0'];
    const v = checkWorkflow(records, final(split, { n1: 5, n2: 5 }), capacity, { unitsMove: true });
    expect(v.notes.some((n) => n.message.includes("but LH's unit is at n1"))).toBe(true);
  });

  it('a step reserved twice is a duplicate (and holds stock twice)', () => {
    const s = clean();
    s.n1!['tr/b/w1/0'] = booking('LH', 'booked', 0, null, 2);
    const v = checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.duplicates).toBe(1);
  });

  it('a failed workflow whose earlier step was not compensated breaks the saga and the stock', () => {
    const s = clean();
    s.n1!['tr/b/w2/0'] = booking('LH', 'booked');
    const v = checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.notes.map((n) => n.invariant).sort()).toEqual(['saga', 'stock']);
  });

  it('stock that does not match the bookings', () => {
    const s = clean();
    s.n1!['tr/s/LH'] = { c: 9, v: 1 };
    const v = checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.notes).toEqual([expect.objectContaining({ invariant: 'stock' })]);
  });

  it('a committed workflow missing or unfinished is lost', () => {
    const s = clean();
    delete s.n1!['wf/w1'];
    const v = checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.lostCommitted).toBe(1);
    // ... and its bookings, without a workflow, are orphans.
    expect(v.orphans).toBe(1);
    const s2b = clean();
    s2b.n1!['wf/w2'] = wfRec(s2, 'comp', 0, null, 1);
    expect(checkWorkflow(records, final(s2b, { n1: 5, n2: 5 }), capacity).lostCommitted).toBe(1);
  });

  it('a rolled-back workflow in the committed state is an orphan', () => {
    const s = clean();
    s.n1!['wf/w4'] = wfRec([flight('w4', 0)], 'run', 0, null);
    expect(checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity).orphans).toBe(1);
  });

  it('an Orphaned start (under way at a node removed while down) must be in the committed state, whatever its phase', () => {
    // b#1 was under way when its node was removed: the server says failed, Orphaned (not rolled back).
    const orphaned = records.map((r) => (r.payload.id === 'w3' ? { ...r, outcome: 'unknown' as const, error: 'Orphaned' } : r));
    expect(counts(checkWorkflow(orphaned, final(clean(), { n1: 5, n2: 5 }), capacity)), 'there, unfinished').toEqual(CLEAN);
    const s = clean();
    delete s.n1!['wf/w3'];
    delete s.n1!['tr/b/w3/0'];
    s.n1!['tr/s/LH'] = { c: 9, v: 1 };
    const v = checkWorkflow(orphaned, final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.lostCommitted, JSON.stringify(v.notes)).toBe(1);
    expect(v.notes[0]!.message).toContain('Orphaned');
  });

  it('a declined payment booked, or a step run after the failed one', () => {
    const s = clean();
    s.n2!['tr/b/w2/1'] = booking('visa', 'booked');
    expect(checkWorkflow(records, final(s, { n1: 5, n2: 5 }), capacity).notes.some((n) => n.message.includes('declined payment was booked'))).toBe(true);
    const after = clean();
    after.n1!['tr/b/w3/2'] = booking('visa', 'booked');
    expect(checkWorkflow(records, final(after, { n1: 5, n2: 5 }), capacity).serviceViolations).toBeGreaterThan(0);
  });

  it('prefix: a workflow rolled back before it was answered, then a later one of the same session segment in the committed state', () => {
    const s = clean();
    s.n1!['wf/w5'] = wfRec([flight('w5', 0)], 'run', 0, null);
    // b#2 (w4) was rolled back before its answer; b#3 (w5) was answered in world-line 2 with no resume in between.
    const later = start('b', 3, 'w5', [flight('w5', 0)], 'unknown', null);
    const v = checkWorkflow([...records, { ...later, result: { id: 'w5', status: 'running' }, answerWorldLine: 2 }], final(s, { n1: 5, n2: 5 }), capacity);
    expect(v.prefixViolations).toBe(1);
    expect(v.notes.find((n) => n.invariant === 'prefix')!.message).toContain('workflow w4');
    // After a resume: allowed.
    expect(
      checkWorkflow([...records, { ...later, result: { id: 'w5', status: 'running' }, answerWorldLine: 2, resumes: 1 }], final(s, { n1: 5, n2: 5 }), capacity)
        .prefixViolations,
    ).toBe(0);
  });

  it('a start refused as existing already (started twice) is reported', () => {
    const v = checkWorkflow([...records, { ...start('c', 1, 'w1', s1, 'refused', null), error: 'Conflict' }], final(clean(), { n1: 5, n2: 5 }), capacity);
    expect(v.duplicates).toBe(1);
  });
});
