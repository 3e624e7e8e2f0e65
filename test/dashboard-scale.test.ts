/**
 * The task table with 100,000 runs in the ledger: the page shows one bounded page at a time, and
 * opening it, paging, filtering and searching stay quick (generous bounds: this is a shared machine).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { ensureDashboardBuilt, launchChromium } from './dashboard-browser.js';
import { eventually, startServer } from './helpers.js';

const RUNS = 100_000;
const BATCH = 5_000;
/** Measured at 0.1-0.8 s on a quiet two-core machine; the bound leaves room for a busy one. */
const BOUND_MS = 5_000;

const noop = defineTask({
  name: 'scale.noop',
  params: z.object({ company_id: z.string(), n: z.number().int() }),
  async run() {
    return null;
  },
});

let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;

beforeAll(async () => {
  ensureDashboardBuilt();
  // Nothing runs: the ledger just holds 100k waiting runs.
  server = await startServer({ tasks: [noop], execute: false });
  for (let i = 0; i < RUNS; i += BATCH) {
    await server.yard.launch(Array.from({ length: BATCH }, (_, j) => ({ name: 'scale.noop', params: { company_id: String((i + j) % 10), n: i + j } })));
  }
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** Milliseconds until the table shows rows after `action`, with the first row's id. */
async function timed(page: Page, action: () => Promise<unknown>, previousFirst?: string | null): Promise<{ ms: number; first: string | null }> {
  const started = Date.now();
  await action();
  const rows = page.locator('table.tasks tbody tr');
  await rows.first().waitFor();
  if (previousFirst !== undefined) {
    await eventually(async () => (await rows.first().getAttribute('data-task-id')) !== previousFirst, 10_000, 10);
  }
  return { ms: Date.now() - started, first: await rows.first().getAttribute('data-task-id') };
}

describe('dashboard at 100k runs', { timeout: 60_000 }, () => {
  it('opens, pages, filters and searches within bounds, one bounded page in the DOM', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const rows = page.locator('table.tasks tbody tr');

    const opened = await timed(page, () => page.goto(`${server.url}/#/tasks`));
    expect(opened.ms, 'opened (ms)').toBeLessThan(BOUND_MS);
    expect(await rows.count()).toBe(50);

    let first = opened.first;
    const seen = new Set<string>([first!]);
    for (let i = 0; i < 3; i++) {
      const older = await timed(page, () => page.getByRole('button', { name: 'Older →' }).click(), first);
      expect(older.ms, 'older (ms)').toBeLessThan(BOUND_MS);
      expect(seen.has(older.first!)).toBe(false); // a new page, not the same rows again
      seen.add(older.first!);
      first = older.first;
    }
    expect(await rows.count()).toBe(50);
    const newer = await timed(page, () => page.getByRole('button', { name: '← Newer' }).click(), first);
    expect(newer.ms, 'newer (ms)').toBeLessThan(BOUND_MS);

    // A free-text search that scans every run's params finds the one run with n = 4242.
    const searched = await timed(page, () => page.goto(`${server.url}/#/tasks?q=${encodeURIComponent('"n":4242}')}`), newer.first);
    expect(searched.ms, 'searched (ms)').toBeLessThan(BOUND_MS);
    expect(await rows.count()).toBe(1);

    const filtered = await timed(page, () => page.goto(`${server.url}/#/tasks?tenant=7&limit=200`), searched.first);
    expect(filtered.ms, 'filtered (ms)').toBeLessThan(BOUND_MS);
    expect(await rows.count()).toBe(200);
    expect(new Set(await page.locator('table.tasks tbody td.tenant-cell').allTextContents())).toEqual(new Set(['7']));
  });
});
