import { DseError } from '@dse/shared';
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import { PgliteStorage } from '../../src/storage/pglite';
import { resetTables } from './helpers';

/** The worker side of SyncStorage: a PgliteStorage answering one call at a time. */
const { port, signal, dataDir } = workerData as { port: MessagePort; signal: Int32Array; dataDir: string };

function answer(reply: object): void {
  port.postMessage(reply);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

let db: PgliteStorage | null = null;
try {
  db = await PgliteStorage.open({ dataDir });
  answer({ id: 0, value: 'ready' });
} catch (e) {
  answer({ id: 0, error: { code: e instanceof DseError ? e.code : 'Internal', message: String(e) } });
}

port.on('message', (m: { id: number; method: string; args: unknown[] }) => {
  const s = db!;
  const run = async (): Promise<unknown> => {
    if (m.method === 'reset') return resetTables((sql) => s.query(sql));
    if (m.method === 'query') return (await s.query(m.args[0] as string, m.args[1] as unknown[])).rows;
    if (m.method === 'close') return s.close();
    const f = (s.storage as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m.method]!;
    return f.apply(s.storage, m.args);
  };
  run().then(
    (value) => answer({ id: m.id, value }),
    (e: unknown) => answer({ id: m.id, error: { code: e instanceof DseError ? e.code : 'Internal', message: e instanceof Error ? e.message : String(e) } }),
  );
});
