import { DseError } from '@dse/shared';
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import { PgliteStorage } from './pglite';
import type { WorkerCalls, WorkerError, WorkerMethod, WorkerReply, WorkerRequest } from './worker-protocol';

/**
 * The worker side of `WorkerPgliteStorage`: PGlite runs here, in a thread of its own, so that its
 * queries (WebAssembly, synchronous while they run) never stall the server's event loop, which relays
 * for every node and serves the browsers. Calls come as `{id, method, args}`; answers go back as
 * `{id, value}` or `{id, error: {code, message}}` (worker-protocol.ts).
 */
const { port, dataDir, createOnly } = workerData as { port: MessagePort; dataDir: string; createOnly?: boolean };

type Handler<M extends WorkerMethod> = (s: PgliteStorage, ...args: WorkerCalls[M]['args']) => Promise<WorkerCalls[M]['result']>;

/** Each method the worker answers, with the arguments and result worker-protocol.ts gives it. */
const HANDLERS: { [M in WorkerMethod]: Handler<M> } = {
  writeCheckpoints: (s, records) => s.storage.writeCheckpoints(records),
  loadCheckpoint: async (s, node, version) => {
    const cp = await s.storage.loadCheckpoint(node, version);
    return cp === null ? null : { ...cp, state: [...cp.state] };
  },
  listCheckpoints: (s, worldLine) => s.storage.listCheckpoints(worldLine),
  loadCoordinator: (s) => s.storage.loadCoordinator(),
  saveCoordinator: (s, record) => s.storage.saveCoordinator(record),
  prune: (s, node, version) => s.storage.prune(node, version),
  rowCount: (s, node) => s.storage.rowCount(node),
  query: async (s, sql, values) => (await s.query(sql, values)).rows,
  close: (s) => s.close(),
};

/**
 * Runs one call: the method's handler with the call's arguments (the generic ties the two together).
 * Async, so that anything thrown is an error answer, never an exception of the thread.
 */
async function dispatch<M extends WorkerMethod>(s: PgliteStorage, call: WorkerRequest<M>): Promise<WorkerCalls[M]['result']> {
  if (!Object.hasOwn(HANDLERS, call.method)) throw new DseError('BadRequest', `storage worker: no method ${String(call.method)}`);
  const handler: Handler<M> = HANDLERS[call.method];
  return handler(s, ...call.args);
}

const errorOf = (e: unknown): WorkerError => ({ code: e instanceof DseError ? e.code : 'Internal', message: e instanceof Error ? e.message : String(e) });
const reply = (r: WorkerReply): void => port.postMessage(r);

let db: PgliteStorage | null = null;
try {
  db = await PgliteStorage.open({ dataDir });
  // Only creating the database (see WorkerPgliteStorage.open): close it now; the next call closes the thread.
  if (createOnly === true) await db.close();
  reply({ id: 0, value: { describe: db.describe } });
} catch (e) {
  reply({ id: 0, error: errorOf(e) });
}

// Only WorkerPgliteStorage posts here, with the calls worker-protocol.ts defines.
port.on('message', (m: WorkerRequest) => {
  dispatch(db!, m).then(
    (value) => reply({ id: m.id, value }),
    (e: unknown) => reply({ id: m.id, error: errorOf(e) }),
  );
});
