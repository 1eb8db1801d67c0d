import { messageIds, requestOfMessageId } from '@dse/shared';
import { describe, expect, it } from 'vitest';
import { messageId } from '../../src/core/node';
import { appKey as stateKeyOfApp, appKeyName as appKeyOf } from '../../src/core/state-keys';

/** The core's private formats, through their accessors only: message ids and the app's keys in a node's state. */

describe('message ids', () => {
  const h = { src: 'n1', srcVersion: 7, worldLine: 3, seq: 12 };

  it('a request and its reply name the same request, whatever the caller id holds', () => {
    for (const caller of ['s1', 'server.s4@abc', 'n2~trip-1/s3']) {
      const q = messageId({ kind: 'request', h: { ...h, src: 'server' }, caller, deps: {}, payload: null, probe: false });
      const r = messageId({ kind: 'reply', h: { ...h, seq: 40 }, caller, seq: 12, status: 'ok', result: null, deps: {} });
      expect(q).toBe(messageIds.request(caller, 12, 3));
      expect(requestOfMessageId(q)).toEqual({ caller, seq: 12, worldLine: 3 });
      expect(requestOfMessageId(r)).toEqual({ caller, seq: 12, worldLine: 3 });
    }
  });

  it('other ids are no request', () => {
    expect(requestOfMessageId(messageIds.app('n1', 4))).toBeNull();
    expect(requestOfMessageId(messageIds.ack('n1', 4, 2))).toBeNull();
    expect(requestOfMessageId('q/s1/x/3')).toBeNull();
    expect(requestOfMessageId('q/3')).toBeNull();
  });
});

describe('app keys', () => {
  it('round-trip, and runtime keys are none of the app', () => {
    expect(appKeyOf(stateKeyOfApp('user:1'))).toBe('user:1');
    expect(appKeyOf('r:seq:n2')).toBeNull();
  });
});
