import type { ErrorCode, NodeId, Version, WorldLine } from '@dse/shared';
import { DseError } from '@dse/shared';
import * as path from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { CheckpointMeta, CheckpointRecord, CoordinatorRecord, LoadedCheckpoint, Storage } from '../../src/core/ports';

/**
 * PgliteStorage run in a worker thread and called synchronously (the caller blocks until the answer).
 *
 * Why: the simulator runs on virtual time, which moves on whenever no promise reaction is due; a real
 * database answers in real time, so meanwhile virtual time would race ahead (timeouts fire, crashes
 * land) as if storage were thousands of times slower than the simulator's own storage latency. Called
 * synchronously, every storage call is real SQL on a real PGlite, and from the simulator's point of
 * view takes no time: the simulator adds its own latency and faults on top, as it does for memory.
 */
export class SyncStorage implements Storage {
  private constructor(
    private readonly worker: Worker,
    private readonly port: MessagePort,
    private readonly signal: Int32Array,
  ) {}

  static async open(dataDir: string): Promise<SyncStorage> {
    const signal = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(path.join(import.meta.dirname, 'sync-storage-worker.mjs'), {
      workerData: { port: port2, signal, dataDir },
      transferList: [port2],
    });
    let failed = null as Error | null; // (set in a callback: typed so that the check below is not narrowed to never)
    worker.on('error', (e) => {
      failed = e;
      Atomics.add(signal, 0, 1);
      Atomics.notify(signal, 0);
    });
    const s = new SyncStorage(worker, port1, signal);
    // Waited for without blocking: the worker's module loading needs this thread's loader hooks (tsx).
    const deadline = Date.now() + 120_000;
    while (Atomics.load(signal, 0) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (failed !== null) throw failed;
    s.wait(0, 'open');
    return s;
  }

  private seq = 0;

  /** Blocks until the answer to call `id` arrives (answers to calls given up on are skipped). */
  private wait(id: number, what: string): unknown {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const seen = Atomics.load(this.signal, 0);
      const got = receiveMessageOnPort(this.port);
      if (got !== undefined) {
        const m = got.message as { id: number; value?: unknown; error?: { code: string; message: string } };
        if (m.id !== id) continue;
        if (m.error !== undefined) {
          if (m.error.code === 'Internal') throw new Error(m.error.message);
          throw new DseError(m.error.code as ErrorCode, m.error.message);
        }
        return m.value;
      }
      if (Date.now() > deadline) throw new Error(`SyncStorage: ${what} got no answer`);
      // The worker bumps the counter after each answer.
      Atomics.wait(this.signal, 0, seen, 1000);
    }
  }

  /** Runs `method` in the worker and blocks until it answers. */
  callSync(method: string, ...args: unknown[]): unknown {
    const id = ++this.seq;
    this.port.postMessage({ id, method, args });
    return this.wait(id, method);
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    try {
      return Promise.resolve(this.callSync(method, ...args) as T);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  writeCheckpoints(records: readonly CheckpointRecord[]): Promise<void> {
    return this.call('writeCheckpoints', records);
  }
  loadCheckpoint(node: NodeId, version: Version): Promise<LoadedCheckpoint | null> {
    return this.call('loadCheckpoint', node, version);
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

  reset(): void {
    this.callSync('reset');
  }

  query<R>(sql: string, values: unknown[] = []): R[] {
    return this.callSync('query', sql, values) as R[];
  }

  async close(): Promise<void> {
    this.callSync('close');
    await this.worker.terminate();
  }
}
