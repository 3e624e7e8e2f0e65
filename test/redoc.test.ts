/**
 * `/redoc` (seed celery-tasks-api lists it beside /docs): ReDoc from the installed package, no
 * CDN, public like /docs. Rendered for real in headless Chromium, offline.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineTask } from '../src/core/definition.js';
import { http, startServer } from './helpers.js';

const KEY = 'admin-key-0123456789abcdef';
const BUNDLE = readFileSync(createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js'));

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  // With API keys configured, so "public" is really tested.
  server = await startServer({
    tasks: [defineTask({ name: 'alpha.noop', description: 'Does nothing', run: () => null })],
    apiKeys: [{ key: KEY, role: 'admin', tenants: '*' }],
  });
});
afterAll(async () => {
  await server?.close();
});

describe('/redoc', () => {
  it('serves a page pointing at /openapi.json and the local bundle, without credentials', async () => {
    expect((await http(`${server.url}/api/tasks`)).status).toBe(401); // the API itself needs a key
    const page = await http(`${server.url}/redoc`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.body).toContain('<redoc spec-url="/openapi.json"></redoc>');
    expect(page.body).toContain('<script src="/redoc/redoc.standalone.js"></script>');
    expect(page.body).not.toMatch(/https?:\/\//); // nothing from elsewhere
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
  });

  it('serves the installed ReDoc bundle byte for byte', async () => {
    const res = await fetch(`${server.url}/redoc/redoc.standalone.js`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/javascript/);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.length).toBe(BUNDLE.length);
    expect(body.equals(BUNDLE)).toBe(true);
  });

  it('renders the API in a browser, offline, with no request leaving the server', async () => {
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const elsewhere: string[] = [];
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith(server.url) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
        elsewhere.push(url);
        return route.abort();
      });
      await page.goto(`${server.url}/redoc`);
      // ReDoc's rendered title and an operation from the OpenAPI document.
      await page.getByRole('heading', { name: /Taskyard/ }).first().waitFor({ timeout: 20_000 });
      await page.getByRole('heading', { name: 'Launch a task' }).first().waitFor({ timeout: 20_000 });
      // Search runs in a worker: the page's policy must let it.
      await page.getByPlaceholder('Search...').fill('Launch many');
      const results = page.locator('[data-role="search:results"] [role="menuitem"]');
      await results.first().waitFor({ timeout: 10_000 });
      expect(await results.allInnerTexts()).toContainEqual(expect.stringMatching(/Launch many tasks/));
      expect(elsewhere).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
