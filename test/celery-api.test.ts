import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCompany } from '../demo/companies.js';
import { demoRoutes } from '../demo/routes.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import type { ApiKey } from '../src/http/auth.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { companyRoutes } from '../src/http/routes/companies.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer } from './helpers.js';

// The seed celery-tasks-api's curl, Python and TypeScript flows, against a real server and a
// real SQLite ledger running the demo tasks (TASKYARD_DEMO_TIME_SCALE=0.05, from vitest.config).

const UUID = '123e4567-e89b-12d3-a456-426614174000';

const plugins = (yard: Taskyard) => [
  (app: FastifyInstance) => celeryRoutes(app, yard),
  (app: FastifyInstance) => companyRoutes(app, yard, { companyName: (id) => findCompany(id)?.name ?? null }),
  (app: FastifyInstance) => demoRoutes(app, yard),
];

const STATUS_KEYS = ['error', 'meta', 'result', 'status', 'task_id', 'traceback'];

let server: Awaited<ReturnType<typeof startServer>>;
let BASE_URL: string;

beforeAll(async () => {
  server = await startServer({ tasks: demoTasks, categoryRules, plugins });
  BASE_URL = `${server.url}/api/celery`;
});
afterAll(async () => {
  await server?.close();
});

async function launch(taskType: string, params: unknown, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await http(`${BASE_URL}/tasks/launch`, { body: { task_type: taskType, params, ...extra } });
  expect(res.status).toBe(200);
  return res.body.task_id;
}

const status = async (taskId: string) => {
  const res = await http(`${BASE_URL}/tasks/${taskId}`);
  expect(res.status).toBe(200);
  expect(Object.keys(res.body).sort()).toEqual(STATUS_KEYS);
  return res.body;
};

