/**
 * Screenshots of every step of every tour, on a real server with real node processes, at 1280×800:
 * `npm run docs:screenshots` (writes docs/tours/<tour>-<step>.png and docs/tours/index.md). With
 * DSE_BASE_URL set it uses that server instead of starting one. Each question is answered with the
 * choice the protocol predicts, so the pictures show a graded answer from that run's events.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from '@playwright/test';
import { ROOT, startPlayground, stopPlayground } from '../playwright/server';

const RIGHT: Record<string, number> = { speculation: 0, kill: 1, stale: 1, sessions: 1, saga: 1, durable: 0 };
const TOURS = ['start', 'speculation', 'kill', 'stale', 'sessions', 'saga', 'durable'];
const OUT = join(ROOT, 'docs', 'tours');

async function waitReady(page: Page): Promise<'question' | 'next'> {
  const until = Date.now() + 120_000;
  for (;;) {
    const c = page.getByTestId('tour-choice-0');
    if ((await c.isVisible()) && (await c.isEnabled())) return 'question';
    if (await page.getByTestId('tour-next').isEnabled()) return 'next';
    if (Date.now() > until) throw new Error('the tour step did not get ready in 120 s');
    await page.waitForTimeout(200);
  }
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const external = process.env.DSE_BASE_URL;
  const server = external === undefined || external === '' ? await startPlayground() : null;
  const url = server?.url ?? external!;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  const index: string[] = [
    '# Tour screenshots',
    '',
    'Made by `npm run docs:screenshots` (scripts/tour-screenshots.ts) on a live cluster at 1280×800; each answer is graded from the events of that run.',
    '',
  ];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${url}/?pace=class`);
    await page.locator('[data-testid^="lane-"]').first().waitFor();
    await page.waitForTimeout(3000);
    await page.screenshot({ path: join(OUT, 'overview.png') });
    index.push('## The page at classroom pace', '', '![overview](overview.png)', '');
    for (const id of TOURS) {
      await page.getByTestId(`tour-start-${id}`).click();
      const title = (await page.locator('[data-testid="tour"] h2').textContent()) ?? id;
      index.push(`## ${title}`, '');
      for (let step = 1; step <= 10; step++) {
        const ready = await waitReady(page);
        let file = `${id}-${step}.png`;
        await page.mouse.move(0, 0);
        if (ready === 'question') {
          await page.screenshot({ path: join(OUT, `${id}-${step}-question.png`) });
          index.push(`Step ${step}, the question (the cluster is held):`, '', `![${id} step ${step} question](${id}-${step}-question.png)`, '');
          await page.getByTestId(`tour-choice-${RIGHT[id] ?? 0}`).check();
          await page.getByTestId('tour-answer').waitFor({ timeout: 120_000 });
          await waitReady(page);
          file = `${id}-${step}-answer.png`;
        }
        await page.screenshot({ path: join(OUT, file) });
        index.push(`Step ${step}${ready === 'question' ? ', the answer' : ''}:`, '', `![${id} step ${step}](${file})`, '');
        const next = page.getByTestId('tour-next');
        const label = await next.textContent();
        await next.click();
        if (label === 'finish') break;
      }
      await page.getByTestId('tour').waitFor({ state: 'hidden', timeout: 60_000 });
      process.stdout.write(`${id}: done\n`);
    }
    // The dependency graph and a rollback zoom, after the tours' kills.
    await page.getByTestId('tab-rollbacks').click();
    const rb = page.locator('.rb-list button').first();
    if (await rb.isVisible()) {
      await rb.click();
      await page.getByTestId('zoom-rollback').click();
      await page.waitForTimeout(800);
      await page.screenshot({ path: join(OUT, 'rollback-zoom.png') });
      index.push('## A rollback, zoomed: why-edges on the stage and in the graph', '', '![rollback zoom](rollback-zoom.png)', '');
    }
    writeFileSync(join(OUT, 'index.md'), `${index.join('\n')}\n`);
  } finally {
    await browser.close();
    if (server !== null) await stopPlayground(server.process.pid!, server.dataDir);
  }
}

await main();
