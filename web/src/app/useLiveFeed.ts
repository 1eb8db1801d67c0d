import { useCallback, useEffect, useRef, useState } from 'react';
import type { Command, CommandType, StreamSnapshot } from '@dse/shared';
import { CommandError, LiveConnection, type ConnectionStatus } from '../live/connection';
import type { ModelStore } from '../live/store';
import type { RollbackRecord } from '../model/model';
import type { CallResult } from '../views/Tours';
import type { Source } from './source';
import type { Notify } from './useNotices';

export interface LiveFeed {
  conn: ConnectionStatus;
  /** The connection (null before the first effect ran). */
  connRef: React.RefObject<LiveConnection | null>;
  /** A command whose failure is told in a notice; resolves to whether it succeeded. */
  command<C extends CommandType>(c: Extract<Command, { type: C }>, what: string): Promise<boolean>;
  /** A command whose failure is returned (for the tours, which say it in their own words). */
  call<C extends CommandType>(c: Extract<Command, { type: C }>, timeoutMs?: number): Promise<CallResult<C>>;
  busy: boolean;
  setBusy(b: boolean): void;
}

/**
 * The live cluster's feed: the server's snapshot and event batches go into the store while the page
 * shows the live cluster (a replay ignores them), and commands go back. `onRecovery` hears of each
 * recovery the feed brings after the snapshot (not of those already in the snapshot's history).
 */
export function useLiveFeed(store: ModelStore, sourceRef: React.RefObject<Source>, notify: Notify, onRecovery: (rec: RollbackRecord) => void): LiveFeed {
  const [conn, setConn] = useState<ConnectionStatus>('connecting');
  const [busy, setBusy] = useState(false);
  const connRef = useRef<LiveConnection | null>(null);
  const onRecoveryRef = useRef(onRecovery);
  useEffect(() => {
    onRecoveryRef.current = onRecovery;
  });

  useEffect(() => {
    // The newest world-line already told of (its recovery is not announced again).
    let toldWorldLine: number | null = null;
    const c = new LiveConnection({
      onStatus: (s, detail) => {
        setConn(s);
        if (s === 'disconnected' && detail !== undefined && detail !== 'io client disconnect') notify('warning', `disconnected from the server: ${detail}`);
      },
      onSnapshot: (s: StreamSnapshot) => {
        if (s.notice !== undefined) notify('warning', s.notice);
        if (sourceRef.current.kind !== 'live') return;
        store.reset();
        store.model.loadSnapshot(s.cluster, s.config, s.workload, s.limits, s.history, s.baseStates);
        toldWorldLine = store.model.worldLine;
        store.changed(true);
      },
      onBatch: (b) => {
        if (sourceRef.current.kind !== 'live') return;
        toldWorldLine ??= store.model.worldLine;
        store.model.applyAll(b.events);
        store.changed();
        const rec = store.model.rollbacks.at(-1);
        if (rec !== undefined && rec.worldLine > toldWorldLine) {
          toldWorldLine = rec.worldLine;
          onRecoveryRef.current(rec);
        }
      },
      onNotice: (n) => notify(n.level, n.message),
    });
    connRef.current = c;
    return () => c.close();
  }, [store, notify, sourceRef]);

  const command = useCallback(
    async <C extends CommandType>(c: Extract<Command, { type: C }>, what: string): Promise<boolean> => {
      const lc = connRef.current;
      if (lc === null) return false;
      setBusy(true);
      try {
        await lc.command(c);
        return true;
      } catch (e) {
        notify('error', `${what} failed — ${commandErrorText(e)}`);
        return false;
      } finally {
        setBusy(false);
      }
    },
    [notify],
  );

  const call = useCallback(async <C extends CommandType>(c: Extract<Command, { type: C }>, timeoutMs?: number): Promise<CallResult<C>> => {
    const lc = connRef.current;
    if (lc === null) return { ok: false, code: 'Disconnected', message: 'not connected' };
    try {
      return { ok: true, value: await lc.command<C>(c, timeoutMs) };
    } catch (e) {
      return e instanceof CommandError ? { ok: false, code: e.code, message: e.message } : { ok: false, code: 'Error', message: String(e) };
    }
  }, []);

  return { conn, connRef, command, call, busy, setBusy };
}

/** A failed command in words: its code and message, and whether it may still have happened. */
export function commandErrorText(e: unknown): string {
  return e instanceof CommandError ? `${e.code}: ${e.message}${e.definite ? '' : ' (it may still have happened)'}` : String(e);
}
