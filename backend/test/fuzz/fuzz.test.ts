import { describe, expect, it } from 'vitest';
import { describeCase, generateCase, replyProblem, runFuzz } from '../../src/chaos/fuzz';

/**
 * Fuzzing the server's commands over HTTP and Socket.IO (seeded; `npm run chaos -- --fuzz 10000` for
 * the long run): typed answers only, the server stays up, the committed state does not change.
 */

describe('fuzz generation', () => {
  it('is seeded: the same seed and index give the same command', () => {
    for (let i = 0; i < 200; i++) expect(describeCase(generateCase(5, i))).toBe(describeCase(generateCase(5, i)));
    const kinds = new Set(Array.from({ length: 400 }, (_, i) => generateCase(9, i).label.split(' ')[0]));
    expect([...kinds].sort()).toEqual(['http', 'io', 'io-event', 'raw', 'route']);
  });

  it('knows a valid reply from an untyped one', () => {
    expect(replyProblem({ ok: true, node: 'n1' })).toBeNull();
    expect(replyProblem({ error: { code: 'BadRequest', message: 'x', definite: true } })).toBeNull();
    expect(replyProblem({ error: { code: 'Timeout', message: 'x', definite: true } })).toMatch(/definite/);
    expect(replyProblem({ error: { code: 'Nope', message: 'x', definite: true } })).toMatch(/unknown error code/);
    expect(replyProblem({ error: { code: 'Internal', message: 'boom', definite: false } })).toMatch(/Internal/);
    expect(replyProblem('<html>')).toMatch(/not an object/);
  });
});

describe('fuzz (short run on the live server)', () => {
  it('300 commands: every answer typed, the server up, committed reads unchanged, the cut never back and still moving', async () => {
    const lines: string[] = [];
    const r = await runFuzz({ commands: 300, seed: 1127, workers: 6, log: (l) => lines.push(l) });
    const why = `${JSON.stringify(r.failureDetails, null, 1)}\n${lines.slice(-30).join('\n')}`;
    expect(r.commands).toBe(300);
    expect(r.serverUp, why).toBe(true);
    expect(r.committedUnchanged, why).toBe(true);
    expect(r.cutMoves, why).toBe(true);
    expect(r.sentinels).toBeGreaterThan(0);
    expect(r.failures, why).toBe(0);
  }, 400_000);
});
