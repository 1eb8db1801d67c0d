import { expect, test, type Page } from '@playwright/test';
import { Playground } from './playground';

// The tours drive the one live cluster of the run (kill, restart, workload): one after the other.
test.describe.configure({ mode: 'serial' });

/** Picks the first choice once the prediction is offered and waits for the answer from the events. */
async function predictAndReveal(page: Page): Promise<string> {
  await expect(page.getByTestId('tour-choice-0')).toBeEnabled({ timeout: 30_000 });
  await page.getByTestId('tour-choice-0').check();
  const answer = page.getByTestId('tour-answer');
  await expect(answer).toBeVisible({ timeout: 30_000 });
  return (await answer.textContent()) ?? '';
}

async function finish(page: Page): Promise<void> {
  for (;;) {
    const next = page.getByTestId('tour-next');
    await expect(next).toBeEnabled({ timeout: 30_000 });
    const label = await next.textContent();
    await next.click();
    if (label === 'finish') break;
  }
  await expect(page.getByTestId('tour')).toBeHidden({ timeout: 30_000 });
  await expect(page.getByTestId('live-state')).toHaveText('running');
}

test('tour "speculation": pauses on uncommitted versions, then shows from the events that they committed', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await page.getByTestId('tour-start-speculation').click();
  await expect(page.getByTestId('tour-step')).toContainText('speculative');
  await expect(page.getByTestId('tour-facts')).toContainText('Uncommitted versions right now', { timeout: 40_000 });
  await expect(page.getByTestId('live-state')).toHaveText('paused');
  await pg.screenshot('tour speculation: predict');
  const answer = await predictAndReveal(page);
  expect(answer).toMatch(/Of the \d+ versions: \d+ committed, \d+ rolled back, \d+ still uncommitted/);
  // With no failure the watched versions commit: the events bear out the first choice.
  await expect(page.getByTestId('tour-answer')).toHaveAttribute('data-correct', '0');
  await pg.screenshot('tour speculation: answer');
  await finish(page);
});

test('tour "kill": predicts the rollback of a kill, shows the recovery the events reported, restarts the node', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  const worldLine = await pg.worldLine();
  await page.getByTestId('tour-start-kill').click();
  await expect(page.getByTestId('tour-facts')).toContainText('n2 has', { timeout: 40_000 });
  await expect(page.getByTestId('live-state')).toHaveText('paused');
  await expect(page.getByTestId('kill-preview')).toContainText('If n2 died now');
  await pg.screenshot('tour kill: predict');
  const answer = await predictAndReveal(page);
  expect(answer).toMatch(/World-line \d+: the recovery discarded \d+ versions/);
  expect(await pg.worldLine()).toBeGreaterThan(worldLine);
  await expect(pg.status('n2')).toHaveText('down');
  await pg.screenshot('tour kill: answer');
  await page.getByTestId('tour-next').click();
  await expect(page.getByTestId('tour-facts')).toContainText('n2 is up again', { timeout: 40_000 });
  await expect(pg.status('n2')).toHaveText('up');
  await finish(page);
});

test('tour "stale": messages in flight across a kill, their fate from the events; the network is restored after', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await page.getByTestId('tour-start-stale').click();
  await expect(page.getByTestId('tour-facts')).toContainText('messages between nodes are in flight', { timeout: 40_000 });
  await expect(page.getByTestId('live-state')).toHaveText('paused');
  const answer = await predictAndReveal(page);
  expect(answer).toMatch(/Of the \d+ messages of world-line \d+ still on their way when world-line \d+ began: \d+ rejected as stale, \d+ delivered/);
  await pg.screenshot('tour stale: answer');
  await finish(page);
  await expect(pg.status('n2')).toHaveText('up', { timeout: 30_000 });
  const delay = () => page.evaluate(() => (window as unknown as { __dse: { model(): { config: { networkDelayMs: number } | null } } }).__dse.model().config?.networkDelayMs);
  await expect.poll(delay).toBe(0);
});

test('tour "durable": latency measured in speculative mode, then in durable mode; the mode is put back after', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await page.getByTestId('tour-start-durable').click();
  await expect(page.getByTestId('tour-facts')).toContainText('Speculative: p50', { timeout: 40_000 });
  const answer = await predictAndReveal(page);
  expect(answer).toMatch(/speculative [\d.]+ \/ [\d.]+ ms \(\d+\), durable [\d.]+ \/ [\d.]+ ms \(\d+\)/);
  await pg.screenshot('tour durable: answer');
  await finish(page);
  await expect(page.locator('.pill', { hasText: 'mode speculative' })).toBeVisible({ timeout: 30_000 });
});
