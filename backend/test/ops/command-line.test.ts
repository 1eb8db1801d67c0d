import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { commandLine, optionReader } from '../../src/command-line';

/**
 * The shared option parsing of the command lines (bench, bench:scale, bench:soak, bench:sim,
 * bench:checkpoint, bench:failover): a bad option or value is one line naming it, then the usage, and
 * status 2; `--help` is the usage on stdout and status 0. Exits are caught here, not taken.
 */
const USAGE = 'usage: npm run thing -- [--n N]';

class Exit extends Error {
  constructor(readonly code: number | string | null | undefined) {
    super(`exit ${code}`);
  }
}

let stderr = '';
let stdout = '';
beforeEach(() => {
  stderr = '';
  stdout = '';
  vi.spyOn(process, 'exit').mockImplementation((code) => {
    throw new Exit(code);
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
});
afterEach(() => vi.restoreAllMocks());

/** The exit status and stderr's lines of `f`, which must exit. */
function exits(f: () => unknown): { code: number | string | null | undefined; lines: string[] } {
  try {
    f();
  } catch (e) {
    if (e instanceof Exit) return { code: e.code, lines: stderr.trimEnd().split('\n') };
    throw e;
  }
  throw new Error('did not exit');
}

const CONFIG = {
  args: [] as string[],
  options: { n: { type: 'string' }, list: { type: 'string', default: '1,2' }, help: { type: 'boolean', default: false } },
  strict: true,
} as const;
const parse = (args: string[]) => commandLine({ ...CONFIG, args }, USAGE);

describe('commandLine', () => {
  it('parses the options it declares', () => {
    const cl = parse(['--n', '3']);
    expect(cl.values.n).toBe('3');
    expect(cl.number('n', cl.values.n, { min: 1 })).toBe(3);
    expect(cl.numbers('list', cl.values.list, { integer: true })).toEqual([1, 2]);
  });

  it('an unknown option: one line naming it, the usage, status 2', () => {
    expect(exits(() => parse(['--no-such-option']))).toEqual({ code: 2, lines: [expect.stringMatching(/^Unknown option '--no-such-option'/), USAGE] });
  });

  it('an option without its value: one line naming it, the usage, status 2', () => {
    expect(exits(() => parse(['--n']))).toEqual({ code: 2, lines: [expect.stringMatching(/^Option '--n <value>' argument missing/), USAGE] });
  });

  it('--help: the usage on stdout, status 0', () => {
    expect(exits(() => parse(['--help'])).code).toBe(0);
    expect(stdout).toBe(`${USAGE}\n`);
    expect(stderr).toBe('');
  });
});

describe('optionReader', () => {
  const o = optionReader(USAGE);

  it('reads numbers within the rule, and the default when the option is absent', () => {
    expect(o.number('n', '2.5', { min: 0 })).toBe(2.5);
    expect(o.number('n', ' 7 ', { integer: true })).toBe(7);
    expect(o.number('n', undefined, { default: 4, min: 10 })).toBe(4);
    expect(o.numbers('n', '', { allowEmpty: true })).toEqual([]);
    expect(o.numbers('n', '4,16,64', { min: 2, max: 1024, integer: true })).toEqual([4, 16, 64]);
    expect(o.oneOf('mode', 'durable', ['speculative', 'durable'] as const)).toBe('durable');
  });

  it.each([
    [() => o.number('kills', 'many'), '--kills: expected a number, got many'],
    [() => o.number('kills', '', { min: 0 }), '--kills: expected a number >= 0, got '],
    [() => o.number('kills', '-1', { min: 0 }), '--kills: expected a number >= 0, got -1'],
    [() => o.number('seeds', '1.5', { min: 1, integer: true }), '--seeds: expected an integer >= 1, got 1.5'],
    [() => o.number('seconds', '0', { positive: true }), '--seconds: expected a positive number, got 0'],
    [() => o.number('n', '2000', { min: 1, max: 1024 }), '--n: expected a number from 1 to 1024, got 2000'],
    [() => o.number('n', 'Infinity'), '--n: expected a number, got Infinity'],
    [() => o.number('id', undefined), '--id: missing'],
    [() => o.numbers('nodes', '4,x,8', { min: 2 }), '--nodes: expected a number >= 2, got x'],
    [() => o.numbers('nodes', ' '), '--nodes: expected a comma-separated list, got nothing'],
    [() => o.oneOf('mode', 'fast', ['speculative', 'durable']), '--mode: expected speculative or durable, got fast'],
    [() => o.fail('--keys: too many'), '--keys: too many'],
  ])('a malformed value: one line naming the option, the usage, status 2 (%#)', (f, line) => {
    expect(exits(f)).toEqual({ code: 2, lines: [line, USAGE] });
  });
});
