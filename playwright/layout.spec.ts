import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { Playground } from './playground';

// One live cluster: these run one after the other.
test.describe.configure({ mode: 'serial' });

const SIM = '?sim=5&mode=speculative&recovery=precise&faults=1&nodes=4';

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

async function rect(page: Page, testId: string): Promise<Rect> {
  const b = await page.getByTestId(testId).boundingBox();
  if (b === null) throw new Error(`${testId} is not on the page`);
  return b;
}

const inView = (r: Rect, w: number, h: number): boolean => r.x >= 0 && r.y >= 0 && r.x + r.width <= w + 0.5 && r.y + r.height <= h + 0.5;

/** Boxes of the world-line labels: no two may overlap. */
async function labelOverlaps(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const boxes = [...document.querySelectorAll('[data-testid="world-line-label"]')].map((e) => ({ r: e.getBoundingClientRect(), t: e.textContent ?? '' }));
    const out: string[] = [];
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i]!.r;
        const b = boxes[j]!.r;
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push(`${boxes[i]!.t} / ${boxes[j]!.t}`);
      }
    return out;
  });
}

/** The smallest font size among the stage's labels (lane names, world-lines, time ticks, version numbers). */
async function smallestStageLabel(page: Page): Promise<number> {
  return page.evaluate(() => {
    const els = document.querySelectorAll(
      '[data-testid="space-time"] .lane-label, [data-testid="space-time"] .wl-label, [data-testid="space-time"] .tick text, [data-testid="space-time"] .vlabel, [data-testid="space-time"] .lane-status',
    );
    let min = Infinity;
    for (const e of els) min = Math.min(min, parseFloat(getComputedStyle(e).fontSize));
    return min;
  });
}

for (const [w, h] of [
  [1280, 800],
  [1920, 1080],
] as const) {
  test(`layout at ${w}×${h}: the diagram is the stage (≥ half the height), the tour beside it, nothing scrolls, labels readable`, async ({ page }, info) => {
    await page.setViewportSize({ width: w, height: h });
    const pg = new Playground(page, info);
    await pg.open();
    await expect(pg.lanes()).toHaveCount(4);
    const stage = await rect(page, 'space-time');
    expect(stage.height).toBeGreaterThanOrEqual(h / 2);
    // Lanes share the stage: four lanes take most of its height.
    const lanes = await page.evaluate(() => [...document.querySelectorAll('[data-testid^="lane-"] .lane-head')].map((e) => e.getBoundingClientRect().height));
    expect(lanes.reduce((a, b) => a + b, 0)).toBeGreaterThan(stage.height * 0.5);
    expect(await smallestStageLabel(page)).toBeGreaterThanOrEqual(14);
    await page.getByTestId('tour-start-start').click();
    await expect(page.getByTestId('tour-next')).toBeEnabled({ timeout: 60_000 });
    const tour = await rect(page, 'tour');
    const stage2 = await rect(page, 'space-time');
    expect(inView(tour, w, h), JSON.stringify(tour)).toBe(true);
    expect(inView(stage2, w, h), JSON.stringify(stage2)).toBe(true);
    expect(stage2.height).toBeGreaterThanOrEqual(h / 2);
    // Side by side.
    expect(tour.x).toBeGreaterThanOrEqual(stage2.x + stage2.width - 1);
    // The drawer open still leaves the stage at least half the height.
    await pg.openDrawer('graph');
    expect((await rect(page, 'space-time')).height).toBeGreaterThanOrEqual(h / 2);
    expect(await page.evaluate(() => document.scrollingElement!.scrollHeight <= window.innerHeight + 1)).toBe(true);
    await pg.screenshot(`layout ${w}x${h}`);
    await page.getByTestId('tour-close').click();
    await expect(page.getByTestId('tour')).toBeHidden({ timeout: 60_000 });
  });
}

