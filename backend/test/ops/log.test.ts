/** Log lines: JSON, timestamped, with their fields; the level from DSE_LOG_LEVEL; the server's event lines. */
import { PassThrough } from 'node:stream';
import type { InspectionEvent } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import type { LogFields, LogLevel } from '../../src/log';
import { createLogger, jsonLogLine, loggerFn, logLevel } from '../../src/log';
import { logEvent } from '../../src/server/event-log';

function capture(level: LogLevel, mixin?: () => Record<string, unknown>) {
  const out = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  out.on('data', (b: Buffer) => {
    for (const l of b.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const logger = createLogger({ bindings: { node: 'n1' }, level, dest: out, ...(mixin !== undefined ? { mixin } : {}) });
  return { logger, lines };
}

describe('logs', () => {
  it('DSE_LOG_LEVEL: default info, the levels pino has, anything else refused', () => {
    expect(logLevel(undefined)).toBe('info');
    expect(logLevel('')).toBe('info');
    expect(logLevel('WARN')).toBe('warn');
    expect(logLevel('silent')).toBe('silent');
    expect(() => logLevel('loud')).toThrow(/DSE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not "loud"/);
  });

  it('one JSON line per event: time, level by name, pid, the bindings, the fields and the message', async () => {
    const { logger, lines } = capture('info', () => ({ worldLine: 3, version: 17 }));
    const log = loggerFn(logger);
    log('joined', { attempt: 2 });
    log('a checkpoint failed', { level: 'warn', version: 18 });
    log('noise', { level: 'debug' });
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'info', pid: process.pid, node: 'n1', worldLine: 3, version: 17, attempt: 2, msg: 'joined' });
    expect(new Date(String(lines[0]!.time)).toISOString()).toBe(lines[0]!.time);
    // A field given with the line wins over the mixin's (and appears once).
    expect(lines[1]).toMatchObject({ level: 'warn', version: 18, msg: 'a checkpoint failed' });
  });

  it('warn level: info lines are left out', async () => {
    const { logger, lines } = capture('warn');
    loggerFn(logger)('joined');
    loggerFn(logger)('lost', { level: 'error' });
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => l.msg)).toEqual(['lost']);
  });

  it("tells a child process's JSON log lines from anything else it printed", () => {
    expect(jsonLogLine('{"level":"info","msg":"joined","node":"n2"}')).toEqual({ level: 'info', msg: 'joined', node: 'n2' });
    for (const l of ['Error: boom', '    at foo (x.ts:1:1)', '{not json', '[1,2]', '{"no":"msg"}']) expect(jsonLogLine(l)).toBeNull();
  });

  it("the server's lines for the cluster's events: node processes, failures, world-lines", () => {
    const got: [string, LogFields | undefined][] = [];
    const log = (msg: string, f?: LogFields): void => void got.push([msg, f]);
    const events: InspectionEvent[] = [
      { type: 'nodeProcess', t: 1, node: 'n1', pid: 42, state: 'exited', code: 3, signal: null },
      { type: 'nodeFailed', t: 2, node: 'n1', reason: 'exit' },
      { type: 'worldLineChanged', t: 3, worldLine: 2, cut: { n1: 4 }, failed: ['n1'], kept: { n1: 4 }, reason: 'failure', recovery: 'precise' },
      { type: 'messageLost', t: 4, id: 'x', kind: 'request', from: 'n1', to: 'n2', reason: 'down' },
    ];
    for (const e of events) logEvent(log, e);
    expect(got).toEqual([
      ['node process exited', { level: 'warn', node: 'n1', nodePid: 42, code: 3, signal: null }],
      ['node failed', { level: 'warn', node: 'n1', reason: 'exit' }],
      ['new world-line', { level: 'info', worldLine: 2, failed: ['n1'], reason: 'failure', recovery: 'precise', cut: { n1: 4 } }],
    ]);
  });
});
