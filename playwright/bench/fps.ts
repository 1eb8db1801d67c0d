/**
 * Browser benchmark (not a test): frames per second and page memory of the playground while a live
 * cluster of 8 nodes produces inspection events as fast as the workload drives it.
 *
 *   npx tsx playwright/bench/fps.ts [--seconds 60] [--rate 300] [--nodes 8] [--kind mixed] [--url http://…]
 *
 * Prints one JSON line and writes it to bench-results/playground-fps.json. Goals from the issue:
 * at least 30 frames per second at 2,000 events a second, and memory flat over time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '@playwright/test';
import { ROOT, startPlayground, stopPlayground } from '../server';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const seconds = Number(arg('seconds', '60'));
const rate = Number(arg('rate', '300'));
const nodes = Number(arg('nodes', '8'));
const kind = arg('kind', 'mixed');
const givenUrl = arg('url', '');

async function api(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return r.json();
}

const server = givenUrl === '' ? await startPlayground() : null;
const url = givenUrl !== '' ? givenUrl : server!.url;
try {
  const info = (await api(url, 'GET', '/api/cluster')) as { nodes: unknown[] };
  for (let i = info.nodes.length; i < nodes; i++) await api(url, 'POST', '/api/nodes', {});
  await api(url, 'POST', '/api/workload', { kind, rate });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${url}/`);
  await page.waitForFunction('window.__dse !== undefined && window.__dse.summary().lanes.length > 0');
  await page.waitForTimeout(5000);
  // A string, not a function: tsx would add helpers the page does not have.
  const SAMPLE = `(async (ms) => {
    const e0 = window.__dse.summary().events;
    let frames = 0;
    const t0 = performance.now();
    await new Promise((resolve) => {
      function tick() { frames++; if (performance.now() - t0 < ms) requestAnimationFrame(tick); else resolve(); }
      requestAnimationFrame(tick);
    });
    const dt = (performance.now() - t0) / 1000;
    const mem = performance.memory ? performance.memory.usedJSHeapSize : null;
    return { fps: frames / dt, eventsPerS: (window.__dse.summary().events - e0) / dt, heapMB: mem === null ? null : mem / 1e6 };
  })(5000)`;
  const sample = (): Promise<{ fps: number; eventsPerS: number; heapMB: number | null }> => page.evaluate(SAMPLE);
  const samples: { atS: number; fps: number; eventsPerS: number; heapMB: number | null }[] = [];
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    const s = await sample();
    samples.push({ atS: Math.round((Date.now() - start) / 1000), ...s });
    process.stderr.write(`${JSON.stringify(samples.at(-1))}\n`);
  }
  await browser.close();
  const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const heaps = samples.map((s) => s.heapMB).filter((h): h is number => h !== null);
  const result = {
    nodes,
    workload: { kind, rate },
    seconds,
    fps: Math.round(avg(samples.map((s) => s.fps)) * 10) / 10,
    fpsMin: Math.round(Math.min(...samples.map((s) => s.fps)) * 10) / 10,
    eventsPerS: Math.round(avg(samples.map((s) => s.eventsPerS))),
    heapMBFirst: heaps[0] ?? null,
    heapMBLast: heaps.at(-1) ?? null,
    heapMBMax: heaps.length > 0 ? Math.max(...heaps) : null,
  };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'playground-fps.json'), JSON.stringify({ result, samples }, null, 1));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  if (server !== null) await stopPlayground(server.process.pid!, server.dataDir);
}
