import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { Playground } from './playground';

// One live cluster for the file: the steps run in order, as a person would do them.
test.describe.configure({ mode: 'serial' });

test('the page loads with 4 lanes and the cut line moves as the workload commits', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  for (const n of ['n1', 'n2', 'n3', 'n4']) await expect(pg.status(n)).toHaveText('up');
  await expect(page.getByTestId('world-line')).toHaveText(/^\d+$/);
  const before = await pg.cutTotal();
  await pg.waitForCutAbove(before);
  await pg.screenshot('loaded');
});

test('kill: the node goes down, the world-line rises, versions roll back; restart: the cut moves again', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.status('n2')).toHaveText('up');
  await pg.waitForCutAbove(0);
  const worldLine = await pg.worldLine();

  await page.getByTestId('kill-n2').hover();
  await expect(page.getByTestId('kill-preview')).toContainText('If n2 died now');
  await pg.screenshot('kill preview');

  await page.getByTestId('kill-n2').click();
  await expect(pg.status('n2')).toHaveText('down');
  await expect.poll(() => pg.worldLine()).toBeGreaterThan(worldLine);
  await expect.poll(() => pg.rolledBack().count()).toBeGreaterThan(0);
  await pg.screenshot('after kill');

  await page.getByTestId('tab-rollbacks').click();
  await page.locator('.rb-list button').first().click();
  await expect(page.getByTestId('why-view')).toContainText('n2');
  await pg.screenshot('why the versions rolled back');

  const cutAfterKill = await pg.cutTotal();
  await page.getByTestId('restart-n2').click();
  await expect(pg.status('n2')).toHaveText('up');
  await pg.waitForCutAbove(cutAfterKill);
  await expect.poll(async () => (await pg.summary()).cut.n2 ?? 0).toBeGreaterThan(0);
  await pg.screenshot('after restart');
});

test('a keyboard shortcut pauses live updates, and ? shows the shortcuts', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await page.locator('body').press('?');
  await expect(page.getByTestId('help')).toBeVisible();
  await pg.screenshot('help overlay');
  await page.locator('body').press('Escape');
  await expect(page.getByTestId('help')).toBeHidden();
  await page.locator('body').press(' ');
  await expect(page.getByTestId('live-state')).toHaveText('paused');
  const frozen = await pg.summary();
  // Live events keep arriving (the cut moves in the server) but the paused view does not change.
  await page.waitForTimeout(1500);
  expect((await pg.summary()).events).toBe(frozen.events);
  await page.locator('body').press(' ');
  await expect(page.getByTestId('live-state')).toHaveText('running');
  await page.locator('body').press('ArrowLeft');
  await expect(page.getByTestId('selected-version')).toContainText(/n1 v\d+/);
  await page.emulateMedia({ reducedMotion: 'reduce' });
  await expect(page.locator('.app')).toHaveClass(/reduce-motion/);
  await expect.poll(async () => (await pg.summary()).events).toBeGreaterThan(frozen.events);
});

test('export then import round-trips the trace', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await pg.waitForCutAbove(0);
  await page.getByTestId('pause').click();
  await expect(page.getByTestId('live-state')).toHaveText('paused');
  const exported = await pg.summary();
  const rolledBackShown = await pg.rolledBack().count();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export').click()]);
  const file = info.outputPath('trace.json');
  await download.saveAs(file);
  const trace = JSON.parse(readFileSync(file, 'utf8')) as { format: string; events: unknown[] };
  expect(trace.format).toBe('dse-trace');
  expect(trace.events).toHaveLength(exported.events);

  await page.getByTestId('import-file').setInputFiles(file);
  await expect(page.getByTestId('connection')).toContainText('replay');
  const imported = await pg.summary();
  expect(imported.lanes).toEqual(exported.lanes);
  expect(imported.worldLine).toBe(exported.worldLine);
  expect(imported.events).toBe(exported.events);
  expect(imported.rolledBack).toBe(exported.rolledBack);
  expect(imported.cut).toEqual(exported.cut);
  await expect(page.getByTestId('world-line')).toHaveText(String(exported.worldLine));
  await expect(pg.rolledBack()).toHaveCount(rolledBackShown);
  await pg.screenshot('imported trace');
});

test('a simulation URL replays the same run twice', async ({ page }, info) => {
  const pg = new Playground(page, info);
  const runOnce = async () => {
    await pg.open('?sim=5&mode=speculative&faults=1&nodes=4&speed=end');
    await expect(page.getByTestId('replay-position')).toHaveText(/^(\d+) \/ \1$/, { timeout: 60_000 });
    const pos = await page.getByTestId('replay-position').textContent();
    return { pos, summary: await pg.summary(), rolledBackShown: await pg.rolledBack().count() };
  };
  const first = await runOnce();
  await pg.screenshot('simulation seed 5');
  const second = await runOnce();
  expect(first.summary.events).toBeGreaterThan(0);
  expect(second).toEqual(first);
});
