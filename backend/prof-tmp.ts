import type { InspectionEvent } from '@dse/shared';
import { createRuntime } from './src/embedded/runtime';
import { servicesApp, WorkflowClient } from './src/services';
import { openStorage } from './src/storage/open';
const opened = await openStorage({ kind: 'postgres', databaseUrl: 'postgresql://postgres@127.0.0.1:5432/test', schema: `prof_${Date.now()}` });
const ev: InspectionEvent[] = [];
const interval = Number(process.argv[2] ?? 10);
const rt = await createRuntime({ app: servicesApp, nodes: 4, storage: opened.storage, checkpointIntervalMs: interval, onEvent: (e) => ev.push(e) });
const rows: number[][] = [];
for (let k = 0; k < 60; k++) {
  const wf = new WorkflowClient(rt.session(), { nodes: rt.nodes });
  const steps = Array.from({ length: 5 }, (_, i) => ({ name: `s${i}`, node: rt.nodes[(k + 1 + i) % 4]!, do: { svc: 'travel', op: 'reserve', wf: `w${k}`, step: i, item: `it${i}`, capacity: null }, undo: { svc: 'travel', op: 'cancel', wf: `w${k}`, step: i } }));
  ev.length = 0;
  const t0 = rt.host.now;
  const r = await wf.run(`w${k}-${Date.now()}`, steps as never, rt.nodes[k % 4]!);
  const ta = rt.host.now - t0;
  await r.commit();
  const tc = rt.host.now - t0;
  const started = ev.filter((e) => e.type === 'checkpointStarted').map((e) => e.t - t0);
  const persisted = ev.filter((e) => e.type === 'checkpointPersisted').map((e) => e.t - t0);
  const cuts = ev.filter((e) => e.type === 'cutAdvanced').map((e) => e.t - t0);
  if (k >= 10) rows.push([ta, tc, started.length, Math.max(...started.filter((x) => x > ta), 0), persisted.length, Math.max(...persisted, 0), cuts.length]);
}
const med = (i: number) => [...rows.map((r) => r[i]!)].sort((a, b) => a - b)[Math.floor(rows.length / 2)]!.toFixed(2);
console.log(`interval ${interval}: answer ${med(0)} commit ${med(1)} checkpointsStarted ${med(2)} lastStartAfterAnswer ${med(3)} persisted ${med(4)} lastPersisted ${med(5)} cutAnnouncements ${med(6)}`);
await rt.close(); await opened.close();
