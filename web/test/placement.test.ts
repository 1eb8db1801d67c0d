import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from '@dse/shared';
import { PlaygroundModel } from '../src/model/model';
import { countUnits, formatMoves, migrationMoves, nodePlacementView, unitsOfState } from '../src/model/placement';
import { exportTrace, parseTrace } from '../src/model/trace';

type E = InspectionEvent;
const ev = <T extends E['type']>(type: T, t: number, rest: Omit<Extract<E, { type: T }>, 'type' | 't'>): E => ({ type, t, ...rest }) as unknown as E;

/** n1 and n2 hold four units; n3 joins (placement v1): n1 hands `app:a` and `kv:x` to it. */
function joinRun(): E[] {
  return [
    ev('stateChanged', 1, { node: 'n1', version: 1, set: { a: 1, 'kv/x': 2, 'wal/l/0': 'e' }, deleted: [] }),
    ev('stateChanged', 1, { node: 'n2', version: 1, set: { 'br/t/0': 'x', 'tr/s/hotel': 3, 'tr/b/1': { item: 'hotel' }, '~n1/a': 1 }, deleted: [] }),
    ev('stateChanged', 2, {
      node: 'n1',
      version: 2,
      set: { 'pl/view': { v: 1, m: ['n1', 'n2', 'n3'], prev: ['n1', 'n2'], wait: [] } },
      deleted: ['a', 'kv/x'],
    }),
    ev('stateChanged', 2, { node: 'n2', version: 2, set: { 'pl/view': { v: 1, m: ['n1', 'n2', 'n3'], prev: ['n1', 'n2'], wait: [] } }, deleted: [] }),
    ev('stateChanged', 2, { node: 'n3', version: 1, set: { 'pl/view': { v: 1, m: ['n1', 'n2', 'n3'], prev: ['n1', 'n2'], wait: ['n1', 'n2'] } }, deleted: [] }),
    ev('placementChanged', 3, { version: 1, members: ['n1', 'n2', 'n3'], phase: 'sent', change: 'join n3' }),
    ev('placementChanged', 4, { version: 1, members: ['n1', 'n2', 'n3'], phase: 'committed', change: 'join n3' }),
    ev('stateChanged', 5, {
      node: 'n3',
      version: 2,
      set: { a: 1, 'kv/x': 2, 'pl/view': { v: 1, m: ['n1', 'n2', 'n3'], prev: ['n1', 'n2'], wait: [] } },
      deleted: [],
    }),
    ev('placementChanged', 6, { version: 1, members: ['n1', 'n2', 'n3'], phase: 'handedOver', change: 'join n3' }),
  ];
}

describe('placement in the playground', () => {
  it('counts units per service, one per unit whatever its keys, never membership state or replicas', () => {
    const units = unitsOfState({
      a: 1,
      'kv/x': 2,
      'wal/l/0': 'e',
      'wal/l/1': 'f',
      'br/t/0': 'x',
      'tr/s/hotel': 3,
      'tr/b/1': { item: 'hotel' },
      'wf/w1': {},
      'pl/view': { v: 1 },
      '~n1/a': 1,
    });
    expect(countUnits(units)).toEqual({ total: 6, byService: { kv: 1, wal: 1, broker: 1, wf: 1, travel: 1, app: 1 } });
    expect(nodePlacementView({ 'pl/view': { v: 3, m: ['n1'], prev: [], wait: ['n2'] } })).toEqual({ version: 3, members: ['n1'], wait: ['n2'] });
    expect(nodePlacementView({})).toBeNull();
  });

  it('follows placementChanged: the version, the running change, and the units that moved to the new node', () => {
    const m = new PlaygroundModel();
    const run = joinRun();
    m.applyAll(run.slice(0, 6));
    // Sent, not committed: the server does not route by it yet.
    expect(m.placement).toBeNull();
    expect(m.migrationRunning()?.change).toBe('join n3');
    // Sent, nothing arrived yet: n1 lost two units, n3 gained none.
    expect(migrationMoves(m, 1)).toMatchObject({ gained: { n1: 0, n2: 0, n3: 0 }, lost: { n1: 2, n2: 0, n3: 0 }, moves: [] });
    m.apply(run[6]!);
    expect(m.placement).toEqual({ version: 1, members: ['n1', 'n2', 'n3'] });
    m.applyAll(run.slice(7));
    expect(m.migrationRunning()).toBeNull();
    const last = m.migrations.at(-1)!;
    expect([last.phase, last.sentAt, last.committedAt, last.handedOverAt]).toEqual(['handedOver', 3, 4, 6]);
    const moves = migrationMoves(m, 1)!;
    expect(moves.moves).toEqual([{ from: 'n1', to: 'n3', units: 2 }]);
    expect(formatMoves(moves)).toBe('2 units to n3 (2 from n1)');
    expect(
      formatMoves({
        version: 1,
        gained: {},
        lost: {},
        moves: [
          { from: 'n1', to: 'n3', units: 1 },
          { from: null, to: 'n3', units: 2 },
        ],
      }),
    ).toBe('3 units to n3 (1 from n1, 2 not held by any node before)');
    // A little after the hand-offs arrived, what moved is fixed: later writes are not counted as moved.
    expect(last.moves).toBeNull();
    m.apply(ev('stateChanged', 2500, { node: 'n3', version: 3, set: { b: 1 }, deleted: [] }));
    expect(last.moves?.moves).toEqual([{ from: 'n1', to: 'n3', units: 2 }]);
    expect(migrationMoves(m, 1)?.moves).toEqual([
      { from: 'n1', to: 'n3', units: 2 },
      { from: null, to: 'n3', units: 1 },
    ]);
    // The snapshot tells the placement too; a trace round-trips the events and gives the same view.
    const again = new PlaygroundModel();
    again.applyAll(parseTrace(JSON.stringify(exportTrace(m, 'live', null, new Date(0)))).events);
    expect(again.placement).toEqual(m.placement);
    expect(again.migrations).toEqual(m.migrations);
  });

  it('refuses a malformed placementChanged in an imported trace, and the model skips one instead of breaking', () => {
    const malformed = JSON.stringify([{ type: 'placementChanged', t: 1, phase: 'sent' }]);
    expect(() => parseTrace(malformed)).toThrow('event 0 (placementChanged): version is required');
    const m = new PlaygroundModel();
    m.applyAll(JSON.parse(malformed) as Parameters<PlaygroundModel['applyAll']>[0]);
    expect(m.placement).toBeNull();
    expect(m.migrations).toEqual([]);
  });
});
