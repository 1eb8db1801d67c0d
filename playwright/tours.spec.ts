import { expect, test, type Page } from '@playwright/test';
import { Playground } from './playground';

// The tours drive the one live cluster of the run (hold, kill, restart, mode, workload): one after the other.
test.describe.configure({ mode: 'serial' });

/** The choice each tour's question should be graded right for, by the protocol (the grade itself comes from the run's events). */
const RIGHT: Record<string, number> = { speculation: 0, kill: 1, stale: 1, sessions: 1, saga: 1, durable: 0 };

interface Played {
  steps: number;
  answer: string;
  correct: string;
  verdict: string;
}

/**
 * Plays a tour through as a learner: reads each step, and at the question checks that the cluster
 * really stands still (held, the cut does not move, no kill preview gives the answer away), picks
 * `choice`, and reads the grade. Then finishes, and checks the cluster is released.
 */
async function play(page: Page, pg: Playground, id: string, choice: number | null, shots: ((name: string) => Promise<void>) | null = null): Promise<Played> {
  await page.getByTestId(`tour-start-${id}`).click();
  await expect(page.getByTestId('tour')).toBeVisible();
  const out: Played = { steps: 0, answer: '', correct: '', verdict: '' };
  for (let step = 1; step <= 10; step++) {
    await expect(page.getByTestId('tour-progress')).toHaveText(new RegExp(`^step ${step} of \\d+$`));
    const next = page.getByTestId('tour-next');
    const choice0 = page.getByTestId('tour-choice-0');
    // The step has set its scene when its question is offered or "next" is enabled.
    await expect(async () => {
      const asked = (await choice0.isVisible()) && (await choice0.isEnabled());
      expect(asked || (await next.isEnabled())).toBe(true);
    }).toPass({ timeout: 90_000 });
    out.steps = step;
    if ((await choice0.isVisible()) && choice !== null) {
      // Predict, then reveal: the picture stands still under the question, and nothing shows the answer.
      await expect(page.getByTestId('live-state')).toHaveText('held');
      await expect(page.getByTestId('tour-answer')).toHaveCount(0);
      const before = await pg.cutTotal();
      await page.getByTestId('kill-n1').hover();
      await page.waitForTimeout(1200);
      await expect(page.getByTestId('kill-preview')).toHaveCount(0);
      expect(await pg.cutTotal()).toBe(before);
      await page.mouse.move(0, 0);
      if (shots !== null) await shots(`${id} ${step} question`);
      await page.getByTestId(`tour-choice-${choice}`).check();
      const answer = page.getByTestId('tour-answer');
      await expect(answer).toBeVisible({ timeout: 90_000 });
      out.answer = (await answer.textContent()) ?? '';
      out.correct = (await answer.getAttribute('data-correct')) ?? '';
      out.verdict = (await answer.getAttribute('data-verdict')) ?? '';
      if (shots !== null) await shots(`${id} ${step} answer`);
      await expect(next).toBeEnabled({ timeout: 90_000 });
    } else if (shots !== null) await shots(`${id} ${step}`);
    const label = await next.textContent();
    await next.click();
    if (label === 'finish') break;
  }
  await expect(page.getByTestId('tour')).toBeHidden({ timeout: 60_000 });
  await expect(page.getByTestId('live-state')).toHaveText('running', { timeout: 30_000 });
  return out;
}

async function open(page: Page, pg: Playground): Promise<void> {
  await pg.open();
  await expect(pg.lanes()).toHaveCount(4);
  for (const n of ['n1', 'n2', 'n3', 'n4']) await expect(pg.status(n)).toHaveText('up', { timeout: 30_000 });
  // The cut moves before a tour holds the cluster: its "the cut does not move" check is not vacuous.
  await pg.waitForCutAbove(0);
}

test('tour "Start here": five steps on the live diagram at classroom pace', async ({ page }, info) => {
  test.setTimeout(120_000);
  const pg = new Playground(page, info);
  await open(page, pg);
  const p = await play(page, pg, 'start', null);
  expect(p.steps).toBe(5);
});

for (const id of Object.keys(RIGHT)) {
  test(`tour "${id}": played twice, graded right for the right answer and wrong for a wrong one, from that run's events`, async ({ page }, info) => {
    test.setTimeout(300_000);
    const pg = new Playground(page, info);
    await open(page, pg);
    const right = RIGHT[id]!;
    const wrong = (right + 2) % 3;
    const a = await play(page, pg, id, right);
    expect(a.steps, 'a tour has at least four steps').toBeGreaterThanOrEqual(4);
    // The tour asks only when its choices differ: exactly one is borne out.
    expect(a.correct, a.answer).toBe(String(right));
    expect(a.verdict, a.answer).toBe('right');
    await pg.screenshot(`tour ${id}: right`);
    const b = await play(page, pg, id, wrong);
    expect(b.correct, b.answer).toBe(String(right));
    expect(b.verdict, b.answer).toBe('wrong');
    await pg.screenshot(`tour ${id}: wrong`);
  });
}
