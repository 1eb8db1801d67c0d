import { DseError } from '@dse/shared';
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import type { Storage } from '../core/ports';
import { PgliteStorage } from './pglite';

/**
 * The worker side of `WorkerPgliteStorage`: PGlite runs here, in a thread of its own, so that its
 * queries (WebAssembly, synchronous while they run) never stall the server's event loop, which relays
 * for every node and serves the browsers. Calls come as `{id, method, args}`; answers go back as
 * `{id, value}` or `{id, error: {code, message}}`.
 */
const { port, dataDir, createOnly } = workerData as { port: MessagePort; dataDir: string; createOnly?: boolean };

type Method = keyof Storage | 'close' | 'rowCount' | 'query';

let db: PgliteStorage | null = null;
try {
  db = await PgliteStorage.open({ dataDir });
  // Only creating the database (see WorkerPgliteStorage.open): close it now; the next call closes the thread.
  if (createOnly === true) await db.close();
  port.postMessage({ id: 0, value: { describe: db.describe } });
} catch (e) {
  port.postMessage({ id: 0, error: { code: e instanceof DseError ? e.code : 'Internal', message: e instanceof Error ? e.message : String(e) } });
}

port.on('message', (m: { id: number; method: Method; args: unknown[] }) => {
  const s = db!;
  const run = async (): Promise<unknown> => {
    if (m.method === 'close') return s.close();
    if (m.method === 'rowCount') return s.storage.rowCount(m.args[0] as string | undefined);
    if (m.method === 'query') return (await s.query(m.args[0] as string, m.args[1] as unknown[] | undefined)).rows;
    if (m.method === 'loadCheckpoint') {
      const cp = await s.storage.loadCheckpoint(m.args[0] as string, m.args[1] as number);
      // A Map does not cross postMessage as fast as an array of entries.
      return cp === null ? null : { ...cp, state: [...cp.state] };
    }
    const f = (s.storage as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m.method];
    if (typeof f !== 'function') throw new DseError('BadRequest', `storage worker: no method ${String(m.method)}`);
    return f.apply(s.storage, m.args);
  };
  run().then(
    (value) => port.postMessage({ id: m.id, value }),
    (e: unknown) =>
      port.postMessage({ id: m.id, error: { code: e instanceof DseError ? e.code : 'Internal', message: e instanceof Error ? e.message : String(e) } }),
  );
});