/** The seed's polling loop, with a short interval; returns every response seen. */
async function poll(taskId: string, until: string[] = ['SUCCESS', 'FAILURE'], intervalMs = 10, timeoutMs = 15_000) {
  const seen: any[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await status(taskId);
    seen.push(body);
    if (until.includes(body.status)) return seen;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${body.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

const waitForState = (taskId: string, state: string) => eventually(async () => (await status(taskId)).status === state, 10_000, 10);

describe('GET /api/celery/tasks', () => {
  it('lists every task with parameters derived from its schema, as in the seed example', async () => {
    const res = await http(`${BASE_URL}/tasks`);
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
    expect(res.body.length).toBe(demoTasks.length);
    for (const t of res.body) {
      expect(Object.keys(t).sort()).toEqual(['description', 'name', 'parameters', 'task_type']);
      expect(t.name).toBe(t.task_type);
    }
    const sync = res.body.find((t: any) => t.task_type === 'sii.sync_documents');
    expect(sync.name).toBe('sii.sync_documents');
    expect(sync.description).toBe('Sync tax documents (purchases, sales, honorarios) for a single company');
    const p = sync.parameters;
    // The seed's fields exactly; a description, where the schema has one, is extra help.
    const withOptionalDescription = (seed: Record<string, unknown>, got: any) =>
      got?.description === undefined ? seed : { ...seed, description: expect.any(String) };
    expect(p).toEqual({
      company_id: { type: 'string', required: true, description: 'Company UUID' },
      months: withOptionalDescription({ type: 'integer', required: false, default: 1, min: 1, max: 12 }, p.months),
      month_offset: withOptionalDescription({ type: 'integer', required: false, default: 0, min: 0 }, p.month_offset),
    });
    const names = res.body.map((t: any) => t.task_type);
    expect(names).toEqual(expect.arrayContaining(['sii.sync_documents_all_companies', 'sii.sync_f29', 'sii.sync_f29_all_companies']));
  });
});

describe('launch and poll (the seed flows)', () => {
  it('curl flow: launch, poll until SUCCESS, read the result', async () => {
    const res = await http(`${BASE_URL}/tasks/launch`, {
      body: { task_type: 'sii.sync_documents', params: { company_id: UUID, months: 3, month_offset: 0 } },
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      task_id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      task_type: 'sii.sync_documents',
      status: 'PENDING',
      message: 'Task sii.sync_documents launched successfully',
    });
    const seen = await poll(res.body.task_id);
    const last = seen.at(-1);
    expect(last).toEqual({
      task_id: res.body.task_id,
      status: 'SUCCESS',
      result: {
        success: true,
        compras: { total: expect.any(Number), period: expect.stringMatching(/^\d{6}$/) },
        ventas: { total: expect.any(Number), period: expect.stringMatching(/^\d{6}$/) },
        honorarios: { total: expect.any(Number) },
      },
      error: null,
      traceback: null,
      meta: null,
    });
    for (const body of seen) expect(['PENDING', 'STARTED', 'SUCCESS']).toContain(body.status);
  });

  it('Python flow (months: 1): polls for SUCCESS and prints the result', async () => {
    const taskId = await launch('sii.sync_documents', { company_id: UUID, months: 1 });
    const last = (await poll(taskId)).at(-1);
    expect(last.status).toBe('SUCCESS');
    expect(last.result.success).toBe(true);
  });

  it('TypeScript flow: waitForTask resolves with the result; STARTED shows progress in meta', async () => {
    async function launchTask(taskType: string, params: any): Promise<string> {
      const response = await fetch(`${BASE_URL}/tasks/launch`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ task_type: taskType, params }),
      });
      const data = await response.json();
      return data.task_id;
    }
    const started: any[] = [];
    async function waitForTask(taskId: string, pollInterval = 10) {
      while (true) {
        const s = await (await fetch(`${BASE_URL}/tasks/${taskId}`)).json();
        if (s.status === 'STARTED') started.push(s);
        if (s.status === 'SUCCESS') return s.result;
        else if (s.status === 'FAILURE') throw new Error(s.error);
        await new Promise((resolve) => setTimeout(resolve, pollInterval));
      }
    }
    // Twelve months: long enough (about 0.6 s at this scale) to watch it run.
    const taskId = await launchTask('sii.sync_documents', { company_id: UUID, months: 12 });
    const result = await waitForTask(taskId);
    expect(result.success).toBe(true);
    expect(started.length).toBeGreaterThan(0);
    for (const s of started) {
      expect(s).toMatchObject({ result: null, error: null, traceback: null });
      expect(Object.keys(s.meta).sort()).toEqual(['info', 'message', 'progress']);
      expect(s.meta.info).toBe('Task is running');
      expect(typeof s.meta.progress).toBe('number');
      expect(s.meta.message === null || typeof s.meta.message === 'string').toBe(true);
    }
    expect(started.some((s) => s.meta.progress > 0 && s.meta.progress < 100 && typeof s.meta.message === 'string')).toBe(true);
  });

  it('an unknown company fails with "Company not found" and a traceback', async () => {
    // The seed's own testing example uses this id.
    const taskId = await launch('sii.sync_documents', { company_id: 'test-company-id', months: 1 });
    const last = (await poll(taskId)).at(-1);
    expect(last).toEqual({
      task_id: taskId,
      status: 'FAILURE',
      result: null,
      error: 'Company not found',
      traceback: expect.stringContaining('Company not found'),
      meta: null,
    });
    expect(last.traceback.split('\n').length).toBeGreaterThan(1);
  });

  it('a delayed launch is PENDING with an eta in meta', async () => {
    const taskId = await launch('sii.sync_f29', { company_id: UUID, year: '2024' }, { countdown: 60 });
    const body = await status(taskId);
    expect(body).toEqual({
      task_id: taskId,
      status: 'PENDING',
      result: null,
      error: null,
      traceback: null,
      meta: { info: 'Task is waiting to be executed', eta: expect.any(String) },
    });
    expect(Date.parse(body.meta.eta)).toBeGreaterThan(Date.now() + 50_000);
    await http(`${BASE_URL}/tasks/${taskId}`, { method: 'DELETE' });
  });
});

describe('errors', () => {
  it('an unknown task id is a 404, not PENDING', async () => {
    for (const id of ['non-existent-id', '0190f5a2-0000-7000-8000-000000000000']) {
      const res = await http(`${BASE_URL}/tasks/${id}`);
      expect(res.status).toBe(404);
      expect(res.body.detail).toContain(id);
    }
  });

  it('invalid params are a 422 with the seed detail', async () => {
    const res = await http(`${BASE_URL}/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: {} } });
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe('Invalid parameters: company_id is required');
    expect(res.body.errors).toEqual([{ field: 'company_id', message: 'is required' }]);

    const months = await http(`${BASE_URL}/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: UUID, months: 13 } } });
    expect(months.status).toBe(422);
    expect(months.body.detail).toMatch(/^Invalid parameters: months/);

    const missingType = await http(`${BASE_URL}/tasks/launch`, { body: { params: {} } });
    expect(missingType.status).toBe(422);
    expect(missingType.body.detail).toContain('task_type');
  });

  it('an unknown task type is a 400 with a detail', async () => {
    const res = await http(`${BASE_URL}/tasks/launch`, { body: { task_type: 'sii.does_not_exist', params: {} } });
    expect(res.status).toBe(400);
    expect(res.body.detail).toContain('sii.does_not_exist');
  });

  it('malformed JSON is a 400', async () => {
    const res = await http(`${BASE_URL}/tasks/launch`, { raw: '{"task_type": ', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(typeof res.body.detail).toBe('string');
  });
});

