import * as fs from 'node:fs';
import type { CheckpointRecord } from '../../src/core/ports';
import { openStorage } from '../../src/storage/open';
import { overrideStorage } from '../../src/storage/override';
import { MiniCluster } from './mini-cluster';

/**
 * The process the crash test kills: the DSE runtime on PGlite in `argv[2]`, under a steady load of
 * puts. It prints (synchronously, so nothing printed is lost with the process):
 * `R <worldLine>` once running, `W` when a checkpoint write starts, and
 * `C <session> <seq> <node> <key>` for each request whose commit resolved.
 */
const [dataDir, client] = process.argv.slice(2) as [string, string];
const say = (line: string): void => void fs.writeSync(1, line + '\n');

const opened = await openStorage({ kind: 'pglite', dataDir });
const inner = opened.storage;
const storage = overrideStorage(inner, {
  writeCheckpoints: (records: readonly CheckpointRecord[]) => {
    say('W');
    return inner.writeCheckpoints(records);
  },
});
const nodes = ['n1', 'n2', 'n3'];
const cluster = new MiniCluster(storage, nodes, { client, checkpointIntervalMs: 15, pruneIntervalMs: 60 });
await cluster.start();
say(`R ${cluster.coordinator.worldLine}`);

const keys = ['a', 'b', 'c', 'd'];
for (let k = 0; k < 6; k++) {
  const s = cluster.session();
  void (async () => {
    for (let i = 0; ; i++) {
      // A bounded number of open requests per session (and a real pause): the load must not starve the event loop.
      while (s.openRequests > 20) await new Promise((r) => setTimeout(r, 5));
      const node = nodes[(i + k) % nodes.length]!;
      const key = keys[(i * 7 + k) % keys.length]!;
      try {
        const r = await s.request(node, { op: 'put', key, value: i });
        r.commit().then(
          () => say(`C ${r.session} ${r.seq} ${node} ${key}`),
          () => undefined,
        );
      } catch {
        // rolled back: go on
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  })();
}
setInterval(() => {
  if (cluster.fatal.length > 0) {
    say(`F ${String(cluster.fatal[0])}`);
    process.exit(3);
  }
}, 50);
