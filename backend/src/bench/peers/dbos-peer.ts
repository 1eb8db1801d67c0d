/**
 * The durable-execution peer of the benchmark: DBOS Transact (`@dbos-inc/dbos-sdk`), in a process of its
 * own so that its pools and timers do not share the event loop that measures the DSE modes.
 *
 * A workflow of S steps, each a `DBOS.runStep` (DBOS persists every step's output before the next one
 * runs: the synchronous persistence DSE takes off the critical path). Latency: from calling the workflow
 * to its result, which DBOS returns once the workflow's outcome is durable.
 *
 *   node --import tsx dbos-peer.ts <postgres url> <schema>
 *
 * Commands, one JSON object per line on stdin: `{"run": {"steps": S, "n": N, "warm": W}}` answers
 * `{"samples": [ms, …]}`; `{"stop": true}` shuts DBOS down, drops its schema and exits. The first line
 * on stdout is `{"ready": true}` (or `{"error": "..."}` and exit 1).
 */
import { createInterface } from 'node:readline';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { dropSchema } from '../../storage/postgres';

const [url, schema] = process.argv.slice(2);
if (url === undefined || schema === undefined || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
  process.stdout.write(`${JSON.stringify({ error: 'usage: dbos-peer.ts <postgres url> <schema of letters, digits and _>' })}\n`);
  process.exit(2);
}

const send = (o: object): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const steps = DBOS.registerWorkflow(
  async (n: number): Promise<number> => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += await DBOS.runStep(() => Promise.resolve(i), { name: `step${i}` });
    return sum;
  },
  { name: 'benchSteps' },
);

try {
  DBOS.setConfig({ name: 'dse-bench-peer', systemDatabaseUrl: url, systemDatabaseSchemaName: schema, logLevel: 'error' });
  await DBOS.launch();
} catch (e) {
  send({ error: `DBOS did not launch: ${e instanceof Error ? e.message : String(e)}` });
  process.exit(1);
}
send({ ready: true });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const cmd = JSON.parse(line) as { run?: { steps: number; n: number; warm: number }; stop?: boolean };
  if (cmd.stop === true) break;
  if (cmd.run === undefined) continue;
  const samples: number[] = [];
  for (let i = 0; i < cmd.run.warm + cmd.run.n; i++) {
    const t0 = performance.now();
    await steps(cmd.run.steps);
    if (i >= cmd.run.warm) samples.push(performance.now() - t0);
  }
  send({ samples });
}
await DBOS.shutdown();
await dropSchema(url, schema).catch(() => undefined);
send({ stopped: true });
process.exit(0);
