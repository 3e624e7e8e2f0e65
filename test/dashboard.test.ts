/**
 * The web dashboard, driven in a real browser (Debian's Chromium through playwright-core)
 * against real servers: one in protected mode with the demo world, one with API keys.
 */
import { mkdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createDemoApp } from '../demo/app.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { defineTask } from '../src/core/definition.js';
import { dashboardRoutes } from '../src/http/dashboard.js';
import { ensureDashboardBuilt, launchChromium, ROOT } from './dashboard-browser.js';
import { eventually, http, startServer, tempDir } from './helpers.js';

/** Test artifacts; `DASHBOARD_SCREENSHOTS=docs/screenshots` refreshes the README's copies. */
const SCREENSHOTS = join(ROOT, process.env.DASHBOARD_SCREENSHOTS ?? '.tmp/screenshots');

// ---- tasks -------------------------------------------------------------------------------

/** Reports progress step by step; stops between steps when cancelled. */
const steps = defineTask({
  name: 'test.steps',
  displayName: 'Importing ledger entries',
  description: 'Works through a number of steps, reporting progress after each.',
  params: z.object({
    company_id: z.string().describe('Company id'),
    steps: z.number().int().min(1).max(100).default(5).describe('How many steps'),
    step_ms: z.number().int().min(10).max(5000).default(200).describe('Milliseconds per step'),
    // A rule JSON Schema cannot carry, so only the server catches it (a 422 on this field).
    label: z.string().refine((v) => v !== 'forbidden', 'is a reserved word').optional().describe('A note'),
  }),
  async run(params, ctx) {
    for (let i = 1; i <= params.steps; i++) {
      await new Promise((r) => setTimeout(r, params.step_ms));
      if (ctx.signal.aborted) throw ctx.signal.reason;
      await ctx.progress((100 * i) / params.steps, `step ${i} of ${params.steps}`);
    }
    return { imported: params.steps * 100 };
  },
});

/** Fails on its first run and succeeds when retried. */
const failedOnce = new Set<string>();
const flaky = defineTask({
  name: 'test.flaky',
  displayName: 'Fetching bank statement',
  params: z.object({ company_id: z.string() }),
  retry: false,
  async run(_params, ctx) {
    if (!failedOnce.has(ctx.taskId)) {
      failedOnce.add(ctx.taskId);
      throw new Error('Bank API answered 502');
    }
    return { statements: 3 };
  },
});

const tasks = [...demoTasks, steps, flaky];

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  viewer: 'viewer-key-0123456789abcdef',
  tenant73: 'tenant73-key-0123456789abcdef',
};

// ---- set-up ------------------------------------------------------------------------------

let browser: Browser;
let open: { url: string; close: () => Promise<void>; launch: (name: string, params: object) => Promise<string> };
let keyed: { url: string; close: () => Promise<void>; launch: (name: string, params: object) => Promise<string> };
const contexts: BrowserContext[] = [];
/** Uncaught errors in the page: any one fails the test it happened in. */
const pageErrors: string[] = [];

async function launcher(url: string, key?: string) {
  return async (name: string, params: object): Promise<string> => {
    const res = await http(`${url}/api/tasks`, { body: { task_type: name, params }, headers: key ? { authorization: `Bearer ${key}` } : {} });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.task_id as string;
  };
}

beforeAll(async () => {
  ensureDashboardBuilt();
  mkdirSync(SCREENSHOTS, { recursive: true });
  const temp = tempDir();
  let demoClose = async () => {};
  const a = await startServer({
    tasks,
    categoryRules,
    dir: temp.dir,
    plugins: (yard) => {
      const demo = createDemoApp(yard, { ledgerFile: join(temp.dir, 'taskyard.db') });
      demoClose = demo.close;
      return demo.plugins;
    },
  });
  open = { url: a.url, close: async () => (await a.close(), await demoClose(), temp.cleanup()), launch: await launcher(a.url) };
  const b = await startServer({
    tasks,
    categoryRules,
    apiKeys: [
      { key: KEYS.admin, role: 'admin', tenants: '*' },
      { key: KEYS.viewer, role: 'viewer', tenants: '*' },
      { key: KEYS.tenant73, role: 'operator', tenants: ['73'] },
    ],
  });
  keyed = { url: b.url, close: b.close, launch: await launcher(b.url, KEYS.admin) };
  browser = await launchChromium();
}, 120_000);

