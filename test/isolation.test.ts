/**
 * The tenant-isolation matrix: every endpoint of every router x {no key, wrong key, viewer,
 * operator, other tenant, admin}, against a real server with the demo's routers.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoApp, type DemoApp } from '../demo/app.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import type { ApiKey } from '../src/http/auth.js';
import { http, startServer, tempDir } from './helpers.js';

const KEYS = {
  admin: 'admin-key-0123456789abcdef',
  operator: 'operator-key-73-0123456789',
  viewer: 'viewer-key-73-0123456789ab',
  other: 'operator-key-4-0123456789ab',
};
const apiKeys: ApiKey[] = [
  { key: KEYS.admin, role: 'admin', tenants: '*' },
  { key: KEYS.operator, role: 'operator', tenants: ['73'] },
  { key: KEYS.viewer, role: 'viewer', tenants: ['73'] },
  { key: KEYS.other, role: 'operator', tenants: ['4'] },
];
type Who = 'none' | 'wrong' | 'viewer' | 'operator' | 'other' | 'admin';
const WHO: Who[] = ['none', 'wrong', 'viewer', 'operator', 'other', 'admin'];
const headersOf = (who: Who): Record<string, string> =>
  who === 'none' ? {} : who === 'wrong' ? { authorization: 'Bearer not-a-real-key-000000000' } : { 'x-api-key': KEYS[who] };

let server: Awaited<ReturnType<typeof startServer>>;
let demo: DemoApp;
const temp = tempDir();
const previousScale = process.env.TASKYARD_DEMO_TIME_SCALE;

/** A waiting task of tenant 73 (delayed an hour), made fresh for each case. */
async function pendingTask(): Promise<string> {
  const res = await http(`${server.url}/api/tasks`, {
    headers: headersOf('admin'),
    body: { task_type: 'sii.sync_documents', params: { company_id: '73' }, countdown: 3600 },
  });
  expect(res.status).toBe(202);
  return res.body.task_id;
}
async function revokedTask(): Promise<string> {
  const id = await pendingTask();
  expect((await http(`${server.url}/api/tasks/${id}/stop`, { headers: headersOf('admin'), body: { hard: false } })).status).toBe(200);
  return id;
}
async function reconciliationRow(): Promise<number> {
  const res = await http(`${server.url}/reconciliation-tasks/start/`, { headers: headersOf('admin'), body: { tenant_id: 73 } });
  expect(res.status).toBe(201);
  return res.body.id;
}

const launch73 = { task_type: 'sii.sync_documents', params: { company_id: '73' }, countdown: 3600 };

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Builds the path (and makes whatever the case needs). */
  path: string | (() => Promise<string>);
  body?: unknown;
  /** Expected status per principal; `none` and `wrong` are always 401. */
  expect: Partial<Record<Who, number>>;
  /** For lists: the other tenant gets 200 but must not see tenant 73's data. */
  otherSeesNothing?: (body: any) => boolean; // eslint-disable-line @typescript-eslint/no-explicit-any
  sse?: boolean;
}

const READ = { viewer: 200, operator: 200, other: 404, admin: 200 };
const WRITE = (ok: number) => ({ viewer: 403, operator: ok, other: 404, admin: ok });
const LAUNCH = (ok: number) => ({ viewer: 403, operator: ok, other: 403, admin: ok });

