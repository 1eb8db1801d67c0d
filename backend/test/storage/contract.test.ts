import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/storage/memory';
import { PgliteStorage } from '../../src/storage/pglite';
import { PostgresStorage } from '../../src/storage/postgres';
import { WorkerPgliteStorage } from '../../src/storage/worker-storage';
import { storageContract } from './contract';
import { POSTGRES_REQUIRED, POSTGRES_URL, dropSchema, postgresProblem, reportSkip, uniqueSchema } from './pg-env';
import { freshPgliteDir, resetTables } from './helpers';

storageContract('memory', () => Promise.resolve({ storage: new MemoryStorage(), close: () => Promise.resolve() }), { checksInput: false });

// PGlite on a real data folder (creating one takes seconds: one folder for the suite, emptied before each test).
let pgliteDir: string | undefined;
let pglite: Promise<PgliteStorage> | undefined;
storageContract(
  'PGlite',
  async () => {
    pglite ??= freshPgliteDir('dse-pglite-contract-').then((dir) => {
      pgliteDir = dir;
      return PgliteStorage.open({ dataDir: dir });
    });
    const p = await pglite;
    await resetTables((sql) => p.query(sql));
    return { storage: p.storage, close: () => Promise.resolve() };
  },
  { checksInput: true },
);

// The same, in a worker thread (what the server runs: its event loop never waits on PGlite).
let workerDir: string | undefined;
let worker: Promise<WorkerPgliteStorage> | undefined;
storageContract(
  'PGlite in a worker thread',
  async () => {
    worker ??= freshPgliteDir('dse-pglite-worker-contract-').then((dir) => {
      workerDir = dir;
      return WorkerPgliteStorage.open(dir);
    });
    const w = await worker;
    await resetTables((sql) => w.query(sql));
    return { storage: w, close: () => Promise.resolve() };
  },
  { checksInput: true },
);

const problem = await postgresProblem();
const schema = uniqueSchema('dse_contract');
let postgres: Promise<PostgresStorage> | undefined;
if (problem === null) {
  storageContract(
    'PostgreSQL',
    async () => {
      postgres ??= PostgresStorage.open({ url: POSTGRES_URL, schema });
      const p = await postgres;
      await resetTables((sql) => p.pool.query(sql));
      return { storage: p.storage, close: () => Promise.resolve() };
    },
    { checksInput: true },
  );
} else if (POSTGRES_REQUIRED) {
  describe('Storage contract: PostgreSQL', () => {
    it('needs a reachable PostgreSQL (DSE_REQUIRE_POSTGRES=1)', () => {
      expect.fail(`PostgreSQL is required but not reachable at ${POSTGRES_URL}: ${problem}`);
    });
  });
} else {
  reportSkip('the PostgreSQL contract suite', problem);
  describe.skip('Storage contract: PostgreSQL (skipped: no server)', () => {
    it('runs against PostgreSQL', () => undefined);
  });
}

afterAll(async () => {
  if (pglite !== undefined) await (await pglite).close();
  if (pgliteDir !== undefined) fs.rmSync(pgliteDir, { recursive: true, force: true });
  if (worker !== undefined) await (await worker).close();
  if (workerDir !== undefined) fs.rmSync(workerDir, { recursive: true, force: true });
  if (postgres !== undefined) {
    await (await postgres).close();
    await dropSchema(schema);
  }
});
