import { DseError } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { isConflict, isConnectionError, translateError } from '../../src/storage/sql';

function pgError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('database errors become the runtime typed errors (sql.ts)', () => {
  it('by SQLSTATE class: definite where nothing happened for a reason retrying will not change, indefinite otherwise', () => {
    const cases: [string, string, boolean][] = [
      ['40001', 'StorageConflict', true], // serialization failure (retried inside the adapter first)
      ['40P01', 'StorageConflict', true], // deadlock
      ['22P02', 'BadRequest', true], // invalid input
      ['23514', 'BadRequest', true], // check constraint
      ['42P01', 'StorageCorrupt', true], // the table is gone
      ['XX001', 'StorageCorrupt', true], // data corrupted
      ['08006', 'StorageUnavailable', false], // connection failure
      ['57P01', 'StorageUnavailable', false], // admin shutdown
      ['53300', 'StorageUnavailable', false], // too many connections
      ['57014', 'StorageUnavailable', false], // statement timeout
      ['55P03', 'StorageUnavailable', false], // lock not available: unknown here, so indefinite
    ];
    for (const [code, expected, definite] of cases) {
      const e = translateError(pgError(code), 'ctx');
      expect(e, code).toBeInstanceOf(DseError);
      expect(e.code, code).toBe(expected);
      expect(e.definite, code).toBe(definite);
      expect(e.message).toContain('ctx');
      expect(e.message).toContain(code);
    }
    expect(isConflict(pgError('40001'))).toBe(true);
    expect(isConflict(pgError('23505'))).toBe(false);
  });

  it('socket errors and lost connections are StorageUnavailable, and mark the connection broken', () => {
    for (const e of [
      pgError('ECONNREFUSED'),
      pgError('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      new Error('Query read timeout'),
      pgError('57P01'),
    ]) {
      expect(translateError(e, 'x').code).toBe('StorageUnavailable');
      expect(isConnectionError(e)).toBe(true);
    }
    expect(isConnectionError(pgError('23505'))).toBe(false);
    expect(isConnectionError(new DseError('StaleWorldLine', 'x'))).toBe(false);
  });

  it('a DseError passes through unchanged; anything unknown is indefinite', () => {
    const stale = new DseError('StaleWorldLine', 'fenced');
    expect(translateError(stale, 'x')).toBe(stale);
    const e = translateError('something odd', 'x');
    expect(e.code).toBe('StorageUnavailable');
    expect(e.definite).toBe(false);
  });
});
