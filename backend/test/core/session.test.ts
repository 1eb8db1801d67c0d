import { isDseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { WireMessage } from '../../src/core/messages';
import { committedReplies } from '../../src/core/caller-table';
import { SessionHost } from '../../src/core/session';
import { ProcessClock, Scheduler } from '../../src/sim/scheduler';

function setup() {
  const sched = new Scheduler();
  const sent: [string, WireMessage][] = [];
  const host = new SessionHost(
    'client',
    { clock: new ProcessClock(sched), network: { send: (to, m) => sent.push([to, m]) }, observer: { emit: () => undefined } },
    { retransmitMs: 50 },
  );
  host.start(1);
  const requests = () => sent.filter(([, m]) => m.kind === 'request').map(([to, m]) => [to, m] as [string, Extract<WireMessage, { kind: 'request' }>]);
  const reply = (seq: number, node: string, version: number, worldLine = 1, status: 'ok' | 'aborted' = 'ok', acceptedAt?: number) =>
    host.receive({
      kind: 'reply',
      h: { src: node, srcVersion: version, worldLine, seq },
      caller: 'client.s1',
      seq,
      status,
      result: { v: seq },
      deps: status === 'ok' ? { [node]: version } : {},
      ...(acceptedAt !== undefined ? { acceptedAt } : {}),
    });
  const flush = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  return { sched, host, sent, requests, reply, flush };
}

describe('sessions', () => {
  it('answers speculatively at once, commits when the cut covers the dependencies', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const p = s.request('n1', { op: 'x' });
    expect(t.requests()).toHaveLength(1);
    t.reply(1, 'n1', 4);
    const spec = await p;
    expect(spec.result).toEqual({ v: 1 });
    expect(spec.deps).toEqual({ n1: 4 });
    let committed = false;
    void spec.commit().then(() => (committed = true));
    t.host.receive({ kind: 'cut', worldLine: 1, cut: { n1: 3 } });
    await t.flush();
    expect(committed).toBe(false);
    t.host.receive({ kind: 'cut', worldLine: 1, cut: { n1: 4 } });
    await t.flush();
    expect(committed).toBe(true);
  });

  it('a cut that overtakes the start of its world-line is kept, applied once the world-line is known, and asked for until then', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const p = s.request('n1', {});
    t.reply(1, 'n1', 4);
    const spec = await p;
    let committed = false;
    void spec.whenCommitted().then(() => (committed = true));
    const syncs = () => t.sent.filter(([, m]) => m.kind === 'sync').length;
    t.sched.step(t.sched.now + 120);
    const before = syncs();
    // World-line 2 keeps n1@4 but starts its cut at 3; its cut reaches 4 and says so before the host hears it started.
    t.host.receive({ kind: 'cut', worldLine: 2, cut: { n1: 4 } });
    expect(syncs()).toBe(before + 1);
    // The coordinator was busy and ignored the sync: the host asks again on its timer.
    t.sched.step(t.sched.now + 120);
    expect(syncs()).toBeGreaterThan(before + 1);
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 3 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 3 }, kept: { n1: 4 } }] });
    await t.flush();
    expect(t.host.cut).toEqual({ n1: 4 });
    expect(committed).toBe(true);
    const asked = syncs();
    t.sched.step(t.sched.now + 120);
    expect(syncs()).toBe(asked);
  });

  it('sends one request at a time, each carrying the dependencies of every earlier answer', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    const b = s.request('n2', {});
    expect(t.requests()).toHaveLength(1);
    t.reply(1, 'n1', 7);
    await a;
    expect(t.requests()).toHaveLength(2);
    expect(t.requests()[1]![1].deps).toEqual({ n1: 7 });
    t.reply(2, 'n2', 2);
    expect((await b).deps).toEqual({ n1: 7, n2: 2 });
  });

  it('after a world-line change, the first uncovered request is probed; an abort rolls it and every later one back, definitely', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const first = s.request('n1', {});
    t.reply(1, 'n1', 2);
    const second = s.request('n2', {});
    t.reply(2, 'n2', 5);
    const third = s.request('n1', {});
    t.reply(3, 'n1', 6);
    const [r1, r2, r3] = [await first, await second, await third];
    // World-line 2 starts from a cut with n1@2 and n2@4: request 1 survived, 2 (n2@5) is uncertain.
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 2, n2: 4 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 2, n2: 4 } }] });
    await expect(r1.commit()).resolves.toEqual({ v: 1 });
    const probe = t.requests().at(-1)![1];
    expect(probe).toMatchObject({ probe: true, h: { seq: 2, worldLine: 2 } });
    t.reply(2, 'n2', 5, 2, 'aborted');
    for (const r of [r2, r3]) {
      const err = await r.commit().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isDseError(err) && err.code === 'RolledBack' && err.definite).toBe(true);
    }
    expect(s.history().map((h) => h.status)).toEqual(['committed', 'rolledBack', 'rolledBack']);
    // The session stays rolled back: the next request is refused, definitely, naming the last survivor.
    const sentBefore = t.requests().length;
    await expect(s.request('n1', {})).rejects.toMatchObject({ code: 'SessionRolledBack', definite: true, rolledBackSeq: 2, lastSurvivingSeq: 1 });
    expect(t.requests()).toHaveLength(sentBefore);
    // Once the client acknowledges, the session goes on in the new world-line.
    s.resume();
    const fourth = s.request('n1', {});
    expect(t.requests().at(-1)![1]).toMatchObject({ probe: false, h: { seq: 4, worldLine: 2 } });
    t.reply(4, 'n1', 3, 2);
    expect((await fourth).worldLine).toBe(2);
    expect(s.history().at(-1)).toMatchObject({ seq: 4, resumes: 1 });
  });

  it('requests queued behind a rolled-back one are refused with SessionRolledBack and never sent', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const first = s.request('n1', {});
    t.reply(1, 'n1', 6, 1, 'ok', 6);
    await first;
    const second = s.request('n2', {}); // on the wire
    const third = s.request('n2', {}); // queued behind it
    // World-line 2 keeps n1 only up to 5: request 1 (accepted in n1@6) is lost at once, without a probe.
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 5, n2: 0 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 5, n2: 0 }, kept: { n1: 5, n2: 0 } }] });
    await expect(second).rejects.toMatchObject({ code: 'RolledBack' });
    await expect(third).rejects.toMatchObject({ code: 'SessionRolledBack', rolledBackSeq: 1, lastSurvivingSeq: 0 });
    expect(s.history().map((h) => h.status)).toEqual(['rolledBack', 'rolledBack', 'refused']);
    expect(t.requests().filter(([, m]) => m.h.seq === 3)).toHaveLength(0);
  });

  it('precise recovery: an answer whose dependencies every new world-line kept survives, uncommitted, and commits later', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    t.reply(1, 'n1', 7, 1, 'ok', 7);
    const r1 = await a;
    // World-line 2 starts from cut n1@3 but keeps n1 up to 8: the answer (n1@7) survived, not committed yet.
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 3 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 3 }, kept: { n1: 8 } }] });
    expect(s.history()[0]).toMatchObject({ status: 'answered', worldLine: 2 });
    expect(t.requests().filter(([, m]) => m.probe)).toHaveLength(0);
    let committed = false;
    void r1.commit().then(() => (committed = true));
    t.host.receive({ kind: 'cut', worldLine: 2, cut: { n1: 7 } });
    await t.flush();
    expect(committed).toBe(true);
  });

  it('an answer survives only if every world-line it missed kept it', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    t.reply(1, 'n1', 7, 1, 'ok', 7);
    await a;
    // The host hears of world-line 3 directly: 2 kept n1@8, 3 kept only n1@5.
    t.host.receive({
      kind: 'worldLine',
      worldLine: 3,
      cut: { n1: 3 },
      recoveryCuts: [
        { worldLine: 2, cut: { n1: 3 }, kept: { n1: 8 } },
        { worldLine: 3, cut: { n1: 3 }, kept: { n1: 5 } },
      ],
    });
    expect(s.history()[0]!.status).toBe('rolledBack');
  });

  it('settled requests are named in every later request, so that nodes can forget their answers', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    t.reply(1, 'n1', 2);
    await a;
    const b = s.request('n1', {});
    expect(t.requests().at(-1)![1].settled).toBeUndefined();
    t.reply(2, 'n1', 3);
    await b;
    t.host.receive({ kind: 'cut', worldLine: 1, cut: { n1: 2 } });
    void s.request('n1', {});
    expect(t.requests().at(-1)![1]).toMatchObject({ h: { seq: 3 }, settled: 1 });
  });

  it('an answer accepted above the new cut is rolled back at once with every later one, without a probe (its node may be down)', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const first = s.request('n1', {});
    t.reply(1, 'n1', 2, 1, 'ok', 2);
    const second = s.request('n3', {});
    t.reply(2, 'n3', 9, 1, 'ok', 9);
    const third = s.request('n2', {});
    t.reply(3, 'n2', 9, 1, 'ok', 9);
    const [r1, r2, r3] = [await first, await second, await third];
    const before = t.requests().length;
    // n3 died; world-line 2 starts from n3@8: request 2 (accepted in n3@9) is lost, and 3 depends on it.
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 2, n2: 9, n3: 8 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 2, n2: 9, n3: 8 } }] });
    await expect(r1.commit()).resolves.toEqual({ v: 1 });
    for (const r of [r2, r3]) {
      const err = await r.commit().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isDseError(err) && err.code === 'RolledBack' && err.definite).toBe(true);
    }
    expect(t.requests()).toHaveLength(before); // nothing was sent to n3
    expect(s.history().map((h) => h.status)).toEqual(['committed', 'rolledBack', 'rolledBack']);
    // After resume, the next request goes out at once, in the new world-line, with only the surviving dependencies.
    s.resume();
    void s.request('n2', {});
    expect(t.requests().at(-1)![1]).toMatchObject({ probe: false, h: { seq: 4, worldLine: 2 }, deps: { n1: 2 } });
  });

  it('an answer completed above the new cut but accepted at or below it is probed (it may still be in progress there)', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    t.reply(1, 'n1', 7, 1, 'ok', 3);
    await a;
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 5 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 5 } }] });
    expect(t.requests().at(-1)![1]).toMatchObject({ probe: true, h: { seq: 1, worldLine: 2 } });
    expect(s.history()[0]!.status).toBe('sent');
  });

  it('a probe answered ok keeps the request, and the next one is probed too', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const a = s.request('n1', {});
    t.reply(1, 'n1', 5);
    const b = s.request('n2', {});
    t.reply(2, 'n2', 5);
    await a;
    await b;
    t.host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 1, n2: 1 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 1, n2: 1 } }] });
    expect(t.requests().at(-1)![1]).toMatchObject({ probe: true, h: { seq: 1 } });
    t.reply(1, 'n1', 5, 2);
    await t.flush();
    expect(t.requests().at(-1)![1]).toMatchObject({ probe: true, h: { seq: 2 } });
  });

  it('refuses more open requests than its limit, with a typed error', async () => {
    const sched = new Scheduler();
    const host = new SessionHost(
      'c',
      { clock: new ProcessClock(sched), network: { send: () => undefined }, observer: { emit: () => undefined } },
      { queuedRequestsMax: 2 },
    );
    const s = host.session();
    void s.request('n1', {}).catch(() => undefined);
    void s.request('n1', {}).catch(() => undefined);
    await expect(s.request('n1', {})).rejects.toMatchObject({ code: 'LimitExceeded', definite: true });
  });

  it('a long session keeps a bounded window of closed requests, and still carries their dependencies', async () => {
    const sched = new Scheduler();
    const sent: WireMessage[] = [];
    const host = new SessionHost(
      'client',
      { clock: new ProcessClock(sched), network: { send: (_to, m) => sent.push(m) }, observer: { emit: () => undefined } },
      { closedRequestsKept: 4 },
    );
    host.start(1);
    const s = host.session('client.s1');
    for (let seq = 1; seq <= 200; seq++) {
      const p = s.request(seq === 1 ? 'n9' : 'n1', {});
      host.receive({
        kind: 'reply',
        h: { src: 'n1', srcVersion: seq, worldLine: 1, seq },
        caller: 'client.s1',
        seq,
        status: 'ok',
        result: seq,
        deps: seq === 1 ? { n9: 7 } : { n1: seq },
      });
      await p;
      host.receive({ kind: 'cut', worldLine: 1, cut: { n1: seq, n9: 7 } });
    }
    expect(s.history().length).toBeLessThanOrEqual(4 + 64);
    expect(s.history().every((h) => h.status === 'committed')).toBe(true);
    // After a world-line change, the next request still carries the dependency of request 1, long dropped.
    const next = s.request('n1', {});
    host.receive({
      kind: 'reply',
      h: { src: 'n1', srcVersion: 300, worldLine: 1, seq: 201 },
      caller: 'client.s1',
      seq: 201,
      status: 'ok',
      result: 0,
      deps: { n1: 300 },
    });
    await next;
    host.receive({ kind: 'worldLine', worldLine: 2, cut: { n1: 200, n9: 7 }, recoveryCuts: [{ worldLine: 2, cut: { n1: 200, n9: 7 } }] });
    const probe = sent.filter((m) => m.kind === 'request').at(-1) as Extract<WireMessage, { kind: 'request' }>;
    expect(probe).toMatchObject({ probe: true, h: { seq: 201 } });
    expect(probe.deps.n9).toBe(7);
  });

  it('a removed node decides what waits on it from its committed replies: done there it commits, else it rolled back; later requests to it are refused', async () => {
    const t = setup();
    const s = t.host.session('client.s1');
    const other = t.host.session('client.s2');
    t.host.receive({ kind: 'cut', worldLine: 1, cut: { n1: 5 } });
    // In flight to n1 when it went down for good: its checkpoint at the cut holds s1's request 1 as done.
    const p1 = s.request('n1', {});
    const q1 = other.request('n1', {});
    const third = t.host.session('client.s3');
    const w1 = third.request('n1', { op: 'start a workflow' });
    const replies = committedReplies([
      ['r:cl:client.s1', { q: 1, e: 'client', c: { 1: { s: 'd', r: { v: 'stored' }, v: 5, b: 5 } } }],
      ['r:cl:client.s3', { q: 1, e: 'client', c: { 1: { s: 'p', b: 4 } } }],
      ['a:k', 1],
    ]);
    t.host.nodeRemoved('n1', replies);
    const spec = await p1;
    expect(spec.result).toEqual({ v: 'stored' });
    expect(spec.deps).toEqual({ n1: 5 });
    await expect(spec.commit()).resolves.toEqual({ v: 'stored' });
    // s2's request is not there: it did not happen within the cut, so it rolled back (definitely).
    await expect(q1).rejects.toMatchObject({ code: 'RolledBack', definite: true });
    // s3's was under way there (a workflow's start): what it did is committed, but no answer will come.
    await expect(w1).rejects.toMatchObject({ code: 'Orphaned', definite: false });
    // A new request to n1 is never sent: refused, and the session goes on.
    const sentBefore = t.requests().length;
    await expect(s.request('n1', {})).rejects.toMatchObject({ code: 'NodeRemoved', definite: true });
    expect(t.requests().length).toBe(sentBefore);
    const p3 = s.request('n2', {});
    expect(t.requests().at(-1)![0]).toBe('n2');
    t.reply(3, 'n2', 1);
    await expect(p3).resolves.toMatchObject({ result: { v: 3 } });
  });
});