const cases: Case[] = [
  // Native and unified API
  { name: 'list tasks', method: 'GET', path: '/api/tasks/?company_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, otherSeesNothing: (b) => b.tasks.length === 0 },
  { name: 'task detail', method: 'GET', path: async () => `/api/tasks/${await pendingTask()}/`, expect: READ },
  { name: 'task status', method: 'GET', path: async () => `/api/tasks/${await pendingTask()}/status`, expect: READ },
  { name: 'launch', method: 'POST', path: '/api/tasks', body: launch73, expect: LAUNCH(202) },
  { name: 'batch launch', method: 'POST', path: '/api/tasks/batch', body: { tasks: [launch73] }, expect: LAUNCH(202) },
  { name: 'stop', method: 'POST', path: async () => `/api/tasks/${await pendingTask()}/stop/`, body: { hard: true }, expect: WRITE(200) },
  { name: 'cancel', method: 'POST', path: async () => `/api/tasks/${await pendingTask()}/cancel`, expect: WRITE(200) },
  { name: 'retry', method: 'POST', path: async () => `/api/tasks/${await revokedTask()}/retry`, expect: WRITE(202) },
  { name: 'statistics', method: 'GET', path: '/api/tasks/statistics/', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, otherSeesNothing: (b) => !b.by_name['sii.sync_documents'] && b.workers === undefined },
  { name: 'types', method: 'GET', path: '/api/tasks/types/', expect: { viewer: 200, operator: 200, other: 200, admin: 200 } },
  { name: 'event stream of a task', method: 'GET', path: async () => `/api/tasks/events?task_id=${await pendingTask()}`, expect: READ, sse: true },
  // Celery-style API
  { name: 'celery list', method: 'GET', path: '/api/celery/tasks', expect: { viewer: 200, operator: 200, other: 200, admin: 200 } },
  { name: 'celery launch', method: 'POST', path: '/api/celery/tasks/launch', body: launch73, expect: LAUNCH(200) },
  { name: 'celery status', method: 'GET', path: async () => `/api/celery/tasks/${await pendingTask()}`, expect: READ },
  { name: 'celery revoke', method: 'DELETE', path: async () => `/api/celery/tasks/${await pendingTask()}?terminate=true`, expect: WRITE(200) },
  { name: 'celery retry', method: 'POST', path: async () => `/api/celery/tasks/${await revokedTask()}/retry`, expect: WRITE(200) },
  { name: 'celery stats', method: 'GET', path: '/api/celery/stats', expect: { viewer: 403, operator: 403, other: 403, admin: 200 } },
  // Company tracker and onboarding
  { name: 'company task status', method: 'GET', path: '/api/v1/companies/73/task_status/', expect: READ },
  { name: 'onboarding finalize', method: 'POST', path: '/api/v1/companies/73/onboarding/finalize/', expect: WRITE(202) },
  // Migration-guide triggers: tenant-less maintenance, so only unscoped keys may launch them
  { name: 'rating recalculate', method: 'POST', path: '/api/tasks/rating/recalculate', expect: { viewer: 403, operator: 403, other: 403, admin: 202 } },
  // Legacy reconciliation module
  { name: 'reconciliation start', method: 'POST', path: '/reconciliation-tasks/start/', body: { tenant_id: 73 }, expect: LAUNCH(201) },
  { name: 'reconciliation list', method: 'GET', path: '/reconciliation-tasks/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, otherSeesNothing: (b) => b.results.length === 0 },
  { name: 'reconciliation detail', method: 'GET', path: async () => `/reconciliation-tasks/${await reconciliationRow()}/`, expect: READ },
  { name: 'reconciliation cancel', method: 'POST', path: async () => `/reconciliation-tasks/${await reconciliationRow()}/cancel/`, body: { reason: 'matrix' }, expect: WRITE(200) },
  { name: 'reconciliation queued', method: 'GET', path: '/reconciliation-tasks/queued/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, otherSeesNothing: (b) => b.count === 0 },
  { name: 'reconciliation counts', method: 'GET', path: '/reconciliation-tasks/task_counts/?tenant_id=73', expect: { viewer: 200, operator: 200, other: 200, admin: 200 }, otherSeesNothing: (b) => b.total === 0 },
];

beforeAll(async () => {
  process.env.TASKYARD_DEMO_TIME_SCALE = '5'; // reconciliation runs stay live for the whole matrix
  server = await startServer({
    tasks: demoTasks,
    categoryRules,
    apiKeys,
    plugins: (yard) => {
      demo = createDemoApp(yard, { ledgerFile: join(temp.dir, 'ledger.db') });
      return demo.plugins;
    },
  });
});

afterAll(async () => {
  await server.close();
  await demo.close();
  temp.cleanup();
  process.env.TASKYARD_DEMO_TIME_SCALE = previousScale;
});

async function request(c: Case, who: Who): Promise<{ status: number; body: unknown }> {
  const path = typeof c.path === 'string' ? c.path : await c.path();
  const headers = headersOf(who);
  if (c.sse) {
    const controller = new AbortController();
    const res = await fetch(`${server.url}${path}`, { headers, signal: controller.signal });
    controller.abort();
    return { status: res.status, body: null };
  }
  const res = await http(`${server.url}${path}`, { method: c.method, headers, body: c.body ?? (c.method === 'POST' ? {} : undefined) });
  return { status: res.status, body: res.body };
}

describe('tenant isolation matrix', () => {
  for (const c of cases) {
    for (const who of WHO) {
      const expected = who === 'none' || who === 'wrong' ? 401 : c.expect[who]!;
      it(`${c.method} ${c.name} as ${who} -> ${expected}`, async () => {
        const res = await request(c, who);
        expect(res.status, JSON.stringify(res.body)).toBe(expected);
        if (who === 'other' && c.otherSeesNothing) expect(c.otherSeesNothing(res.body), JSON.stringify(res.body)).toBe(true);
      });
    }
  }

  it('docs, OpenAPI and health need no key', async () => {
    for (const path of ['/openapi.json', '/docs', '/health']) {
      expect((await fetch(`${server.url}${path}`)).status, path).toBe(200);
    }
  });
});