// Open pages follow the live stream and re-render: close them so each test runs on a quiet machine.
afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close().catch(() => {});
  expect(pageErrors.splice(0)).toEqual([]);
});

afterAll(async () => {
  await browser?.close();
  await open?.close();
  await keyed?.close();
});

async function newPage(options: { dark?: boolean; width?: number } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: 800 }, colorScheme: options.dark ? 'dark' : 'light' });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return page;
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${keyed.url}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });

/** The progress bar value (0-100) of the task detail page. */
const progressOf = async (page: Page) => Number(await page.getByRole('progressbar', { name: 'Progress', exact: true }).getAttribute('aria-valuenow'));

const badge = (page: Page) => page.locator('.view-head .badge[data-state]');

/** Every form control on the page has an accessible name (a label or aria-label). */
const unlabelledControls = (page: Page) =>
  page.evaluate(`[...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map((el) => el.outerHTML.slice(0, 80))`) as Promise<string[]>;

/** A TCP proxy in front of a server, whose `drop()` cuts every open connection (a network blip). */
async function tcpProxy(target: string): Promise<{ url: string; drop(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const drop = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    drop,
    close: () => {
      drop();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ---- the server side ---------------------------------------------------------------------

describe('serving', () => {
  it('serves the page with a strict CSP, hashed assets for good, and whoami under the caller’s key', async () => {
    const page = await http(`${keyed.url}/`);
    expect(page.status).toBe(200); // public: the page holds no data
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(page.body as string)![1]!;
    const js = await fetch(`${keyed.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');

    expect((await http(`${keyed.url}/api/whoami`)).status).toBe(401);
    expect((await http(`${keyed.url}/api/whoami`, { headers: { authorization: `Bearer ${KEYS.tenant73}` } })).body).toEqual({
      role: 'operator',
      tenants: ['73'],
      anonymous: false,
    });
    expect((await http(`${open.url}/api/whoami`)).body).toEqual({ role: 'admin', tenants: '*', anonymous: true });
  });

  it('answers a page that says how to build the dashboard when it is not built (never a 500)', async () => {
    const empty = tempDir();
    const app = Fastify();
    await app.register(async (scoped) => dashboardRoutes(scoped, { dir: `${empty.dir}/` }));
    const res = await app.inject({ method: 'GET', url: '/' });
    await app.close();
    empty.cleanup();
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('npm run build:dashboard');
  });

  it('searches task ids, errors and params with q; % and _ are literal; tenant scope still applies', async () => {
    const a = await keyed.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10, label: 'needle_50%' });
    const b = await keyed.launch('test.steps', { company_id: '4', steps: 1, step_ms: 10, label: 'needleX500' });
    const failed = await keyed.launch('test.flaky', { company_id: '4' });
    const admin = { authorization: `Bearer ${KEYS.admin}` };
    const ids = async (q: string, headers = admin) =>
      ((await http(`${keyed.url}/api/tasks?limit=500&q=${encodeURIComponent(q)}`, { headers })).body.tasks as Array<{ task_id: string }>).map((t) => t.task_id);
    expect(await ids('needle')).toEqual(expect.arrayContaining([a, b]));
    expect(await ids('needle_50%')).toEqual([a]);
    expect(await ids('needle_5')).toEqual([a]); // _ is not a wildcard
    expect(await ids('50%')).toEqual([a]); // % is not a wildcard
    expect(await ids(b)).toEqual([b]);
    await eventually(async () => (await ids('Bank API answered')).includes(failed));
    expect(await ids('needle', { authorization: `Bearer ${KEYS.tenant73}` })).toEqual([a]);
  });
});

// ---- the browser -------------------------------------------------------------------------

// Generous per-test time: the whole suite shares two cores with these browsers.
describe('dashboard in Chromium', { timeout: 60_000 }, () => {
  it('needs no sign-in in protected mode on loopback; every control has a label', async () => {
    const page = await newPage();
    await page.goto(`${open.url}/`);
    await eventually(async () => (await page.getByTestId('whoami').textContent())?.includes('no sign-in'), 10_000);
    await expect(page.getByLabel('API key').count()).resolves.toBe(0);
    for (const view of ['#/tasks', '#/overview', '#/tenants', '#/launch?task=sii.sync_documents']) {
      await page.goto(`${open.url}/${view}`);
      await page.locator('h1').first().waitFor();
      expect(await unlabelledControls(page), view).toEqual([]);
    }
  });

  it('launches from the generated form: checks fields first, shows server 422s on the field, then watches progress live to SUCCESS', async () => {
    const page = await newPage();
    const posts: string[] = [];
    const reads: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/tasks')) posts.push(r.url());
      if (r.method() === 'GET' && /\/api\/tasks\/[0-9a-f-]{36}$/.test(r.url())) reads.push(r.url());
    });
    await page.goto(`${open.url}/#/launch`);
    await page.getByLabel('Task', { exact: true }).selectOption('test.steps');
    // The form is rendered from the schema once the type is chosen: its default fills in.
    await eventually(async () => (await page.getByLabel('steps', { exact: true }).inputValue()) === '5', 10_000); // the schema's default

    // Checked in the browser: a required field left empty, a number below its minimum.
    await page.getByLabel('steps', { exact: true }).fill('0');
    await page.getByRole('button', { name: 'Launch', exact: true }).click();
    await eventually(async () => (await page.locator('[data-field="company_id"] .error-text').textContent()) === 'is required', 10_000);
    await eventually(async () => (await page.locator('[data-field="steps"] .error-text').textContent()) === 'must be at least 1', 10_000);
    expect(posts).toEqual([]);

    // Only the server knows this rule: its 422 lands on the field it names.
    await page.getByLabel('company_id').fill('73');
    await page.getByLabel('steps', { exact: true }).fill('6');
    await page.getByLabel('step_ms').fill('350');
    await page.getByLabel('label').fill('forbidden');
    await page.getByRole('button', { name: 'Launch', exact: true }).click();
    await eventually(async () => (await page.locator('[data-field="label"] .error-text').textContent()) === 'is a reserved word', 10_000);
    await eventually(async () => (await page.getByLabel('label').getAttribute('aria-invalid')) === 'true', 10_000);
    expect(posts).toHaveLength(1);

    await page.getByLabel('label').fill('first import');
    await expect(page.locator('[data-field="label"] .error-text').count()).resolves.toBe(0); // an edited field drops its error
    await shot(page, 'launch');
    await page.getByRole('button', { name: 'Launch', exact: true }).click();
    await page.waitForURL(/#\/tasks\/[0-9a-f-]{36}$/);
    await page.evaluate('window.__sameDocument = true');

    // Progress advances through the event stream: several steps seen, then SUCCESS.
    const seen = new Set<number>();
    await eventually(async () => {
      const value = await progressOf(page);
      if (value > 0 && value < 100) seen.add(value);
      return (await badge(page).textContent()) === 'SUCCESS';
    }, 15_000, 20);
    expect(seen.size).toBeGreaterThanOrEqual(2);
    await page.getByText('"imported": 600').waitFor();
    expect(await page.evaluate('window.__sameDocument')).toBe(true); // no reload
    expect(reads.length).toBeLessThanOrEqual(4); // the record is re-read on transitions, not polled
    await eventually(async () => (await page.locator('table.timeline tr[data-event="progress"]').count()) >= 6, 10_000);
  });

  it('keeps the task table live: new runs appear and advance without a reload', async () => {
    const page = await newPage();
    await page.goto(`${open.url}/#/tasks`);
    await page.locator('table.tasks').waitFor();
    await page.evaluate('window.__sameDocument = true');
    const id = await open.launch('test.steps', { company_id: '4', steps: 4, step_ms: 250 });
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor({ timeout: 10_000 });
    await eventually(async () => (await row.getAttribute('data-state')) === 'STARTED', 10_000);
    await eventually(async () => (await row.getAttribute('data-state')) === 'SUCCESS', 10_000);
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
  });

  it('resumes the event stream after a dropped connection with Last-Event-ID, missing nothing', async () => {
    const proxy = await tcpProxy(open.url);
    try {
      const page = await newPage();
      const streams: Array<string | undefined> = [];
      page.on('request', (r) => {
        if (r.url().includes('/api/tasks/events')) streams.push(r.headers()['last-event-id']);
      });
      await page.goto(`${proxy.url}/#/tasks`);
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
      const before = await open.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10 });
      await page.locator(`tr[data-task-id="${before}"][data-state="SUCCESS"]`).waitFor(); // events seen: there is an id to resume from

      proxy.drop(); // the network drops every connection
      await page.getByRole('status').filter({ hasText: 'Reconnecting' }).waitFor();
      const missed = await open.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10 });
      await eventually(async () => (await http(`${open.url}/api/tasks/${missed}`)).body.state === 'SUCCESS');

      await page.locator(`tr[data-task-id="${missed}"][data-state="SUCCESS"]`).waitFor({ timeout: 15_000 });
      expect(streams[0]).toBeUndefined();
      expect(Number(streams.at(-1))).toBeGreaterThan(0); // the reconnect asked for what came after the last event seen
    } finally {
      await proxy.close();
    }
  });

  it('cancels running work, soft and hard with a reason, each after a confirmation, and shows REVOKED live', async () => {
    const page = await newPage();
    for (const mode of ['soft', 'hard'] as const) {
      const id = await open.launch('test.steps', { company_id: '73', steps: 100, step_ms: 200 });
      await page.goto(`${open.url}/#/tasks/${id}`);
      await eventually(async () => (await badge(page).textContent()) === 'STARTED', 10_000);
      await page.getByRole('button', { name: 'Cancel task…' }).click();
      const dialog = page.getByRole('dialog');
      if (mode === 'hard') {
        await dialog.getByLabel(/^Hard/).check();
        await dialog.getByLabel('Reason (optional)').fill('wrong company');
        await dialog.getByRole('button', { name: 'Stop it now' }).click();
      } else {
        await dialog.getByRole('button', { name: 'Ask it to stop' }).click();
      }
      await eventually(async () => (await badge(page).textContent()) === 'REVOKED', 10_000);
      const record = (await http(`${open.url}/api/tasks/${id}`)).body;
      expect(record.state).toBe('REVOKED');
      expect(record.progress).toBeLessThan(100);
      expect(record.cancel_requested).toBe(mode);
      if (mode === 'hard') {
        expect(record.revoke_reason).toBe('wrong company');
        await page.getByText('wrong company', { exact: true }).waitFor();
      }
    }
  });

  it('retries a failure and sees it succeed', async () => {
    const page = await newPage();
    const id = await open.launch('test.flaky', { company_id: '4' });
    await page.goto(`${open.url}/#/tasks/${id}`);
    await eventually(async () => (await badge(page).textContent()) === 'FAILURE', 10_000);
    await eventually(async () => (await page.getByTestId('task-error').textContent()) === 'Bank API answered 502', 10_000);
    await page.getByRole('button', { name: 'Retry…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Retry', exact: true }).click();
    await eventually(async () => (await badge(page).textContent()) === 'SUCCESS', 10_000);
    await page.getByText('2 of 2').waitFor(); // attempt 2 of a fresh budget
    expect((await http(`${open.url}/api/tasks/${id}`)).body.state).toBe('SUCCESS');
  });

  it('re-launches a run with edited params as a new run', async () => {
    const page = await newPage();
    const id = await open.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10, label: 'original' });
    await page.goto(`${open.url}/#/tasks/${id}`);
    await eventually(async () => (await badge(page).textContent()) === 'SUCCESS', 10_000);
    await page.getByRole('button', { name: 'Re-launch with edited params…' }).click();
    const dialog = page.getByRole('dialog');
    await eventually(async () => (await dialog.getByLabel('label').inputValue()) === 'original', 10_000);
    await dialog.getByLabel('label').fill('edited');
    await dialog.getByRole('button', { name: 'Launch new run' }).click();
    await page.waitForURL((url) => /#\/tasks\/[0-9a-f-]{36}$/.test(url.hash) && !url.hash.endsWith(id));
    const newId = page.url().split('/').pop()!;
    const record = (await http(`${open.url}/api/tasks/${newId}`)).body;
    expect(record.params).toMatchObject({ company_id: '73', label: 'edited' });
    expect((await http(`${open.url}/api/tasks/${id}`)).body.params.label).toBe('original');
  });

  it('keeps filters in the URL, across a reload', async () => {
    const page = await newPage();
    const marked = await open.launch('test.flaky', { company_id: '123e4567-e89b-12d3-a456-426614174000' });
    await eventually(async () => (await http(`${open.url}/api/tasks/${marked}`)).body.state === 'FAILURE');
    await page.goto(`${open.url}/#/tasks`);
    await page.getByRole('checkbox', { name: 'FAILURE' }).check();
    await page.getByLabel('Search').fill('123e4567-e89b');
    await page.waitForURL(/q=123e4567-e89b/);
    expect(page.url()).toContain('state=FAILURE');
    const rows = page.locator('table.tasks tbody tr');
    await eventually(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-task-id')) === marked);

    await page.reload();
    await eventually(() => page.getByRole('checkbox', { name: 'FAILURE' }).isChecked(), 10_000);
    await eventually(async () => (await page.getByLabel('Search').inputValue()) === '123e4567-e89b', 10_000);
    await eventually(async () => (await rows.count()) === 1 && (await rows.first().getAttribute('data-task-id')) === marked);
  });

  it('takes screenshots of the main screens, light and dark, and stays within a laptop width', async () => {
    // A realistic moment: an onboarding in flight, a few runs finished or failed.
    await http(`${open.url}/api/v1/companies/73/onboarding/finalize/`, { method: 'POST' });
    await open.launch('sii.sync_documents', { company_id: '999', months: 2 }); // "Company not found"
    const running = await open.launch('test.steps', { company_id: '4', steps: 100, step_ms: 300 });
    const other = await open.launch('test.steps', { company_id: '123e4567-e89b-12d3-a456-426614174000', steps: 100, step_ms: 200 });
    const page = await newPage();
    await page.goto(`${open.url}/#/overview`);
    await page.locator('.state-card .count').first().waitFor();
    await eventually(async () => Number(await page.locator('.state-card[data-state="STARTED"] .count').textContent()) >= 2, 10_000);
    await page.waitForTimeout(800); // a few throughput samples on the chart
    await shot(page, 'overview');

    await page.goto(`${open.url}/#/tasks`);
    await page.locator('table.tasks tbody tr').first().waitFor();
    await shot(page, 'tasks');
    await page.goto(`${open.url}/#/tasks/${running}`);
    await eventually(async () => (await progressOf(page)) >= 5, 10_000);
    await shot(page, 'task-detail');
    await page.goto(`${open.url}/#/tenants`);
    await page.locator('.tenant-card h2 a', { hasText: 'Example Company' }).waitFor(); // names from the company tracker
    await shot(page, 'tenants');

    const dark = await newPage({ dark: true });
    await dark.goto(`${open.url}/#/tasks`);
    await dark.locator('table.tasks tbody tr').first().waitFor();
    await shot(dark, 'tasks-dark');
    const background = await dark.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(background).not.toBe('rgb(246, 247, 249)'); // the dark palette, not the light one

    // Down to a narrow laptop: the page never scrolls sideways (wide tables scroll in their box).
    const narrow = await newPage({ width: 1024 });
    for (const view of ['#/tasks', '#/overview', `#/tasks/${running}`]) {
      await narrow.goto(`${open.url}/${view}`);
      await narrow.locator('h1').first().waitFor();
      expect(await narrow.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), view).toBe(true);
    }
    for (const id of [running, other]) await http(`${open.url}/api/tasks/${id}/stop`, { body: { hard: true } });
  });

  it('signs in with an API key held in sessionStorage only, and signs out', async () => {
    const page = await newPage();
    await page.goto(`${keyed.url}/`);
    await page.getByLabel('API key').fill('not-a-valid-key-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key was not accepted.').waitFor();
    await shot(page, 'sign-in');

    await signIn(page, KEYS.admin);
    expect(await page.evaluate('sessionStorage.getItem("taskyard.apiKey")')).toBe(KEYS.admin);
    expect(await page.evaluate(`Object.keys(localStorage).filter((k) => localStorage.getItem(k).includes(${JSON.stringify(KEYS.admin)}))`)).toEqual([]);
    expect(await page.evaluate('document.cookie')).toBe('');
    await page.reload();
    await page.getByRole('navigation', { name: 'Main' }).waitFor(); // still signed in in this tab
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate('sessionStorage.getItem("taskyard.apiKey")')).toBeNull();
  });

  it('shows a viewer no action buttons and no launch form', async () => {
    const running = await keyed.launch('test.steps', { company_id: '73', steps: 100, step_ms: 200 });
    const failed = await keyed.launch('test.flaky', { company_id: '73' });
    const page = await newPage();
    await signIn(page, KEYS.viewer);
    await expect(page.getByRole('link', { name: 'Launch' }).count()).resolves.toBe(0);
    for (const id of [running, failed]) {
      await page.goto(`${keyed.url}/#/tasks/${id}`);
      await page.locator('#task-title').waitFor();
      await eventually(async () => (await badge(page).textContent()) !== 'PENDING', 10_000);
      await expect(page.getByRole('button', { name: /Cancel|Retry|Re-launch/ }).count()).resolves.toBe(0);
    }
    await page.goto(`${keyed.url}/#/launch`);
    await page.getByText('may read but not launch').waitFor();
    // The admin sees the same task with its actions.
    const admin = await newPage();
    await signIn(admin, KEYS.admin);
    await admin.goto(`${keyed.url}/#/tasks/${running}`);
    await admin.getByRole('button', { name: 'Cancel task…' }).waitFor();
    await http(`${keyed.url}/api/tasks/${running}/stop`, { body: { hard: true }, headers: { authorization: `Bearer ${KEYS.admin}` } });
  });

  it('shows a tenant key only its tenants: not in the list, not by URL, not on the live stream', async () => {
    const mine = await keyed.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10 });
    const theirs = await keyed.launch('test.steps', { company_id: '4', steps: 1, step_ms: 10, label: 'tenant-4-secret' });
    const page = await newPage();
    await signIn(page, KEYS.tenant73);
    await page.goto(`${keyed.url}/#/tasks`);
    await page.locator(`tr[data-task-id="${mine}"]`).waitFor();
    await expect(page.locator(`tr[data-task-id="${theirs}"]`).count()).resolves.toBe(0);
    const tenants = await page.locator('table.tasks tbody td:nth-child(4)').allTextContents();
    expect(new Set(tenants)).toEqual(new Set(['73']));

    // Live: a new run of tenant 4 never shows up; one of 73 launched after it does.
    const later4 = await keyed.launch('test.steps', { company_id: '4', steps: 1, step_ms: 10 });
    const later73 = await keyed.launch('test.steps', { company_id: '73', steps: 1, step_ms: 10 });
    await page.locator(`tr[data-task-id="${later73}"]`).waitFor();
    await expect(page.locator(`tr[data-task-id="${later4}"]`).count()).resolves.toBe(0);

    // By URL: the other tenant's task is not found, and none of its data reaches the page.
    await page.goto(`${keyed.url}/#/tasks/${theirs}`);
    await page.getByRole('heading', { name: 'Task not found' }).waitFor();
    expect(await page.content()).not.toContain('tenant-4-secret');
    await page.goto(`${keyed.url}/#/tenants/4`);
    await page.getByText('not one of yours').waitFor();
    await page.goto(`${keyed.url}/#/tenants`);
    await page.locator('.tenant-card').first().waitFor();
    expect(await page.locator('.tenant-card').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-tenant')))).toEqual(['73']);
  });
});
