import { expect, test, type Page } from '@playwright/test';
import { baseUrl, Playground } from './playground';

/**
 * The service scenarios: pick each one, see its records appear in the Service state panel and then
 * become committed (the committed prefix of a log or topic reaches what was there before; a key's
 * write and a workflow seen speculative or running end up committed). One live cluster, in order.
 */
test.describe.configure({ mode: 'serial' });

const attr = async (page: Page, selector: string, name: string): Promise<number> => Number((await page.locator(selector).first().getAttribute(name)) ?? NaN);

let restore: { kind: string; rate: number } | null = null;

test.afterAll(async ({ browser }) => {
  // Leave the shared server running the workload it had (the other specs expect the replicated kv).
  if (restore === null) return;
  const page = await browser.newPage();
  await page.goto(`${process.env.DSE_BASE_URL}/`);
  await page.getByTestId('settings').click();
  await expect(page.getByTestId('workload-kind')).toBeVisible();
  await page.getByTestId('workload-kind').selectOption(restore.kind);
  await page.getByTestId('workload-rate').fill(String(restore.rate));
  await page.getByRole('button', { name: 'apply' }).click();
  await page.close();
});

async function open(page: Page, info: Parameters<Parameters<typeof test>[2]>[1], scenario: string): Promise<Playground> {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await pg.openSettings();
  if (restore === null) {
    const kind = await page.getByTestId('workload-kind').inputValue();
    const rate = Number(await page.getByTestId('workload-rate').inputValue());
    restore = { kind, rate };
  }
  await page.getByTestId('scenario').selectOption(scenario);
  await expect(page.getByTestId('scenario')).toHaveValue(scenario);
  await pg.closeSettings();
  await pg.openDrawer('services');
  await expect(page.getByTestId('service-panel')).toHaveAttribute('data-service', scenario);
  return pg;
}

test('write-ahead log: appends appear by position and the committed prefix catches up', async ({ page }, info) => {
  const pg = await open(page, info, 'wal');
  const log = '[data-testid="wal-log"]';
  await expect(page.getByTestId('wal-entry').first()).toBeVisible();
  const logName = await page.locator(log).first().getAttribute('data-log');
  const seen = await attr(page, `${log}[data-log="${logName}"]`, 'data-length');
  expect(seen).toBeGreaterThan(0);
  await expect.poll(() => attr(page, `${log}[data-log="${logName}"]`, 'data-committed-length')).toBeGreaterThanOrEqual(seen);
  await expect(page.locator('[data-testid="wal-entry"][data-state="committed"]').first()).toBeVisible();
  await pg.screenshot('service wal');
});

test('key-value store: a write seen is committed later', async ({ page }, info) => {
  const pg = await open(page, info, 'kvstore');
  const first = page.getByTestId('kv-key').first();
  await expect(first).toBeVisible();
  const key = (await first.getAttribute('data-key'))!;
  const node = (await first.getAttribute('data-node'))!;
  const version = Number(await first.getAttribute('data-version'));
  const row = page.locator(`[data-testid="kv-key"][data-key="${key}"][data-node="${node}"]`);
  // Committed at that write's version or a later one (the key may be written again meanwhile).
  await expect
    .poll(async () => ((await row.getAttribute('data-state')) === 'committed' ? Number(await row.getAttribute('data-version')) : -1))
    .toBeGreaterThanOrEqual(version);
  await pg.screenshot('service kv store');
});

test('event broker: events appear in their topics, get committed, and consumer groups move', async ({ page }, info) => {
  const pg = await open(page, info, 'broker');
  const topic = '[data-testid="broker-topic"]';
  await expect(page.getByTestId('broker-event').first()).toBeVisible();
  const name = await page.locator(topic).first().getAttribute('data-topic');
  const seen = await attr(page, `${topic}[data-topic="${name}"]`, 'data-length');
  expect(seen).toBeGreaterThan(0);
  await expect.poll(() => attr(page, `${topic}[data-topic="${name}"]`, 'data-committed-length')).toBeGreaterThanOrEqual(seen);
  await expect(page.locator('[data-testid="broker-event"][data-state="committed"]').first()).toBeVisible();
  await expect(page.getByTestId('broker-producer').first()).toBeVisible();
  await expect(page.getByTestId('broker-group').first()).toBeVisible();
  await pg.screenshot('service broker');
});

test('workflows: workflows appear with their steps, and finished ones get committed', async ({ page }, info) => {
  const pg = await open(page, info, 'workflow');
  const summary = page.getByTestId('workflow-summary');
  await expect(page.locator('[data-workflow]').first()).toBeVisible();
  await expect(page.getByTestId('workflow-step').first()).toBeVisible();
  const before = Number(await summary.getAttribute('data-finished-committed'));
  await expect.poll(async () => Number(await summary.getAttribute('data-finished-committed'))).toBeGreaterThan(before);
  await expect(page.locator('[data-workflow][data-status="completed"][data-state="committed"]').first()).toBeVisible();
  await expect(page.getByTestId('stock-item').first()).toBeVisible();
  await pg.screenshot('service workflows');
});

test('after a kill of a log’s node and its recovery, the panel shows what the node really holds', async ({ page }, info) => {
  const pg = await open(page, info, 'wal');
  const logs = page.getByTestId('wal-log');
  await expect(logs.first()).toBeVisible();
  const log = (await logs.first().getAttribute('data-log'))!;
  const node = (await logs.first().getAttribute('data-node'))!;
  const box = page.locator(`[data-testid="wal-log"][data-log="${log}"][data-node="${node}"]`);
  const worldLine = await pg.worldLine();
  await page.getByTestId(`kill-${node}`).click();
  await expect(pg.status(node)).toHaveText('down');
  await expect.poll(() => pg.worldLine()).toBeGreaterThan(worldLine);
  // Stop the load so that the state settles, then bring the node back.
  await pg.openSettings();
  await page.getByTestId('workload-rate').fill('0');
  await page.getByRole('button', { name: 'apply' }).click();
  await pg.closeSettings();
  await page.getByTestId(`restart-${node}`).click();
  await expect(pg.status(node)).toHaveText('up');
  // The node's own answer (a speculative read: its current state). Requests held while the node was
  // down reach it after the restart, so the log may still grow for a moment: wait until the panel
  // shows exactly what the node answers, all of it committed.
  const truth = async () => {
    const res = await page.request.post(`${baseUrl()}/api/service`, { data: { svc: 'wal', payload: { op: 'read', log, from: 0, max: 1000 }, node } });
    expect(res.ok()).toBe(true);
    return ((await res.json()) as { result: { length: number } }).result.length;
  };
  await expect
    .poll(async () => {
      const held = await truth();
      const shown = Number(await box.getAttribute('data-length'));
      const committed = Number(await box.getAttribute('data-committed-length'));
      return held > 0 && shown === held && committed === held;
    })
    .toBe(true);
  await pg.screenshot('service wal after a kill and recovery');
  const length = Number(await box.getAttribute('data-length'));
  const lastShown = Number(await box.getByTestId('wal-entry').last().getAttribute('data-pos'));
  expect(lastShown).toBe(length - 1);
});
