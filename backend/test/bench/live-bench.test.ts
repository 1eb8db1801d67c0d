import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slope } from '../../src/bench/live/memory';
import type { ScaleResult, SoakResult } from '../../src/bench/report/live-types';
import { COMPILED, entryPoint } from '../../src/storage/entry-points';

/**
 * The build (`npm run build`, what `npm start` runs) and the live-cluster benchmarks run from it:
 * node processes started from compiled JavaScript with no TypeScript loader. Smoke runs with tiny
 * counts; no figure is asserted, only that the programs run and say what they promise.
 */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILD = 'backend/dist-test';
const out = mkdtempSync(join(tmpdir(), 'dse-live-bench-'));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
const lastJson = (stdout: string): unknown => JSON.parse(stdout.trim().split('\n').at(-1)!);

beforeAll(async () => {
  const r = await run(['scripts/build-backend.mjs', '--out', BUILD]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(() => {
  rmSync(join(REPO_ROOT, BUILD), { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

describe('entry points', () => {
  it('from the sources, a program is its .ts file run with tsx', () => {
    expect(COMPILED).toBe(false);
    const e = entryPoint('live/node-main');
    expect(e.file).toBe(join(REPO_ROOT, 'backend/src/live/node-main.ts'));
    expect(e.nodeArgs).toEqual(['--import', 'tsx']);
  });

  it('the build has a bundle for every program, and the node program runs on plain Node', async () => {
    for (const p of ['server/main', 'live/node-main', 'server/sim-worker', 'storage/pglite-worker', 'bench/scale', 'bench/soak'])
      expect(existsSync(join(REPO_ROOT, BUILD, `${p}.js`)), p).toBe(true);
    const r = await run([join(BUILD, 'live/node-main.js'), '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: npm run node');
  });

  it('a bad option of bench:soak and bench:scale is one line and status 2', async () => {
    for (const prog of ['bench/soak.js', 'bench/scale.js']) {
      const r = await run([join(BUILD, prog), '--no-such-option']);
      expect(r.code, prog).toBe(2);
      expect(r.stderr.split('\n')[0]).toContain('no-such-option');
    }
  });
});

describe('slope', () => {
  it('is the least-squares slope, null without spread', () => {
    expect(
      slope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBeCloseTo(2);
    expect(
      slope([
        [0, 5],
        [1, 4],
        [2, 6],
      ]),
    ).toBeCloseTo(0.5);
    expect(slope([[1, 1]])).toBeNull();
    expect(
      slope([
        [1, 1],
        [1, 2],
      ]),
    ).toBeNull();
  });
});

describe('the live benchmarks from the build (tiny runs)', () => {
  it('bench:soak samples memory and storage and kills nodes, from compiled node processes', async () => {
    const r = await run([join(BUILD, 'bench/soak.js'), '--minutes', '0.3', '--nodes', '2', '--kill-every-s', '6', '--sample-s', '2', '--out', out, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const res = lastJson(r.stdout) as SoakResult;
    expect(res.kind).toBe('soak');
    expect(res.compiled).toBe(true);
    expect(res.samples.length).toBeGreaterThanOrEqual(3);
    expect(res.kills.length).toBeGreaterThanOrEqual(1);
    // n1 is spare: never killed, sampled throughout.
    expect(res.kills.every((k) => k.victim !== 'n1')).toBe(true);
    expect(res.samples.every((s) => typeof s.nodes.n1 === 'number' && s.nodes.n1 > 0)).toBe(true);
    expect(res.samples.at(-1)!.rows).toBeGreaterThan(0);
    expect(existsSync(join(out, `soak-pglite-${res.startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z')}.html`))).toBe(true);
  }, 300_000);

  it('bench:scale measures each size', async () => {
    const r = await run([join(BUILD, 'bench/scale.js'), '--nodes', '2,3', '--settle-s', '1', '--kv-seconds', '0.5', '--kills', '1', '--out', out, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const res = lastJson(r.stdout) as ScaleResult;
    expect(res.kind).toBe('scale');
    expect(res.compiled).toBe(true);
    expect(res.rows.map((x) => x.nodes)).toEqual([2, 3]);
    for (const row of res.rows) {
      expect(row.nodeRssMb.length).toBe(row.nodes);
      expect(row.serverIdle.rssMb).toBeGreaterThan(0);
      expect(row.recovery.kills).toBe(1);
    }
  }, 300_000);
});
