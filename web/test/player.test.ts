import { describe, expect, it } from 'vitest';
import type { NumberedEvent } from '@dse/shared';
import { Player } from '../src/live/player';
import { summarize } from '../src/views/EventTable';

const events: NumberedEvent[] = [
  { n: 1, t: 0, type: 'nodeRestarted', node: 'a' },
  { n: 2, t: 0, type: 'nodeRestarted', node: 'b' },
  { n: 3, t: 10, type: 'versionOpened', node: 'a', worldLine: 1, version: 1, prevVersion: 0 },
  { n: 4, t: 5000, type: 'nodeFailed', node: 'a', reason: 'killed' },
];

describe('Player', () => {
  it('steps one instant at a time', () => {
    const seen: number[] = [];
    const p = new Player(events, (es) => seen.push(...es.map((e) => e.n)));
    p.step();
    expect(seen).toEqual([1, 2]);
    p.step();
    expect(seen).toEqual([1, 2, 3]);
  });

  it('plays on the events’ clock at its speed, skipping long idle stretches, and stops at the end', () => {
    const seen: number[] = [];
    const p = new Player(events, (es) => seen.push(...es.map((e) => e.n)));
    p.speed = 1;
    p.playing = true;
    p.advance(5);
    expect(seen).toEqual([1, 2]);
    p.advance(5);
    expect(seen).toEqual([1, 2, 3]);
    p.advance(5); // 4,985 ms of nothing ahead: jump to just before the next event
    p.advance(5);
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(p.done).toBe(true);
    expect(p.playing).toBe(false);
  });

  it('jumps to the end', () => {
    const seen: number[] = [];
    const p = new Player(events, (es) => seen.push(...es.map((e) => e.n)));
    p.toEnd();
    expect(seen).toEqual([1, 2, 3, 4]);
  });
});

describe('event table text', () => {
  it('says what happened in words', () => {
    expect(summarize({ n: 1, t: 0, type: 'rollback', node: 'n2', worldLine: 3, toVersion: 7, discarded: { from: 8, to: 9 } })).toBe(
      'n2 restored v7 on world-line 3, discarded v8–v9',
    );
    expect(summarize({ n: 2, t: 0, type: 'messageRejected', id: 'x', kind: 'app', from: 'n1', to: 'n2', worldLine: 1, receiverWorldLine: 2 })).toContain(
      'rejected',
    );
  });
});
