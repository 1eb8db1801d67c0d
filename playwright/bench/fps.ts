/**
 * Browser benchmark (not a test): frames per second and page memory of the playground while a live
 * cluster of 8 nodes produces inspection events as fast as the workload drives it.
 *
 *   npx tsx playwright/bench/fps.ts [--seconds 60] [--rate 300] [--nodes 8] [--kind mixed] [--url http://…]
 *                                   [--sample 5] [--profile 10] [--no-minify] [--default-workload]
 *
 * `npm run bench:web` runs it with 32 nodes (DSE_LOCAL_NODES=32) at the server's default workload
 * (`--default-workload`: the workload is left as the server starts it) for one 10 s sample.
 *
 * `--rate` is the workload's rate (requests a second); the events a second the page actually received
 * are measured (the page's own count of applied events) and reported per sample and overall. Each
 * sample lasts `--sample` seconds and gives the frames drawn, the events received and the JS heap
 * (after a forced GC when the page allows it: --js-flags=--expose-gc). `--profile S` records a
 * Chromium CPU profile of S seconds (CDP Profiler) after the samples and prints the functions with
 * the most self time (the profile goes to bench-results/playground-profile.cpuprofile); `--no-minify`
 * builds the web app unminified so that the profile names the functions.
 *
 * Prints one JSON line and writes it (with the samples) to bench-results/playground-fps.json. Goals
 * from the issue: at least 30 frames per second at 2,000 events a second, and memory flat over time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
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
const sampleS = Number(arg('sample', '5'));
const profileS = Number(arg('profile', '0'));
const defaultWorkload = process.argv.includes('--default-workload');

async function api(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await r.json()) as unknown;
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(answer)}`);
  return answer;
}

interface Sample {
  atS: number;
  fps: number;
  eventsPerS: number;
  heapMB: number | null;
  longestFrameMs: number;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(q * (s.length - 1) + 0.5)))]!;
}
/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const load0 = loadavg();
const startedAt = new Date().toISOString();
const server =
  givenUrl === ''
    ? await startPlayground({ DSE_LOCAL_NODES: String(nodes) }, 120_000, process.argv.includes('--no-minify') ? { buildArgs: ['--minify', 'false'] } : {})
    : null;
const url = givenUrl !== '' ? givenUrl : server!.url;
try {
  if (server !== null) {
    // The server starts its nodes itself (DSE_LOCAL_NODES): wait until every one is up (32 node
    // processes take a while to start on a busy machine).
    const until = Date.now() + 300_000;
    for (;;) {
      const info = (await api(url, 'GET', '/api/cluster')) as { nodes: { status: string }[] };
      if (info.nodes.length >= nodes && info.nodes.every((n) => n.status === 'up')) break;
      if (Date.now() > until) {
        const by = new Map<string, number>();
        for (const n of info.nodes) by.set(n.status, (by.get(n.status) ?? 0) + 1);
        throw new Error(
          `after 5 minutes the cluster lists ${info.nodes.length} of the ${nodes} nodes asked for (${[...by].map(([s, c]) => `${c} ${s}`).join(', ')}); the server's node limit (limits.nodesMax) may be lower`,
        );
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  } else {
    const info = (await api(url, 'GET', '/api/cluster')) as { nodes: unknown[] };
    for (let i = info.nodes.length; i < nodes; i++) await api(url, 'POST', '/api/nodes', {});
  }
  const workload = defaultWorkload ? ((await api(url, 'GET', '/api/config')) as { workload: unknown }).workload : { kind, rate };
  if (!defaultWorkload) await api(url, 'POST', '/api/workload', workload);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-precise-memory-info',
      '--js-flags=--expose-gc',
    ],
  });
  // The page's Content-Security-Policy forbids eval, which string evaluation below needs (a string, as
  // tsx would add helpers to a function that the page does not have): bypass it for the measurement.
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, bypassCSP: true });
  await page.goto(`${url}/`);
  await page.waitForFunction('window.__dse !== undefined && window.__dse.summary().lanes.length > 0');
  await page.waitForTimeout(5000);
  // A string, not a function: tsx would add helpers the page does not have.
  const SAMPLE = `(async (ms) => {
    if (typeof window.gc === 'function') window.gc();
    const mem = performance.memory ? performance.memory.usedJSHeapSize : null;
    const e0 = window.__dse.summary().events;
    let frames = 0;
    let last = performance.now();
    let longest = 0;
    const t0 = last;
    await new Promise((resolve) => {
      function tick(now) {
        frames++;
        longest = Math.max(longest, now - last);
        last = now;
        if (now - t0 < ms) requestAnimationFrame(tick); else resolve();
      }
      requestAnimationFrame(tick);
    });
    const dt = (performance.now() - t0) / 1000;
    return { fps: frames / dt, eventsPerS: (window.__dse.summary().events - e0) / dt, heapMB: mem === null ? null : mem / 1e6, longestFrameMs: longest };
  })(${Math.round(sampleS * 1000)})`;
  const samples: Sample[] = [];
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    const s = await page.evaluate<Omit<Sample, 'atS'>>(SAMPLE);
    samples.push({
      atS: Math.round((Date.now() - start) / 1000),
      fps: round1(s.fps),
      eventsPerS: Math.round(s.eventsPerS),
      heapMB: s.heapMB === null ? null : round1(s.heapMB),
      longestFrameMs: Math.round(s.longestFrameMs),
    });
    process.stderr.write(`${JSON.stringify(samples.at(-1))}\n`);
  }
  let profileTop: { fn: string; url: string; selfMs: number; pct: number }[] | undefined;
  if (profileS > 0) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
    await cdp.send('Profiler.start');
    await page.waitForTimeout(profileS * 1000);
    const { profile } = await cdp.send('Profiler.stop');
    mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench-results', 'playground-profile.cpuprofile'), JSON.stringify(profile));
    const self = new Map<number, number>();
    const deltas = profile.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0)));
    const byFn = new Map<string, { fn: string; url: string; us: number }>();
    let total = 0;
    for (const n of profile.nodes) {
      const us = self.get(n.id) ?? 0;
      total += us;
      const f = n.callFrame;
      const key = `${f.functionName}|${f.url}|${f.lineNumber}|${f.columnNumber}`;
      const e = byFn.get(key) ?? { fn: `${f.functionName || '(anonymous)'}:${f.lineNumber + 1}:${f.columnNumber + 1}`, url: f.url.replace(/^.*\//, ''), us: 0 };
      e.us += us;
      byFn.set(key, e);
    }
    profileTop = [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, 25)
      .map((e) => ({ fn: e.fn, url: e.url, selfMs: Math.round(e.us / 1000), pct: round1((100 * e.us) / Math.max(1, total)) }));
    for (const p of profileTop) process.stderr.write(`${String(p.pct).padStart(5)}%  ${String(p.selfMs).padStart(6)} ms  ${p.fn}  ${p.url}\n`);
  }
  await browser.close();
  const fps = samples.map((s) => s.fps);
  const heaps = samples.filter((s) => s.heapMB !== null) as (Sample & { heapMB: number })[];
  const minute = (from: number, to: number): number | null => {
    const xs = heaps.filter((s) => s.atS > from && s.atS <= to).map((s) => s.heapMB);
    return xs.length === 0 ? null : round1(xs.reduce((a, b) => a + b, 0) / xs.length);
  };
  const lastS = samples.at(-1)?.atS ?? 0;
  // The heap's slope over the second half of the run (the first minutes fill the model's bounded history).
  const late = heaps.filter((s) => s.atS > lastS / 2);
  const result = {
    date: startedAt,
    loadAverage: load0.map((x) => round1(x)),
    nodes,
    workload,
    seconds,
    sampleSeconds: sampleS,
    eventsPerS: Math.round(samples.reduce((a, s) => a + s.eventsPerS * sampleS, 0) / Math.max(1, samples.length * sampleS)),
    eventsPerSMin: Math.min(...samples.map((s) => s.eventsPerS)),
    fpsMedian: round1(quantile(fps, 0.5)),
    fpsP10: round1(quantile(fps, 0.1)),
    fpsMin: round1(Math.min(...fps)),
    longestFrameMsMax: Math.max(...samples.map((s) => s.longestFrameMs)),
    heapMBFirstMinute: minute(0, 60),
    heapMBLastMinute: minute(lastS - 60, lastS),
    heapMBMax: heaps.length > 0 ? Math.max(...heaps.map((s) => s.heapMB)) : null,
    heapMBPerMin:
      Math.round(
        slope(
          heaps.map((s) => s.atS / 60),
          heaps.map((s) => s.heapMB),
        ) * 100,
      ) / 100,
    heapMBPerMinSecondHalf:
      Math.round(
        slope(
          late.map((s) => s.atS / 60),
          late.map((s) => s.heapMB),
        ) * 100,
      ) / 100,
    loadAverageEnd: loadavg().map((x) => round1(x)),
  };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'playground-fps.json'), JSON.stringify({ result, samples, profileTop }, null, 1));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  if (server !== null) await stopPlayground(server.process.pid!, server.dataDir);
}
