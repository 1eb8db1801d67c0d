import { expect, test } from '@playwright/test';
import { Playground } from './playground';

test('latency race: one round per mode on the same cluster, percentiles and distributions from the answers', async ({ page }, info) => {
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  await pg.openDrawer('race');
  await page.getByTestId('race-toggle').click();
  await page.getByTestId('race-round-seconds').fill('3');
  await page.getByTestId('race-rounds').fill('1');
  await page.getByTestId('race-start').click();
  await expect(page.getByTestId('race-status')).toContainText('durable', { timeout: 30_000 });
  await expect(page.getByTestId('race-status')).toContainText('done', { timeout: 40_000 });
  for (const mode of ['speculative', 'durable']) {
    await expect.poll(async () => Number(await page.getByTestId(`race-${mode}`).getAttribute('data-count'))).toBeGreaterThan(0);
    await expect(page.getByTestId(`race-hist-${mode}`).locator('rect').first()).toBeAttached();
  }
  await pg.screenshot('latency race');
  // The race puts the cluster back in the mode it found it in.
  await expect(page.getByTestId('mode')).toHaveText('speculative', { timeout: 30_000 });
});
