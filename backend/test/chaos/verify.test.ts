import * as net from 'node:net';
import type { Cut, Json } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { TcpProxy } from '../../src/chaos/proxy';
import type { Application, PutRecord } from '../../src/chaos/verify';
import { CutWatch, checkKv } from '../../src/chaos/verify';

/** The chaos checks on made-up histories: each planted fault must be reported, a clean history must not. */

function rec(session: string, q: number, outcome: PutRecord['outcome'], answerWorldLine: number | null = 1): PutRecord {
  return { session, q, key: `chx${session}.${q}`, value: { q }, incarnation: 1, id: `r${q}`, outcome, answerWorldLine };
}

function stateOf(records: PutRecord[]): Map<string, Json> {
  return new Map(records.map((r) => [r.key, r.value]));
}

const noApps = new Map<string, Application[]>();
const noCuts = new Map<number, Cut>();

describe('checkKv', () => {
  it('a clean history: committed puts present, rolled-back ones absent, unknown ones either way', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed'), rec('a', 3, 'rolled-back'), rec('a', 4, 'unknown', null)];
    const v = checkKv({ records: rs, state: stateOf(rs.slice(0, 2)), keyPrefix: 'chx', applications: noApps, startCuts: noCuts });
    expect(v).toMatchObject({ committed: 2, rolledBack: 1, unknown: 1, lostCommitted: 0, duplicates: 0, orphans: 0, prefixViolations: 0 });
  });

  it('reports a committed put missing or with another value as lost', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed')];
    const state = stateOf(rs);
    state.delete(rs[0]!.key);
    state.set(rs[1]!.key, { q: 99 });
    const v = checkKv({ records: rs, state, keyPrefix: 'chx', applications: noApps, startCuts: noCuts });
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
    const v = checkKv({ records: rs, state, keyPrefix: 'chx', applications: noApps, startCuts: noCuts });
    expect(v.orphans).toBe(3);
  });

  it('prefix: a later request of the same world-line survived without an earlier one', () => {
    const rs = [rec('a', 1, 'unknown'), rec('a', 2, 'unknown'), rec('a', 3, 'unknown', 2), rec('b', 1, 'unknown')];
    // a#2 and a#3 survive without a#1 (a#3 answered in another world-line: allowed); b alone is fine.
    const v = checkKv({ records: rs, state: stateOf([rs[1]!, rs[2]!, rs[3]!]), keyPrefix: 'chx', applications: noApps, startCuts: noCuts });
    expect(v.prefixViolations).toBe(1);
    expect(v.notes[0]!.message).toContain('request 2 survived but 1');
  });

  it('exactly once: two applications that both survived are a duplicate; a rolled-back one is not', () => {
    const rs = [rec('a', 1, 'committed'), rec('a', 2, 'committed')];
    const apps = new Map<string, Application[]>([
      // a#1 applied in world-line 1 at n1@5 (above the cut world-line 2 started from: rolled back), again in 2 at n1@7.
      [rs[0]!.key, [{ node: 'n1', worldLine: 1, version: 5 }, { node: 'n1', worldLine: 2, version: 7 }]],
      // a#2 applied at n2@3 in world-line 1 and again at n2@9 in world-line 2: both at or below the cuts they ended with.
      [rs[1]!.key, [{ node: 'n2', worldLine: 1, version: 3 }, { node: 'n2', worldLine: 2, version: 9 }, { node: 'n2', worldLine: 2, version: 9 }]],
    ]);
    const startCuts = new Map<number, Cut>([
      [2, { n1: 4, n2: 3 }],
      [3, { n1: 8, n2: 10 }],
    ]);
    const v = checkKv({ records: rs, state: stateOf(rs), keyPrefix: 'chx', applications: apps, startCuts });
    expect(v.duplicates).toBe(1);
    expect(v.notes[0]!.message).toContain(rs[1]!.key);
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