describe('revoke', () => {
  const long = () => launch('sii.sync_documents_all_companies', { months: 12 });

  it('soft revoke (terminate=false) of a running task ends it REVOKED', async () => {
    const taskId = await long();
    await waitForState(taskId, 'STARTED');
    const res = await http(`${BASE_URL}/tasks/${taskId}?terminate=false`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ task_id: taskId, status: 'revoked', terminate: false, message: `Task ${taskId} has been revoked` });
    const last = (await poll(taskId, ['REVOKED', 'SUCCESS', 'FAILURE'])).at(-1);
    expect(last).toEqual({ task_id: taskId, status: 'REVOKED', result: null, error: expect.stringMatching(/^Revoked/), traceback: null, meta: null });
  });

  it('terminate=true stops a running task at once', async () => {
    const taskId = await long();
    await waitForState(taskId, 'STARTED');
    const res = await http(`${BASE_URL}/tasks/${taskId}?terminate=true&reason=${encodeURIComponent('operator asked')}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ task_id: taskId, status: 'revoked', terminate: true, message: `Task ${taskId} has been revoked` });
    const body = await status(taskId);
    expect(body.status).toBe('REVOKED');
    expect(body.error).toBe('Revoked: operator asked');
  });

  it('the seed curl (no query) revokes a waiting task, durably', async () => {
    const taskId = await launch('sii.sync_documents', { company_id: UUID }, { countdown: 30 });
    const res = await http(`${BASE_URL}/tasks/${taskId}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body.terminate).toBe(false);
    expect((await status(taskId)).status).toBe('REVOKED');
  });

  it('is a no-op on a finished task (as in Celery), 404 for an unknown one and 422 for a bad terminate', async () => {
    const taskId = await launch('sii.sync_documents', { company_id: UUID });
    await poll(taskId);
    const finished = await http(`${BASE_URL}/tasks/${taskId}`, { method: 'DELETE' });
    expect(finished.status).toBe(200);
    expect(finished.body).toEqual({ task_id: taskId, status: 'SUCCESS', terminate: false, message: expect.stringContaining('already finished') });
    expect((await http(`http://127.0.0.1:${new URL(BASE_URL).port}/api/tasks/${taskId}`)).body.state).toBe('SUCCESS');
    expect((await http(`${BASE_URL}/tasks/non-existent-id`, { method: 'DELETE' })).status).toBe(404);
    const bad = await http(`${BASE_URL}/tasks/${taskId}?terminate=maybe`, { method: 'DELETE' });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toContain('terminate');
  });
});

describe('retry', () => {
  it('puts a failed task back in the queue under the same id', async () => {
    const taskId = await launch('sii.sync_documents', { company_id: 'test-company-id' });
    await poll(taskId);
    const res = await http(`${BASE_URL}/tasks/${taskId}/retry`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ task_id: taskId, task_type: 'sii.sync_documents', status: 'PENDING', message: expect.any(String) });
    // It runs again (and fails again: the company still does not exist).
    const last = (await poll(taskId)).at(-1);
    expect(last.status).toBe('FAILURE');
    expect(last.error).toBe('Company not found');
  });

  it('refuses a task that did not fail (409) and an unknown one (404)', async () => {
    const taskId = await launch('sii.sync_documents', { company_id: UUID });
    await poll(taskId);
    expect((await http(`${BASE_URL}/tasks/${taskId}/retry`, { method: 'POST' })).status).toBe(409);
    expect((await http(`${BASE_URL}/tasks/non-existent-id/retry`, { method: 'POST' })).status).toBe(404);
  });
});

