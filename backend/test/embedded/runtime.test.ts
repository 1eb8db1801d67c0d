import * as fs from 'node:fs';
import type { InspectionEvent } from '@dse/shared';
import { isDseError } from '@dse/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/embedded/runtime';
import { createRuntime } from '../../src/embedded/runtime';
import { KvClient, servicesApp, travelReservation, WalClient, WorkflowClient } from '../../src/services';
import type { OpenedStorage } from '../../src/storage/open';
import { openStorage } from '../../src/storage/open';
import { postgresProblem, POSTGRES_REQUIRED, POSTGRES_URL, reportSkip } from '../storage/pg-env';
import { freshPgliteDir } from '../storage/helpers';
import { dropSchema } from '../../src/storage/postgres';

/**
 * The embedded deployment (`createRuntime`): every node, the coordinator and the sessions in this
 * process, on real storage. The services run on it unchanged; a crash of a node is recovered.
 */
const problem = await postgresProblem();
if (problem !== null && POSTGRES_REQUIRED) throw new Error(`PostgreSQL required (DSE_REQUIRE_POSTGRES=1) but not reachable: ${problem}`);
if (problem !== null) reportSkip('the embedded runtime on PostgreSQL (it runs on PGlite)', problem);

describe(`embedded runtime (${problem === null ? 'PostgreSQL' : 'PGlite'})`, () => {
  let opened: OpenedStorage;
  let rt: Runtime;
  let dir: string | null = null;
  const schema = `dse_embedded_${process.pid}_${Date.now().toString(36)}`;
  const events: InspectionEvent[] = [];

  beforeAll(async () => {
    if (problem === null) opened = await openStorage({ kind: 'postgres', databaseUrl: POSTGRES_URL, schema });
    else {
      dir = await freshPgliteDir('dse-embedded-');
      opened = await openStorage({ kind: 'pglite', dataDir: dir });
    }
    rt = await createRuntime({ app: servicesApp, nodes: 4, storage: opened.storage, onEvent: (e) => events.push(e) });
  }, 60_000);

  afterAll(async () => {
    await rt?.close();
    await opened?.close();
    if (problem === null) await dropSchema(POSTGRES_URL, schema).catch(() => undefined);
    if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the services run on it unchanged: answers at once, commits when awaited', async () => {
    const wal = new WalClient(rt.session(), { nodes: rt.nodes, cutView: rt.host });
    const kv = new KvClient(rt.session(), { nodes: rt.nodes });
    const wf = new WorkflowClient(rt.session(), { nodes: rt.nodes });
    const a = await wal.append('audit', { x: 1 });
    expect(a.value.pos).toBe(0);
    await a.commit();
    await (await kv.put('k', 'v')).commit();
    expect((await kv.get('k')).value).toMatchObject({ value: 'v' });
    const trip = travelReservation(
      't1',
      [
        { kind: 'flight', item: 'LYS-CDG', capacity: null },
        { kind: 'hotel', item: 'ritz', capacity: null },
        { kind: 'payment', item: 'card', capacity: null },
      ],
      rt.nodes,
    );
    const r = await wf.run('t1', trip);
    expect(r.value.status).toBe('completed');
    expect(await r.commit()).toMatchObject({ status: 'completed' });
    const read = await wal.read('audit', { committed: true });
    expect(read.value.entries.map((e) => e.data)).toEqual([{ x: 1 }]);
  });

  it('a crashed node is recovered: what was committed stays, the cluster goes on', async () => {
    const kv = new KvClient(rt.session(), { nodes: rt.nodes });
    await (await kv.put('stays', 1)).commit();
    const victim = kv.nodeOf('stays');
    const w0 = rt.coordinator.worldLine;
    rt.crash(victim);
    for (let i = 0; rt.coordinator.worldLine === w0; i++) {
      if (i > 2000) throw new Error('no recovery');
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(events.some((e) => e.type === 'worldLineChanged' && e.failed.includes(victim))).toBe(true);
    rt.restart(victim);
    const reader = new KvClient(rt.session(), { nodes: rt.nodes });
    for (let i = 0; ; i++) {
      try {
        const got = await reader.get('stays');
        expect(got.value).toMatchObject({ value: 1 });
        await got.commit();
        break;
      } catch (e) {
        // Sent before the node was back: rolled back (definitely); ask again on a fresh session.
        if (!isDseError(e) || i > 50) throw e;
        reader.resume();
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  });

  it('refuses bad node lists with a typed error', async () => {
    await expect(createRuntime({ app: servicesApp, nodes: [], storage: opened.storage })).rejects.toMatchObject({ code: 'BadRequest' });
    await expect(createRuntime({ app: servicesApp, nodes: ['a', 'a'], storage: opened.storage })).rejects.toMatchObject({ code: 'BadRequest' });
    await expect(createRuntime({ app: servicesApp, nodes: ['coordinator'], storage: opened.storage })).rejects.toMatchObject({ code: 'BadRequest' });
  });
});
