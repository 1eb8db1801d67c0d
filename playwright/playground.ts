import { expect, type Page, type TestInfo } from '@playwright/test';

export function baseUrl(): string {
  const u = process.env.DSE_BASE_URL;
  if (u === undefined || u === '') throw new Error('DSE_BASE_URL is not set: the global setup starts the server and sets it');
  return u;
}

export interface Summary {
  lanes: string[];
  worldLine: number;
  cut: Record<string, number>;
  events: number;
  rolledBack: number;
  committed: number;
}

/** The playground as a person uses it, by its stable test ids. */
export class Playground {
  constructor(
    readonly page: Page,
    private readonly info: TestInfo,
  ) {}

  async open(query = ''): Promise<void> {
    await this.page.goto(`${baseUrl()}/${query}`);
  }

  lanes() {
    return this.page.locator('[data-testid^="lane-"]');
  }

  status(node: string) {
    return this.page.getByTestId(`status-${node}`);
  }

  async worldLine(): Promise<number> {
    return Number(await this.page.getByTestId('world-line').textContent());
  }

  /** Sum over nodes of the committed cut's versions, as drawn by the cut line. */
  async cutTotal(): Promise<number> {
    return Number(await this.page.getByTestId('cut-line').getAttribute('data-cut-total'));
  }

  async waitForCutAbove(total: number): Promise<void> {
    await expect.poll(() => this.cutTotal(), { timeout: 30_000 }).toBeGreaterThan(total);
  }

  rolledBack() {
    return this.page.getByTestId('version-rolled-back');
  }

  summary(): Promise<Summary> {
    return this.page.evaluate(() => (window as unknown as { __dse: { summary(): Summary } }).__dse.summary());
  }

  /** Opens the settings popover (workload, scenario, cluster settings). */
  async openSettings(): Promise<void> {
    if ((await this.page.getByTestId('settings').getAttribute('aria-expanded')) !== 'true') await this.page.getByTestId('settings').click();
    await expect(this.page.getByTestId('settings-panel')).toBeVisible();
  }

  async closeSettings(): Promise<void> {
    if ((await this.page.getByTestId('settings').getAttribute('aria-expanded')) === 'true') await this.page.getByTestId('settings').click();
    await expect(this.page.getByTestId('settings-panel')).toBeHidden();
  }

  /** Opens a drawer tab (nodes, graph, rollbacks, requests, events, services, race, charts). */
  async openDrawer(tab: string): Promise<void> {
    const t = this.page.getByTestId(`tab-${tab}`);
    if ((await t.getAttribute('aria-selected')) !== 'true') await t.click();
    await expect(t).toHaveAttribute('aria-selected', 'true');
  }

  /** Releases the live cluster if a test left it held (the API the page's hold button uses). */
  async release(): Promise<void> {
    const r = await this.page.request.post(`${baseUrl()}/api/config`, { data: { held: false } });
    expect(r.ok()).toBe(true);
  }

  /** Saves a full-page screenshot next to the test's results and attaches it to the report. */
  async screenshot(name: string): Promise<void> {
    const path = this.info.outputPath(`${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await this.page.screenshot({ path, fullPage: true });
    await this.info.attach(name, { path, contentType: 'image/png' });
  }
}