describe('GET /api/celery/stats', () => {
  it('shows active and scheduled runs, registered tasks and worker stats with the real pid', async () => {
    const running = await launch('sii.sync_documents_all_companies', { months: 12 });
    const scheduled = await launch('sii.sync_documents', { company_id: UUID, months: 2 }, { countdown: 120 });
    await waitForState(running, 'STARTED');

    const res = await http(`${BASE_URL}/stats`);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['active_tasks', 'registered_tasks', 'scheduled_tasks', 'worker_stats']);
    const workers = Object.keys(res.body.worker_stats);
    expect(workers.length).toBe(1);
    const worker = workers[0]!;
    expect(worker).toMatch(/^local@/);

    const active = res.body.active_tasks[worker];
    const entry = active.find((a: any) => a.id === running);
    expect(entry).toMatchObject({ id: running, name: 'sii.sync_documents_all_companies', args: [], kwargs: { months: 12, month_offset: 0 } });
    expect(entry.time_start).toBeGreaterThan(Date.now() / 1000 - 60);

    const waiting = res.body.scheduled_tasks[worker].find((s: any) => s.request.id === scheduled);
    expect(waiting).toMatchObject({
      eta: expect.any(String),
      request: { id: scheduled, name: 'sii.sync_documents', args: [], kwargs: { company_id: UUID, months: 2, month_offset: 0 } },
    });
    expect(Date.parse(waiting.eta)).toBeGreaterThan(Date.now() + 60_000);

    expect(res.body.registered_tasks).toEqual(
      expect.arrayContaining(['sii.sync_documents', 'sii.sync_documents_all_companies', 'sii.sync_f29', 'sii.sync_f29_all_companies']),
    );
    expect(res.body.worker_stats[worker]).toMatchObject({
      total: expect.any(Number),
      pool: { 'max-concurrency': expect.any(Number), processes: [process.pid] },
    });
    expect(res.body.worker_stats[worker].total).toBeGreaterThan(0);

    for (const id of [running, scheduled]) await http(`${BASE_URL}/tasks/${id}?terminate=true`, { method: 'DELETE' });
  });
});

describe('roles and tenant scope', () => {
  const keys: ApiKey[] = [
    { key: 'admin-key-0123456789', role: 'admin', tenants: '*' },
    { key: 'operator-key-0123456789', role: 'operator', tenants: '*' },
    { key: 'viewer-key-0123456789', role: 'viewer', tenants: '*' },
    { key: 'tenant73-key-0123456789', role: 'operator', tenants: ['73'] },
  ];
  let secured: Awaited<ReturnType<typeof startServer>>;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    secured = await startServer({ tasks: demoTasks, categoryRules, plugins, apiKeys: keys });
  });
  afterAll(async () => {
    await secured?.close();
  });

  it('stats need the admin role; launching needs operator', async () => {
    const url = `${secured.url}/api/celery`;
    expect((await http(`${url}/stats`)).status).toBe(401);
    expect((await http(`${url}/stats`, { headers: as('viewer-key-0123456789') })).status).toBe(403);
    expect((await http(`${url}/stats`, { headers: as('operator-key-0123456789') })).status).toBe(403);
    expect((await http(`${url}/stats`, { headers: as('admin-key-0123456789') })).status).toBe(200);
    const body = { task_type: 'sii.sync_documents', params: { company_id: '73' } };
    expect((await http(`${url}/tasks/launch`, { body, headers: as('viewer-key-0123456789') })).status).toBe(403);
    expect((await http(`${url}/tasks/launch`, { body, headers: as('operator-key-0123456789') })).status).toBe(200);
  });

  it("a tenant key sees and touches only its tenants' tasks", async () => {
    const url = `${secured.url}/api/celery`;
    const other = await http(`${url}/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: '4', months: 12 } }, headers: as('admin-key-0123456789') });
    const own = await http(`${url}/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: '73', months: 12 } }, headers: as('tenant73-key-0123456789') });
    expect(own.status).toBe(200);
    const t73 = as('tenant73-key-0123456789');
    expect((await http(`${url}/tasks/${own.body.task_id}`, { headers: t73 })).status).toBe(200);
    expect((await http(`${url}/tasks/${other.body.task_id}`, { headers: t73 })).status).toBe(404);
    expect((await http(`${url}/tasks/${other.body.task_id}`, { method: 'DELETE', headers: t73 })).status).toBe(404);
    expect((await http(`${url}/tasks/${other.body.task_id}/retry`, { method: 'POST', headers: t73 })).status).toBe(404);
    const foreign = await http(`${url}/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: '4' } }, headers: t73 });
    expect(foreign.status).toBeGreaterThanOrEqual(400);
    expect(foreign.status).toBeLessThan(500);
    for (const id of [own.body.task_id, other.body.task_id]) {
      await http(`${url}/tasks/${id}?terminate=true`, { method: 'DELETE', headers: as('admin-key-0123456789') });
    }
  });
});

describe('backend unavailable', () => {
  it('answers 503 with a detail, not 500', async () => {
    const down = await startServer({ tasks: demoTasks, categoryRules, plugins });
    try {
      await down.yard.store.close();
      const launched = await http(`${down.url}/api/celery/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: UUID } } });
      expect(launched.status).toBe(503);
      expect(launched.headers.get('retry-after')).toBeTruthy();
      expect(typeof launched.body.detail).toBe('string');
    } finally {
      await down.close().catch(() => {});
    }
  });
});
