import { writeFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { Playground } from './playground';

/**
 * The stage with 32 nodes, from an imported trace (no 32 node processes needed): every lane is on
 * screen, no two lane names overlap, and the busiest lanes keep a full lane while the others are thin.
 */

const NODES = Array.from({ length: 32 }, (_, i) => `n${i + 1}`);
/** These exchange far more messages than the others. */
const BUSY = ['n5', 'n17', 'n30'];

/** A synthetic trace: every node opens versions, each sends a message now and then, the busy ones a lot. */
function trace32(): unknown {
  const events: Record<string, unknown>[] = [];
  let t = 1000;
  let msg = 0;
  const send = (from: string, to: string): void => {
    const id = `m${++msg}`;
    events.push({ type: 'messageSent', t, id, kind: 'app', from, to, worldLine: 1, srcVersion: 1, seq: msg, resend: false });
    events.push({ type: 'messageDelivered', t: t + 20, id, kind: 'app', from, to, version: 1, duplicate: false });
  };
  for (const [i, node] of NODES.entries()) events.push({ type: 'versionOpened', t: t + i, node, worldLine: 1, version: 1, prevVersion: 0 });
  for (let round = 0; round < 20; round++) {
    t += 200;
    for (const [i, node] of NODES.entries()) if (round % 4 === i % 4) send(node, NODES[(i + 1) % NODES.length]!);
    for (const [i, busy] of BUSY.entries()) for (let k = 0; k < 6; k++) send(busy, NODES[(i * 7 + k * 3 + round) % NODES.length]!);
  }
  return { format: 'dse-trace', formatVersion: 1, exportedAt: '', source: 'import', eventsDropped: 0, config: null, workload: null, simulation: null, events };
}

// At 1280×800 the stage is compact (thin lanes and full ones); at 1920×1080 every lane gets 24 px.
for (const [w, h, compact] of [
  [1280, 800, true],
  [1920, 1080, false],
] as const) {
  test(`32 nodes at ${w}×${h}: every lane visible, lane names not overlapping${compact ? ', the busiest lanes full size' : ''}`, async ({ page }, info) => {
    await page.setViewportSize({ width: w, height: h });
    const pg = new Playground(page, info);
    await pg.open();
    const file = info.outputPath('trace-32-nodes.json');
    writeFileSync(file, JSON.stringify(trace32()));
    await page.getByTestId('import-file').setInputFiles(file);
    await expect(page.getByTestId('connection')).toContainText('replay');
    await expect(pg.lanes()).toHaveCount(32);

    const boxes = await page.evaluate((ids) => {
      const stage = document.querySelector('.stage-diagram')!.getBoundingClientRect();
      return {
        stage: { top: stage.top, bottom: stage.bottom },
        lanes: ids.map((id) => {
          const lane = document.querySelector(`[data-testid="lane-${id}"] .lane-head`)!.getBoundingClientRect();
          const name = document.querySelector(`[data-testid="head-units-${id}"]`)!.getBoundingClientRect();
          const label = document.querySelector(`[data-testid="head-units-${id}"] .lane-label`)!;
          return {
            id,
            lane: { top: lane.top, bottom: lane.bottom, height: lane.height },
            name: { top: name.top, bottom: name.bottom, left: name.left, right: name.right },
            fontPx: parseFloat(getComputedStyle(label).fontSize),
          };
        }),
      };
    }, NODES);

    for (const l of boxes.lanes) {
      // On screen: inside the stage, which does not scroll.
      expect(l.lane.top, `${l.id} starts inside the stage`).toBeGreaterThanOrEqual(boxes.stage.top - 0.5);
      expect(l.lane.bottom, `${l.id} ends inside the stage`).toBeLessThanOrEqual(boxes.stage.bottom + 0.5);
      expect(l.name.bottom, `${l.id}'s name inside the stage`).toBeLessThanOrEqual(boxes.stage.bottom + 0.5);
      expect(l.fontPx, `${l.id}'s name is readable`).toBeGreaterThanOrEqual(11);
    }
    const overlaps: string[] = [];
    for (let i = 0; i < boxes.lanes.length; i++)
      for (let j = i + 1; j < boxes.lanes.length; j++) {
        const a = boxes.lanes[i]!.name;
        const b = boxes.lanes[j]!.name;
        if (a.left < b.right && b.left < a.right && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
          overlaps.push(`${boxes.lanes[i]!.id} / ${boxes.lanes[j]!.id}`);
      }
    expect(overlaps).toEqual([]);
    const height = new Map(boxes.lanes.map((l) => [l.id, l.lane.height]));
    if (compact) {
      // The busy nodes keep a full lane with room for the kill and restart buttons; a quiet one is thin.
      for (const id of BUSY) expect(height.get(id)!, `${id} is busy`).toBeGreaterThanOrEqual(30);
      expect(height.get('n2')!, 'n2 is quiet').toBeLessThan(22);
    } else {
      for (const [id, lh] of height) expect(lh, `${id}'s lane`).toBeGreaterThanOrEqual(22);
    }
    await pg.screenshot(`32 nodes at ${w}×${h}`);
  });
}
