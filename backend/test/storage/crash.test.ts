import type { Json } from '@dse/shared';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EffectRecord } from '../../src/sim/kvapp';
import { PgliteStorage } from '../../src/storage/pglite';
import { freshPgliteDir } from './helpers';
import { MiniCluster } from './mini-cluster';

const CHILD = path.join(import.meta.dirname, 'crash-child.ts');
const NODES = ['n1', 'n2', 'n3'];

interface Commit {
  session: string;
  seq: number;
  node: string;
  key: string;
}

interface Run {
  worldLine: number;
  commits: Commit[];
  writesStarted: number;
  pid: number;
}

/** Runs crash-child.ts on `dir` until it has committed `minCommits` results, then SIGKILLs it just as a checkpoint write starts. */
function runAndKill(dir: string, client: string, minCommits: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, client], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { worldLine: 0, commits: [], writesStarted: 0, pid: child.pid! };
    let buf = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `child ${client} made too little progress (world-line ${run.worldLine}, ${run.commits.length} commits, ${run.writesStarted} writes): ${stderr}`,
        ),
      );
    }, 100_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (killed) continue; // printed after the signal was sent: not counted
        const parts = line.split(' ');
        if (parts[0] === 'R') run.worldLine = Number(parts[1]);
        else if (parts[0] === 'C') run.commits.push({ session: parts[1]!, seq: Number(parts[2]), node: parts[3]!, key: parts[4]! });
        else if (parts[0] === 'W') {
          run.writesStarted++;
          // A write has just started: kill the process in the middle of it.
          if (run.commits.length >= minCommits) {
            killed = true;
            child.kill('SIGKILL');
          }
        } else if (parts[0] === 'F') stderr += line;
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && killed) resolve(run);
      else reject(new Error(`child ${client} exited on its own (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

describe('crash: a process SIGKILLed in the middle of checkpoint writes', () => {
  let dir = '';
  afterAll(() => {
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('restarts from storage alone: every committed result intact, nothing above the cut restored', async () => {
    dir = await freshPgliteDir('dse-crash-');
    // Twice: the second run restarts on what the first left (a stale lock, a half-done write), recovers, and is killed too.
    const run1 = await runAndKill(dir, 'c1', 40);
    const run2 = await runAndKill(dir, 'c2', 40);
    expect(run2.worldLine).toBeGreaterThan(run1.worldLine);
    const lock = JSON.parse(fs.readFileSync(path.join(dir, 'dse.lock'), 'utf8')) as { pid: number };
    expect(lock.pid).toBe(run2.pid); // left behind by the killed process

    // Restart in this process: the stale lock is taken over, the coordinator recovers from storage.
    const db = await PgliteStorage.open({ dataDir: dir });
    const cluster = new MiniCluster(db.storage, NODES, { client: 'verify' });
    try {
      const saved = (await db.storage.loadCoordinator())!;
      expect(saved).not.toBeNull();
      await cluster.start();
      const cut = { ...cluster.coordinator.cut };
      const worldLine = cluster.coordinator.worldLine;
      expect(worldLine).toBe(saved.worldLine + 1);
      await cluster.until(() => [...cluster.nodes.values()].every((n) => n.status === 'up'), 60_000, 'every node restored');
      expect(cluster.fatal).toEqual([]);

      // Nothing above the cut is left in storage from the ended world-lines.
      for (let w = 1; w < worldLine; w++) {
        for (const m of await db.storage.listCheckpoints(w))
          expect(m.version, `${m.node}@${m.version} of world-line ${w}`).toBeLessThanOrEqual(cut[m.node] ?? 0);
      }
      for (const n of NODES) expect(await db.storage.loadCheckpoint(n, (cut[n] ?? 0) + 1)).toBeNull();

      const states = new Map<string, Map<string, Json>>();
      for (const n of NODES) {
        // The committed checkpoint at the cut reads back whole, and the node restored exactly it.
        const cp = await db.storage.loadCheckpoint(n, cut[n]!);
        expect(cp, `${n}@${cut[n]}`).not.toBeNull();
        const app = cluster.nodes.get(n)!.appState();
        states.set(n, app);
        for (const [k, v] of app) {
          for (const rec of v as unknown as EffectRecord[]) {
            // Every effect in the restored state was applied in a version at or below the cut.
            expect(rec.v, `${n} ${k}: an effect of version ${rec.v}, above the cut ${cut[n]}`).toBeLessThanOrEqual(cut[n]!);
          }
        }
      }

      // Every result either run saw committed is in the restored state, once.
      const commits = [...run1.commits, ...run2.commits];
      expect(commits.length).toBeGreaterThanOrEqual(80);
      const missing: string[] = [];
      for (const c of commits) {
        const list = (states.get(c.node)!.get(`h:${c.key}`) as unknown as EffectRecord[] | undefined) ?? [];
        const found = list.filter((r) => r.s === c.session && r.q === c.seq && r.i === 0).length;
        if (found !== 1) missing.push(`${c.session}#${c.seq} on ${c.node}/${c.key}: found ${found} times`);
      }
      expect(missing).toEqual([]);

      // And the runtime goes on: a new request commits on the new world-line.
      const r = await cluster.session().request('n1', { op: 'put', key: 'after', value: 1 });
      await r.commit();
    } finally {
      cluster.stop();
      await db.close();
    }
  }, 600_000);
});
