import type { ErrorCode, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError, ERROR_CODES } from '@dse/shared';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { COMPILED, entryPoint } from './entry-points';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../core/ports';
import type { WorkerCalls, WorkerError, WorkerMethod, WorkerReply, WorkerRequest } from './worker-protocol';

// From the build, the worker's own bundle; from the sources, a starter that loads its TypeScript with tsx.
const WORKER = COMPILED ? entryPoint('storage/pglite-worker').file : fileURLToPath(new URL('./pglite-worker.mjs', import.meta.url));

/**
 * PGlite in a worker thread (`pglite-worker.ts`), behind the Storage port: the server's event loop
 * only posts the calls and gets the answers, while the database works in a thread of its own. Same
 * data folder rules as `PgliteStorage` (one owning process; the worker takes the lock).
 */
export class WorkerPgliteStorage implements Storage {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private closed = false;

  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    readonly describe: string,
  ) {
    port.on('message', (m: WorkerReply) => {
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(asError(m.error));
      else p.resolve(m.value);
    });
    worker.on('error', (e) => this.failAll(e));
    worker.on('exit', () => this.failAll(new Error('the storage worker exited')));
  }

  static async open(dataDir: string): Promise<WorkerPgliteStorage> {
    // Creating a database (initdb) leaves PGlite holding some 500 MB more than opening one does, for as
    // long as its thread lives: a new folder is created in a worker of its own, ended, then opened.
    if (!existsSync(join(dataDir, 'pglite', 'PG_VERSION'))) await (await WorkerPgliteStorage.start(dataDir, true)).close();
    return WorkerPgliteStorage.start(dataDir, false);
  }

  private static start(dataDir: string, createOnly: boolean): Promise<WorkerPgliteStorage> {
    const { port1, port2 } = new MessageChannel();
    // A small young generation: the worker's allocations are short-lived, and V8 would otherwise grow it to ~30 MB.
    const worker = new Worker(WORKER, {
      workerData: { port: port2, dataDir, createOnly },
      transferList: [port2],
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    return new Promise((resolve, reject) => {
      const onError = (e: unknown): void => reject(e instanceof DseError ? e : new DseError('StorageCorrupt', `PGlite worker: ${String(e)}`));
      worker.once('error', onError);
      port1.once('message', (m: WorkerReply & { value?: { describe: string } }) => {
        worker.off('error', onError);
        if (m.error !== undefined) {
          void worker.terminate();
          reject(asError(m.error));
          return;
        }
        resolve(new WorkerPgliteStorage(worker, port1, m.value!.describe));
      });
    });
  }

  /**
   * Posts a call and resolves with its answer. The answer comes from the worker's thread as plain data:
   * it is the method's result by the protocol both sides are typed against (worker-protocol.ts), which
   * this one assertion takes on trust.
   */
  private call<M extends WorkerMethod>(method: M, ...args: WorkerCalls[M]['args']): Promise<WorkerCalls[M]['result']> {
    if (this.closed) return Promise.reject(new DseError('StorageUnavailable', 'storage: closed'));
    const id = this.nextId++;
    const request: WorkerRequest<M> = { id, method, args };
    return new Promise((resolve, reject) => {
      try {
        this.port.postMessage(request);
      } catch (e) {
        // Not data (a function, a symbol, …): nothing was sent.
        reject(new DseError('BadRequest', `storage: ${method}: its arguments are not plain data (${e instanceof Error ? e.message : String(e)})`));
        return;
      }
      this.pending.set(id, { resolve: (v) => resolve(v as WorkerCalls[M]['result']), reject });
    });
  }

  private failAll(e: unknown): void {
    for (const p of this.pending.values()) p.reject(new DseError('StorageUnavailable', `storage worker: ${e instanceof Error ? e.message : String(e)}`));
    this.pending.clear();
  }

  writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    return this.call('writeCheckpoints', records);
  }
  async loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null> {
    const cp = await this.call('loadCheckpoint', node, version);
    return cp === null ? null : { ...cp, state: new Map(cp.state) };
  }
  listCheckpoints(worldLine: WorldLine): Promise<CheckpointMeta[]> {
    return this.call('listCheckpoints', worldLine);
  }
  loadCoordinator(): Promise<CoordinatorRecord | null> {
    return this.call('loadCoordinator');
  }
  saveCoordinator(record: CoordinatorRecord): Promise<void> {
    return this.call('saveCoordinator', record);
  }
  prune(node: NodeId, version: Version): Promise<void> {
    return this.call('prune', node, version);
  }
  rowCount(node?: NodeId): Promise<number> {
    return this.call('rowCount', node);
  }

  /** A statement of its own on the database (tests and tools; the runtime goes through the methods above). */
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]> {
    return this.call('query', sql, values);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.call('close').catch(() => undefined);
    this.closed = true;
    await this.worker.terminate();
  }
}

function asError(e: WorkerError): DseError {
  const code = (e.code in ERROR_CODES ? e.code : 'Internal') as ErrorCode;
  return new DseError(code, e.message);
}
