import { expect, test } from '@playwright/test';
import { baseUrl, Playground } from './playground';

/**
 * The pages are served with a strict Content-Security-Policy (backend/src/server/server.ts): the
 * playground must work under it, with no violation at all (a refused script, style or connection).
 */
test('the playground runs under its Content-Security-Policy without a violation', async ({ page }, info) => {
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`Refused to: ${e.violatedDirective} ${e.blockedURI}`));
  });
  const response = await page.goto(`${baseUrl()}/`);
  expect(response?.headers()['content-security-policy']).toContain("default-src 'self'");
  const pg = new Playground(page, info);
  // The live stream works (Socket.IO over WebSocket), the diagram and the charts draw.
  await expect(pg.lanes()).toHaveCount(4);
  await pg.openDrawer('charts');
  await pg.openDrawer('graph');
  await page.waitForTimeout(1500);
  expect(violations).toEqual([]);
});