test('a simulation replay opens with the whole run in view, world-line labels never overlap, a request’s path and the graph’s edges tell what made them', async ({
  page,
}, info) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  const pg = new Playground(page, info);
  await pg.open(`${SIM}&speed=0.01`);
  await expect(page.getByTestId('replay-position')).toHaveText(/^\d+ \/ [1-9]\d*$/, { timeout: 60_000 });
  // Playing slowly from the start, the axis already spans the whole run.
  const span = await page.evaluate(() => {
    const el = document.querySelector('.spacetime')!;
    const m = (window as unknown as { __dse: { model(): { firstT: number | null } } }).__dse.model();
    return { start: Number(el.getAttribute('data-domain-start')), end: Number(el.getAttribute('data-domain-end')), first: m.firstT };
  });
  await page.getByTestId('replay-end').click();
  const lastT = await page.evaluate(() => (window as unknown as { __dse: { model(): { lastT: number } } }).__dse.model().lastT);
  expect(span.end).toBeCloseTo(lastT, 0);
  expect(span.start).toBeLessThanOrEqual(span.first ?? span.start);
  // Seed 5 kills nodes: several world-lines, and their labels stack instead of colliding.
  await expect.poll(() => page.getByTestId('world-line-label').count()).toBeGreaterThan(2);
  expect(await labelOverlaps(page)).toEqual([]);
  // Drill-down: a client request's path.
  await page.getByTestId('request-mark').last().click();
  await expect(page.getByTestId('inspector-request')).toContainText(/applied in|no arrival/);
  await expect(page.getByTestId('inspector-request')).toContainText(/answered speculatively|rolled back|no answer/);
  await pg.screenshot('request path');
  // The graph: edges with arrowheads, each naming what created it.
  await pg.openDrawer('graph');
  const edges = page.getByTestId('dep-edge');
  await expect.poll(() => edges.count()).toBeGreaterThan(0);
  const titles = await edges.locator('title').allTextContents();
  expect(titles.some((t) => /created by the (node-to-node message|client request) \S+/.test(t) || /carried in a client's dependency set/.test(t))).toBe(true);
  expect(await edges.first().locator('path.dep-edge').getAttribute('marker-end')).toMatch(/url\(#dep-arrow/);
  await pg.screenshot('dependency graph');
});

test('a shared URL reproduces the view: the simulation, the replay position and the selection', async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  const pg = new Playground(page, info);
  await pg.open(`${SIM}&speed=end`);
  await expect(page.getByTestId('replay-position')).toHaveText(/^(\d+) \/ \1$/, { timeout: 60_000 });
  // Go back in time with the scrubber, then select a version.
  const total = Number((await page.getByTestId('replay-position').textContent())!.split(' / ')[1]);
  const at = Math.floor(total * 0.6);
  await page.getByTestId('replay-scrubber').fill(String(at));
  await expect(page.getByTestId('replay-position')).toHaveText(`${at} / ${total}`);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press('ArrowLeft');
  const selected = (await page.getByTestId('inspector-version').locator('h3').textContent())!;
  await expect.poll(() => page.url()).toContain(`at=${at}`);
  await expect.poll(() => page.url()).toContain('sel=');
  const url = page.url();
  const other = await page.context().newPage();
  await other.setViewportSize({ width: 1280, height: 800 });
  await other.goto(url);
  await expect(other.getByTestId('replay-position')).toHaveText(`${at} / ${total}`, { timeout: 60_000 });
  await expect(other.getByTestId('inspector-version').locator('h3')).toHaveText(selected);
  const a = await pg.summary();
  const b = await other.evaluate(() => (window as unknown as { __dse: { summary(): unknown } }).__dse.summary());
  expect(b).toEqual(a);
  await other.close();
});

test('accessibility: no serious or critical axe violations, live and in a replay', async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  const pg = new Playground(page, info);
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  const check = async (what: string): Promise<void> => {
    const r = await new AxeBuilder({ page }).analyze();
    const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(
      bad.map(
        (v) =>
          `${what}: ${v.id} (${v.impact}): ${v.help} — ${v.nodes
            .slice(0, 3)
            .map((n) => n.target.join(' '))
            .join('; ')}`,
      ),
    ).toEqual([]);
  };
  await check('live');
  await pg.openDrawer('rollbacks');
  await check('live, drawer open');
  await pg.open(`${SIM}&speed=end`);
  await expect(page.getByTestId('replay-position')).toHaveText(/^(\d+) \/ \1$/, { timeout: 60_000 });
  await pg.openDrawer('graph');
  await check('replay');
});
