import * as net from 'node:net';
import type { Cut, Json } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { TcpProxy } from '../../src/chaos/proxy';
import type { Application, PrefixEntry, PutRecord } from '../../src/chaos/verify';
import { CutWatch, RestorePoints, checkKv, prefixBreaks } from '../../src/chaos/verify';

/** The chaos checks on made-up histories: each planted fault must be reported, a clean history must not. */

function rec(session: string, q: number, outcome: PutRecord['outcome'], answerWorldLine: number | null = 1, resumes = 0): PutRecord {
  return { session, q, key: `chx${session}.${q}`, value: { q }, incarnation: 1, id: `r${q}`, outcome, answerWorldLine, resumes };
}

function stateOf(records: PutRecord[]): Map<string, Json> {
  return new Map(records.map((r) => [r.key, r.value]));
}

const noApps = new Map<string, Application[]>();
const noCuts = new RestorePoints(new Map<number, Cut>());

describe('checkKv', () => {
  it('a clean history: committed puts present, rolled-back ones absent, unknown ones either way', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed'), rec('a', 3, 'rolled-back'), rec('a', 4, 'unknown', null)];
    const v = checkKv({ records: rs, state: stateOf(rs.slice(0, 2)), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v).toMatchObject({ committed: 2, rolledBack: 1, unknown: 1, lostCommitted: 0, duplicates: 0, orphans: 0, prefixViolations: 0 });
  });

  it('reports a committed put missing or with another value as lost', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed')];
    const state = stateOf(rs);
    state.delete(rs[0]!.key);
    state.set(rs[1]!.key, { q: 99 });
    const v = checkKv({ records: rs, state, keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v.lostCommitted).toBe(2);
    expect(v.notes.filter((n) => n.invariant === 'durability')).toHaveLength(2);
    // a#2 survived (with another value) without a#1: the prefix is broken too.
    expect(v.prefixViolations).toBe(1);
  });

  it('reports rolled-back or refused puts that survived, and keys no client sent, as orphans', () => {
    const rs = [rec('a', 1, 'rolled-back'), rec('a', 2, 'refused', null)];
    const state = stateOf(rs);
    state.set('chxghost.1', 1);
    state.set('other', 1);
    const v = checkKv({ records: rs, state, keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v.orphans).toBe(3);
  });

  it('prefix: a later request of the session survived without an earlier one', () => {
    const rs = [rec('a', 1, 'unknown'), rec('a', 2, 'unknown'), rec('b', 1, 'unknown')];
    // a#2 survives without a#1; b alone is fine.
    const v = checkKv({ records: rs, state: stateOf([rs[1]!, rs[2]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v.prefixViolations).toBe(1);
    expect(v.notes[0]!.message).toContain('request 2 (put chxa.2, answered in world-line 1) survived but 1');
  });

  it('prefix across world-lines: with no resume in between, a request answered in a later world-line cannot survive without an earlier one', () => {
    // a#1 answered in world-line 1, lost; a#2 answered in world-line 2 (the session was never rolled back, so
    // never resumed: a#1 must have survived into world-line 2, and a#2 carries its dependencies) survived.
    const rs = [rec('a', 1, 'unknown', 1), rec('a', 2, 'committed', 2)];
    const v = checkKv({ records: rs, state: stateOf([rs[1]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v.prefixViolations).toBe(1);
    expect(v.notes[0]).toMatchObject({ invariant: 'prefix' });
    expect(v.notes[0]!.message).toContain('answered in world-line 2');
  });

  it('prefix: a request told rolled back before it was answered did not survive; one never answered (transport) says nothing', () => {
    const rolled = [rec('a', 1, 'rolled-back', null), rec('a', 2, 'committed', 2)];
    expect(checkKv({ records: rolled, state: stateOf([rolled[1]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts }).prefixViolations).toBe(1);
    const lost = [rec('a', 1, 'unknown', null), rec('a', 2, 'committed', 2)];
    expect(checkKv({ records: lost, state: stateOf([lost[1]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts }).prefixViolations).toBe(0);
  });

  it('prefix: after a resume the session starts a new segment; refused requests were never sent', () => {
    // a#1 rolled back (world-line 2), a#2 refused by the rolled-back session, the client resumed, a#3 and a#4 committed.
    const rs = [rec('a', 1, 'rolled-back', 1), rec('a', 2, 'refused', null), rec('a', 3, 'committed', 2, 1), rec('a', 4, 'committed', 3, 1)];
    const v = checkKv({ records: rs, state: stateOf([rs[2]!, rs[3]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(v).toMatchObject({ committed: 2, rolledBack: 1, refused: 1, prefixViolations: 0, orphans: 0 });
    // Within the new segment the prefix still holds: a#4 without a#3 is reported.
    const broken = checkKv({ records: rs, state: stateOf([rs[3]!]), keyPrefix: 'chx', applications: noApps, restorePoints: noCuts });
    expect(broken.prefixViolations).toBe(1);
    expect(broken.notes.find((n) => n.invariant === 'prefix')!.message).toContain('request 4');
  });

  it('exactly once: two applications that both survived are a duplicate; a rolled-back one is not', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed')];
    const apps = new Map<string, Application[]>([
      // a#1 applied in world-line 1 at n1@5 (above what world-line 2 kept: rolled back), again in 2 at n1@7.
      [
        rs[0]!.key,
        [
          { node: 'n1', worldLine: 1, version: 5 },
          { node: 'n1', worldLine: 2, version: 7 },
        ],
      ],
      // a#2 applied at n2@3 in world-line 1 and again at n2@9 in world-line 2: both kept and in the final cut.
      [
        rs[1]!.key,
        [
          { node: 'n2', worldLine: 1, version: 3 },
          { node: 'n2', worldLine: 2, version: 9 },
          { node: 'n2', worldLine: 2, version: 9 },
        ],
      ],
    ]);
    const restorePoints = new RestorePoints(
      new Map<number, Cut>([
        [2, { n1: 4, n2: 3 }],
        [3, { n1: 8, n2: 10 }],
      ]),
    );
    const v = checkKv({ records: rs, state: stateOf(rs), keyPrefix: 'chx', applications: apps, restorePoints });
    expect(v.duplicates).toBe(1);
    expect(v.notes[0]!.message).toContain(rs[1]!.key);
  });

  it('exactly once: an application in a version a recovery kept above the cut survived (once), and a second one is a duplicate', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed')];
    // World-line 2 started from the cut n1@3 but n1 kept its versions up to 6 (precise recovery); they
    // committed later. a#1 was applied at n1@5 in world-line 1: it survived. Applied again at n2@9 in
    // world-line 2 (kept, in the final cut): applied twice. a#2 applied once, in a kept version: fine.
    const apps = new Map<string, Application[]>([
      [
        rs[0]!.key,
        [
          { node: 'n1', worldLine: 1, version: 5 },
          { node: 'n2', worldLine: 2, version: 9 },
        ],
      ],
      [rs[1]!.key, [{ node: 'n1', worldLine: 1, version: 6 }]],
    ]);
    const restorePoints = new RestorePoints(
      new Map<number, Cut>([
        [2, { n1: 6, n2: 2 }],
        [3, { n1: 8, n2: 10 }],
      ]),
    );
    const v = checkKv({ records: rs, state: stateOf(rs), keyPrefix: 'chx', applications: apps, restorePoints });
    expect(v.duplicates).toBe(1);
    expect(v.notes[0]!.message).toContain(`${rs[0]!.key} was applied 2 times`);
  });

  it('exactly once: a kept version that a later world-line rolled back did not survive', () => {
    const rs = [rec('a', 1, 'committed')];
    // n1@5 of world-line 1 was kept by world-line 2 (up to 6) but world-line 3 kept only up to 4 (say, it
    // depended on a kept version of a node that then failed): rolled back; the put applied again at n1@7.
    const apps = new Map<string, Application[]>([
      [
        rs[0]!.key,
        [
          { node: 'n1', worldLine: 1, version: 5 },
          { node: 'n1', worldLine: 3, version: 7 },
        ],
      ],
    ]);
    const restorePoints = new RestorePoints(
      new Map<number, Cut>([
        [2, { n1: 6 }],
        [3, { n1: 4 }],
        [4, { n1: 9 }],
      ]),
    );
    expect(checkKv({ records: rs, state: stateOf(rs), keyPrefix: 'chx', applications: apps, restorePoints }).duplicates).toBe(0);
    // Had world-line 3 kept it too, both would have survived.
    const keptBoth = new RestorePoints(
      new Map<number, Cut>([
        [2, { n1: 6 }],
        [3, { n1: 6 }],
        [4, { n1: 9 }],
      ]),
    );
    expect(checkKv({ records: rs, state: stateOf(rs), keyPrefix: 'chx', applications: apps, restorePoints: keptBoth }).duplicates).toBe(1);
  });
});

describe('RestorePoints', () => {
  const rp = new RestorePoints(
    new Map<number, Cut>([
      [2, { n1: 6, n2: 3 }],
      [4, { n1: 4, n2: 8 }],
      [5, { n1: 10, n2: 9 }],
    ]),
  );

  it('a version survived iff every later world-line kept it; unknown when a later one is not known and none dropped it', () => {
    expect(rp.survived('n1', 4, 3)).toBe(true);
    expect(rp.survived('n1', 5, 3)).toBe(false); // world-line 4 kept n1 up to 4
    expect(rp.survived('n1', 7, 1)).toBe(false); // world-line 2 kept n1 up to 6
    expect(rp.survived('n2', 3, 1)).toBe(null); // world-line 3's restore points are not known
    expect(rp.survived('n1', 5, 1)).toBe(false); // not known for 3, but 4 dropped it
    expect(rp.survived('n1', 9, 5)).toBe(null); // the last world-line: nothing after it to say
    expect(rp.survived('n3', 1, 4)).toBe(false); // a node no later world-line kept anything of
  });

  it('the lowest restore point over a range of world-lines', () => {
    expect(rp.lowest('n1', 2, 5)).toEqual({ version: 4, worldLine: 4 });
    expect(rp.lowest('n2', 3, 3)).toEqual({ version: Infinity, worldLine: null });
  });
});

describe('prefixBreaks', () => {
  const e = (session: string, q: number, survived: boolean, resumes = 0): PrefixEntry => ({ session, resumes, q, survived, answerWorldLine: 1 });

  it('one break per session segment, in the order the requests were sent whatever the order given', () => {
    expect(prefixBreaks([e('a', 3, true), e('a', 1, true), e('a', 2, true)], () => '')).toEqual([]);
    expect(prefixBreaks([e('a', 3, true), e('a', 2, false), e('a', 1, true), e('a', 4, true)], () => '')).toHaveLength(1);
    expect(prefixBreaks([e('a', 1, false), e('a', 2, true, 1), e('b', 1, false), e('b', 2, false)], () => '')).toEqual([]);
  });
});

describe('CutWatch', () => {
  it('accepts cuts that grow and world-lines that start at or above every announced cut', () => {
    const w = new CutWatch();
    w.observe(1, { n1: 1, n2: 0 }, 't');
    w.observe(1, { n1: 3, n2: 2 }, 't');
    w.observe(2, { n1: 3, n2: 2 }, 't');
    w.observe(3, { n1: 5, n2: 2 }, 't');
    expect(w.violations).toBe(0);
    expect(w.highest).toEqual({ n1: 5, n2: 2 });
  });

  it('reports a cut going back within a world-line, and a world-line starting below an announced cut', () => {
    const w = new CutWatch();
    w.observe(1, { n1: 4 }, 't');
    w.observe(1, { n1: 3 }, 't');
    w.observe(2, { n1: 2 }, 't');
    expect(w.violations).toBe(2);
  });

  it('ignores nodes outside its set', () => {
    const w = new CutWatch(new Set(['n1']));
    w.observe(1, { n1: 1, n9: 10 }, 't');
    w.observe(2, { n1: 1, n9: 0 }, 't');
    expect(w.violations).toBe(0);
  });
});

describe('TcpProxy', () => {
  it('relays, cuts every connection and refuses new ones, then relays again', async () => {
    const echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const proxy = new TcpProxy('127.0.0.1', (echo.address() as net.AddressInfo).port);
    const port = await proxy.listen();
    const roundTrip = (): Promise<string> =>
      new Promise((resolve) => {
        const c = net.connect(port, '127.0.0.1');
        c.on('error', (e) => resolve(`error ${e.message}`));
        c.on('close', () => resolve('closed'));
        c.on('data', (b) => {
          resolve(b.toString());
          c.destroy();
        });
        c.write('ping');
      });
    try {
      expect(await roundTrip()).toBe('ping');
      const held = net.connect(port, '127.0.0.1');
      const heldClosed = new Promise<void>((r) => held.on('close', () => r()));
      held.on('error', () => undefined);
      await new Promise<void>((r) => held.on('connect', () => r()));
      await new Promise((r) => setTimeout(r, 50));
      proxy.cutNow();
      await heldClosed;
      expect(await roundTrip()).not.toBe('ping');
      proxy.restore();
      expect(await roundTrip()).toBe('ping');
    } finally {
      await proxy.close();
      await new Promise<void>((r) => echo.close(() => r()));
    }
  });
});
