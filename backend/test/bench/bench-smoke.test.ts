import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../src/bench/report/types';

/**
 * A smoke run of `npm run bench -- --quick` with tiny counts: the command works end to end on real
 * node processes (PGlite, or PostgreSQL when DATABASE_URL is set) and its output has the promised
 * shape. No figure is asserted: speed is the benchmark's business, not a test's.
 */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'dse-bench-smoke-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'backend/src/bench/bench.ts', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench -- --quick (tiny counts)', () => {
  it('runs every phase and prints the result as the last line of stdout, with a report next to it', async () => {
    const r = await run([
      '--quick',
      '--json',
      '--out',
      out,
      '--workflows',
      '2',
      '--warm',
      '1',
      '--kv-sessions',
      '4',
      '--kv-seconds',
      '0.3',
      '--loads',
      '0.5',
      '--load-seconds',
      '0.3',
      '--kills',
      '1',
      '--storage-delay-ms',
      '1',
    ]);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1); // with --json, the table goes to stderr
    const res = JSON.parse(lines[lines.length - 1]!) as BenchResult;
    expect(res.storage).toBe(process.env.DATABASE_URL ? 'postgres' : 'pglite');
    expect(res.storageDelayMs).toBe(1);
    expect(res.storageDelayModelled).toBe(true);
    const modes = ['none', 'speculative', 'durable'];
    for (const steps of [1, 2, 5, 10]) {
      for (const mode of modes) {
        const w = res.workflow.find((x) => x.steps === steps && x.mode === mode);
        expect(w, `workflow ${steps} ${mode}`).toMatchObject({ steps, mode, n: 2 });
        expect(typeof w!.p50Ms).toBe('number');
        expect(typeof w!.p99Ms).toBe('number');
      }
      for (const mode of ['speculative', 'durable']) {
        expect(
          res.workflowCommit.find((x) => x.steps === steps && x.mode === mode),
          `commit ${steps} ${mode}`,
        ).toMatchObject({ steps, mode, n: 2 });
      }
    }
    expect(res.kv.map((k) => k.mode)).toEqual(modes);
    for (const k of res.kv) for (const f of ['opsPerSec', 'p50Ms', 'p99Ms'] as const) expect(typeof k[f]).toBe('number');
    expect(res.kvLoad.map((k) => k.mode)).toEqual(modes);
    expect(res.recovery.kills).toBe(1);
    expect(typeof res.recovery.killToFirstCommitMs).toBe('number');
    expect(typeof res.recovery.rolledBackVersions).toBe('number');
    // The goals of issue 16: answer and commit against DBOS, kv overhead, recovery, durable against speculative.
    expect(res.goals.map((g) => g.goal.split(/[ ,(]/)[0])).toEqual(['DBOS', 'DBOS', 'kv', 'recovery', 'durable']);
    for (const g of res.goals) expect(g.met === null || typeof g.met === 'boolean').toBe(true);
    if (res.storage === 'postgres') {
      // DBOS Transact ran beside us, on the same server.
      expect(res.peersSkipped).toBeNull();
      expect(res.peers.map((p) => p.steps)).toEqual([1, 2, 5, 10]);
      for (const p of res.peers) expect(typeof p.p50Ms).toBe('number');
      expect(typeof res.goals[0]!.value).toBe('number');
    } else {
      expect(res.peersSkipped).toMatch(/PostgreSQL/);
      expect(res.goals[0]!.value).toBeNull();
    }
    expect(r.stderr).toContain('workflow latency');
    const files = readdirSync(out);
    const html = files.find((f) => f.endsWith('.html'));
    expect(html).toBeDefined();
    expect(existsSync(join(out, html!.replace(/\.html$/, '.json')))).toBe(true);
    const page = readFileSync(join(out, html!), 'utf8');
    expect(page).toContain('<svg');
    expect(page).toContain('modelled');
    expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 120_000);
});
