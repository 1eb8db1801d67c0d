import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { baseUrl, Playground } from './playground';

/**
 * Membership on the live cluster, as a person does it: "add node" makes a new member (the placement
 * version goes up, the new node holds units), its remove button drains it (the page says so, and the
 * version goes up again). The cluster is back to its four nodes after, for the tests that follow.
 */
test('add node: a new member with units and a newer placement; remove it: drained, the placement moves on', async ({ page }, info) => {
  test.setTimeout(120_000);
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  const version = async (): Promise<number> => Number((await page.getByTestId('placement-version').textContent())?.replace(/^v/, ''));
  await expect(page.getByTestId('placement-version')).toHaveText(/^v\d+$/);
  const before = await version();
  const lanesBefore = (await pg.summary()).lanes;

  let added: string | null = null;
  try {
    await pg.openSettings();
    await page.getByTestId('add-node').click();
    // The command answers once the node is a member and its units arrived: meanwhile the page says so.
    await expect(page.getByTestId('migration-banner')).toBeVisible();
    await pg.closeSettings();
    await pg.screenshot('adding a node');
    await expect(pg.lanes()).toHaveCount(lanesBefore.length + 1, { timeout: 60_000 });
    added = (await pg.summary()).lanes.find((id) => !lanesBefore.includes(id)) ?? null;
    expect(added).not.toBeNull();
    await expect(page.locator('.notice').filter({ hasText: `${added} joined` })).toBeVisible({ timeout: 60_000 });
    await expect.poll(version).toBeGreaterThan(before);
    const joinedAt = await version();
    // The hand-offs that brought its units are on the diagram as named arrows into its lane.
    const handoffs = page
      .locator(`[data-testid="message-labelled"][data-label^="hand-off v${joinedAt}:"]`)
      .filter({ hasText: new RegExp(`^hand-off v${joinedAt}: [1-9]\\d* units?: n\\d+ → ${added}`) });
    await expect.poll(() => handoffs.count(), { timeout: 30_000 }).toBeGreaterThan(0);

    await pg.openDrawer('nodes');
    await expect(page.getByTestId('placement-summary')).toContainText(`join ${added}`);
    // Its state, as its events tell it, holds units that are now its own.
    await expect.poll(async () => Number(await page.getByTestId(`units-${added!}`).textContent()), { timeout: 30_000 }).toBeGreaterThan(0);
    await expect(page.getByTestId('placement-summary')).toContainText(`to ${added}`);
    await expect(page.getByTestId(`head-units-${added}`)).toHaveAttribute('title', new RegExp(`^${added}: [1-9]\\d* units? of service state`));
    // A little after the hand-offs arrived, each panel tells what that change moved to and from its node.
    await expect(page.getByTestId(`moved-${added}`)).toContainText(/in v\d+: \+\d+ \/ −0 units/);
    await pg.screenshot('after add node');
    // The placement header and the units per node pass the same accessibility check as the rest.
    const axe = await new AxeBuilder({ page }).include('.drawer').include('.top').analyze();
    expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`)).toEqual([]);

    // Remove the running node: it drains (hands its units over), then stops.
    const node = added;
    // A drain can take a fraction of a second: note every text the banner shows meanwhile.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { __banner: string[] }).__banner = seen;
      new MutationObserver(() => {
        const t = document.querySelector('[data-testid="migration-banner"]')?.textContent;
        if (t !== undefined && t !== null && seen.at(-1) !== t) seen.push(t);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await page.getByTestId(`remove-${node}`).click();
    await expect(page.locator('.notice').filter({ hasText: `${node} drained` })).toBeVisible({ timeout: 60_000 });
    added = null;
    const banner = await page.evaluate(() => (window as unknown as { __banner: string[] }).__banner);
    expect(
      banner.some((t) => t.includes(`draining ${node}…`)),
      banner.join(' | '),
    ).toBe(true);
    await expect.poll(version).toBeGreaterThan(joinedAt);
    // The drain (version n) moved its units; the retire (n + 1), once it stopped, told the members what was left of it.
    await expect(page.getByTestId('placement-summary')).toContainText(`retire ${node}`);
    await expect(pg.lanes()).toHaveCount(lanesBefore.length, { timeout: 30_000 });
    await pg.screenshot('after remove');
  } finally {
    // Whatever failed, leave the cluster as it was for the tests that follow.
    if (added !== null) await page.request.delete(`${baseUrl()}/api/nodes/${added}`, { timeout: 60_000 }).catch(() => undefined);
  }
});
