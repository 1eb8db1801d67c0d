import { defineConfig } from '@playwright/test';

/**
 * Browser tests of the playground against a real server and real node processes (PGlite in a
 * temporary folder), driving Debian's Chromium. `npm run test:browser`.
 */
export default defineConfig({
  testDir: 'playwright',
  testIgnore: ['bench/**'],
  globalSetup: './playwright/global-setup.ts',
  outputDir: 'test-results/playwright',
  timeout: 90_000,
  expect: { timeout: 20_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: process.env.DSE_BASE_URL,
    viewport: { width: 1400, height: 1000 },
    screenshot: 'on',
    trace: 'retain-on-failure',
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
