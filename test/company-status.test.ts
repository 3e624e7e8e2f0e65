import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCompany } from '../demo/companies.js';
import { demoRoutes } from '../demo/routes.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { ONBOARDING_TASKS } from '../demo/tasks/onboarding.js';
import type { ApiKey } from '../src/http/auth.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import { companyRoutes } from '../src/http/routes/companies.js';
import type { Taskyard } from '../src/taskyard.js';
import { eventually, http, startServer, withTimeScale } from './helpers.js';

// Seed background-task-tracking: onboarding finalize, then the frontend's polling of
// /api/v1/companies/{id}/task_status/ until all_completed. Real server, real SQLite, demo tasks.

const UUID = '123e4567-e89b-12d3-a456-426614174000';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const STATUSES = ['pending', 'running', 'success', 'failed', 'cancelled'];
const RANK: Record<string, number> = { pending: 0, running: 1, success: 2, failed: 2, cancelled: 2 };

const plugins = (yard: Taskyard) => [
  (app: FastifyInstance) => celeryRoutes(app, yard),
  (app: FastifyInstance) => companyRoutes(app, yard, { companyName: (id) => findCompany(id)?.name ?? null }),
  (app: FastifyInstance) => demoRoutes(app, yard),
];

let server: Awaited<ReturnType<typeof startServer>>;

beforeAll(async () => {
  server = await startServer({ tasks: demoTasks, categoryRules, plugins });
});
afterAll(async () => {
  await server?.close();
});

/** Every field of a tracked task, as the seed shows it. */
function expectItem(item: any) {
  expect(Object.keys(item).sort()).toEqual(['duration_seconds', 'name', 'progress', 'started_at', 'status', 'task_id', 'task_type']);
  expect(typeof item.task_id).toBe('string');
  expect(typeof item.name).toBe('string');
  expect(STATUSES).toContain(item.status);
  expect(item.progress).toBeGreaterThanOrEqual(0);
  expect(item.progress).toBeLessThanOrEqual(100);
  expect(typeof item.task_type).toBe('string');
  if (item.started_at === null) {
    expect(item.duration_seconds).toBeNull();
  } else {
    expect(item.started_at).toMatch(ISO);
    expect(typeof item.duration_seconds).toBe('number');
    expect(item.duration_seconds).toBeGreaterThanOrEqual(0);
  }
}

/** The whole response, as the seed shows it, and its internal consistency. */
function expectStatusShape(body: any, companyId: string | number, companyName: string) {
  expect(Object.keys(body).sort()).toEqual(['active_tasks', 'all_completed', 'checked_at', 'company_id', 'company_name', 'summary']);
  expect(Object.keys(body.summary).sort()).toEqual(['active_count', 'completed_count', 'recent_completed', 'total_tasks']);
  expect(body.company_id).toBe(companyId);
  expect(body.company_name).toBe(companyName);
  expect(body.checked_at).toMatch(ISO);
  for (const item of body.active_tasks) {
    expectItem(item);
    expect(['pending', 'running']).toContain(item.status);
  }
  for (const item of body.summary.recent_completed) {
    expectItem(item);
    expect(['success', 'failed', 'cancelled']).toContain(item.status);
  }
  const finished = body.summary.recent_completed.map((i: any) => Date.parse(i.started_at) + i.duration_seconds * 1000);
  for (let i = 1; i < finished.length; i++) expect(finished[i - 1]).toBeGreaterThanOrEqual(finished[i] - 20); // newest first
  expect(body.summary.active_count).toBe(body.active_tasks.length);
  expect(body.summary.total_tasks).toBe(body.summary.active_count + body.summary.completed_count);
  expect(body.all_completed).toBe(body.summary.active_count === 0);
}

describe('onboarding finalize, then task_status until all_completed', () => {
  it('launches the four tracked tasks and reports them pending/running → success', async () => {
    const fin = await http(`${server.url}/api/v1/companies/73/onboarding/finalize/`, { method: 'POST' });
    expect(fin.status).toBe(202);
    expect(fin.body).toEqual({
      company_id: 73,
      tasks: ONBOARDING_TASKS.map((t) => ({ task_id: expect.any(String), task_type: t.name, name: t.displayName })),
      status_url: '/api/v1/companies/73/task_status/',
    });
    expect(fin.body.tasks.map((t: any) => t.name)).toEqual([
      'Creando procesos tributarios',
      'Sincronizando documentos SII',
      'Sincronizando historial completo de documentos',
      'Sincronizando formularios históricos',
    ]);
    const ids: string[] = fin.body.tasks.map((t: any) => t.task_id);

    // The frontend's loop (every 5-10 s in the seed; faster here).
    const seen = new Map<string, string[]>(ids.map((id) => [id, []]));
    let body: any;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await http(`${server.url}${fin.body.status_url}`);
      expect(res.status).toBe(200);
      body = res.body;
      expectStatusShape(body, 73, 'Example Company');
      expect(body.summary.total_tasks).toBe(4);
      // Active tasks are listed in launch order.
      const activeIds = body.active_tasks.map((t: any) => t.task_id);
      expect(activeIds).toEqual(ids.filter((id) => activeIds.includes(id)));
      for (const item of [...body.active_tasks, ...body.summary.recent_completed]) {
        const history = seen.get(item.task_id)!;
        if (history.at(-1) !== item.status) history.push(item.status);
        const t = fin.body.tasks.find((x: any) => x.task_id === item.task_id);
        expect(item.name).toBe(t.name);
        expect(item.task_type).toBe(t.task_type);
      }
      if (body.all_completed) break;
      if (Date.now() > deadline) throw new Error(`not all completed: ${JSON.stringify(body)}`);
      await new Promise((r) => setTimeout(r, 15));
    }

    for (const [id, history] of seen) {
      // Never backwards, ends in success, and was seen live before.
      for (let i = 1; i < history.length; i++) expect(RANK[history[i]!]).toBeGreaterThan(RANK[history[i - 1]!]!);
      expect(history.at(-1), id).toBe('success');
      expect(history.length, `${id}: ${history.join(' → ')}`).toBeGreaterThan(1);
    }
    expect([...seen.values()].some((h) => h.includes('running'))).toBe(true);

    expect(body.active_tasks).toEqual([]);
    expect(body.summary).toMatchObject({ total_tasks: 4, active_count: 0, completed_count: 4 });
    expect(body.summary.recent_completed.map((t: any) => t.task_id).sort()).toEqual([...ids].sort());
    for (const item of body.summary.recent_completed) {
      expect(item).toMatchObject({ status: 'success', progress: 100 });
      expect(item.duration_seconds).toBeGreaterThan(0);
    }
    // The longest task (full history) finishes last, so it is listed first.
    expect(body.summary.recent_completed[0].task_type).toBe('sync_sii_documents_full_history_task');
  });

  it('a UUID company keeps its id as a string; cancelled and failed runs map to the tracker words', async () => {
    const url = `${server.url}/api/v1/companies/${UUID}/task_status/`;
    const empty = await http(url);
    expect(empty.status).toBe(200);
    expectStatusShape(empty.body, UUID, 'Demo Company SpA');
    expect(empty.body.all_completed).toBe(true); // nothing live, so a poller stops
    expect(empty.body.summary.total_tasks).toBe(0);

    const launch = await http(`${server.url}/api/celery/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: UUID, months: 12 } } });
    const taskId = launch.body.task_id;
    await eventually(async () => (await http(url)).body.active_tasks.some((t: any) => t.task_id === taskId && t.status === 'running'), 10_000, 10);
    const running = (await http(url)).body;
    expectStatusShape(running, UUID, 'Demo Company SpA');
    expect(running.all_completed).toBe(false);
    expect(running.active_tasks[0]).toMatchObject({ task_id: taskId, name: 'Sincronizando documentos SII', task_type: 'sii.sync_documents', status: 'running' });

    await http(`${server.url}/api/celery/tasks/${taskId}?terminate=true`, { method: 'DELETE' });
    const after = (await http(url)).body;
    expectStatusShape(after, UUID, 'Demo Company SpA');
    expect(after.all_completed).toBe(true);
    expect(after.summary.recent_completed[0]).toMatchObject({ task_id: taskId, status: 'cancelled' });
  });

  it('a company with no runs at all is all_completed, so a poller stops', async () => {
    const res = await http(`${server.url}/api/v1/companies/4/task_status/`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active_tasks: [], all_completed: true, summary: { total_tasks: 0, active_count: 0, completed_count: 0 } });
  });

  it('finalize is idempotent while its runs are live: a second call answers 200 with them, launching nothing', async () => {
    const finalize = () => http(`${server.url}/api/v1/companies/4/onboarding/finalize/`, { method: 'POST' });
    const status = async () => (await http(`${server.url}/api/v1/companies/4/task_status/`)).body;
    const ids = (body: any) => body.tasks.map((t: any) => t.task_id);
    const first = await withTimeScale('1', async () => {
      // Many at once (an impatient user), then one more while they run.
      const burst = await Promise.all(Array.from({ length: 10 }, () => finalize()));
      expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 202]);
      const launched = burst.find((r) => r.status === 202)!;
      for (const repeated of burst) expect(repeated.body).toEqual(launched.body);
      const third = await finalize();
      expect(third.status).toBe(200);
      expect(ids(third.body)).toEqual(ids(launched.body));
      expect(third.body.tasks.map((t: any) => t.task_type)).toEqual(ONBOARDING_TASKS.map((t) => t.name));
      expect((await status()).summary.total_tasks).toBe(4);
      return launched.body;
    });
    // Once none is live, finalize launches again.
    for (const id of ids(first)) await http(`${server.url}/api/celery/tasks/${id}?terminate=true`, { method: 'DELETE' });
    await eventually(async () => (await status()).all_completed);
    const again = await finalize();
    expect(again.status).toBe(202);
    expect(ids(again.body).some((id: string) => ids(first).includes(id))).toBe(false);
    expect((await status()).summary.total_tasks).toBe(8);
  });

  it('answers 404 for an unknown company, on both endpoints', async () => {
    const status = await http(`${server.url}/api/v1/companies/999999/task_status/`);
    expect(status.status).toBe(404);
    expect(typeof status.body.detail).toBe('string');
    const fin = await http(`${server.url}/api/v1/companies/999999/onboarding/finalize/`, { method: 'POST' });
    expect(fin.status).toBe(404);
    expect(typeof fin.body.detail).toBe('string');
  });

  it('ignores the trailing slash', async () => {
    expect((await http(`${server.url}/api/v1/companies/4/task_status`)).status).toBe(200);
  });
});

describe('tenant scope', () => {
  const keys: ApiKey[] = [
    { key: 'admin-key-0123456789', role: 'admin', tenants: '*' },
    { key: 'tenant73-key-0123456789', role: 'operator', tenants: ['73'] },
    { key: 'viewer-key-0123456789', role: 'viewer', tenants: '*' },
  ];
  let secured: Awaited<ReturnType<typeof startServer>>;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  beforeAll(async () => {
    secured = await startServer({ tasks: demoTasks, categoryRules, plugins, apiKeys: keys });
  });
  afterAll(async () => {
    await secured?.close();
  });

  it("a key without the company's tenant gets 404, on both endpoints", async () => {
    const t73 = as('tenant73-key-0123456789');
    expect((await http(`${secured.url}/api/v1/companies/73/task_status/`, { headers: t73 })).status).toBe(200);
    expect((await http(`${secured.url}/api/v1/companies/4/task_status/`, { headers: t73 })).status).toBe(404);
    expect((await http(`${secured.url}/api/v1/companies/4/onboarding/finalize/`, { method: 'POST', headers: t73 })).status).toBe(404);
    const own = await http(`${secured.url}/api/v1/companies/73/onboarding/finalize/`, { method: 'POST', headers: t73 });
    expect(own.status).toBe(202);
    // A viewer reads but cannot launch.
    expect((await http(`${secured.url}/api/v1/companies/73/onboarding/finalize/`, { method: 'POST', headers: as('viewer-key-0123456789') })).status).toBe(403);
    const all = (await http(`${secured.url}/api/v1/companies/73/task_status/`, { headers: as('viewer-key-0123456789') })).body;
    expect(all.summary.total_tasks).toBe(4);
    for (const t of own.body.tasks) await http(`${secured.url}/api/celery/tasks/${t.task_id}?terminate=true`, { method: 'DELETE', headers: as('admin-key-0123456789') });
  });
});

describe('migration guide triggers', () => {
  const trigger = async (path: string, body?: unknown) => {
    const res = await http(`${server.url}${path}`, { method: 'POST', body });
    return res;
  };
  const finalState = async (taskId: string) =>
    eventually(async () => {
      const s = (await http(`${server.url}/api/celery/tasks/${taskId}`)).body;
      return ['SUCCESS', 'FAILURE'].includes(s.status) ? s : null;
    });

  it('rating/recalculate launches calculate_all_ratings, or calculate_rating for one resource', async () => {
    const all = await trigger('/api/tasks/rating/recalculate');
    expect(all.status).toBe(202);
    expect(all.body).toEqual({ task_id: expect.any(String), task_type: 'calculate_all_ratings', status: 'PENDING' });
    const one = await trigger('/api/tasks/rating/recalculate', { resource_id: 'res-1' });
    expect(one.status).toBe(202);
    expect(one.body).toEqual({ task_id: expect.any(String), task_type: 'calculate_rating', status: 'PENDING' });
    expect((await finalState(one.body.task_id)).result).toMatchObject({ resource_id: 'res-1', rating: expect.any(Number) });
    expect((await finalState(all.body.task_id)).status).toBe('SUCCESS');
    const bad = await trigger('/api/tasks/rating/recalculate', { resource_id: 42 });
    expect(bad.status).toBe(422);
  });

  it('impressions/sync and cleanup/sessions (optional max_age_hours)', async () => {
    const sync = await trigger('/api/tasks/impressions/sync');
    expect(sync.status).toBe(202);
    expect(sync.body).toEqual({ task_id: expect.any(String), task_type: 'sync_impressions_from_redis', status: 'PENDING' });
    const cleanupDefault = await trigger('/api/tasks/cleanup/sessions');
    expect(cleanupDefault.body).toEqual({ task_id: expect.any(String), task_type: 'cleanup_sessions', status: 'PENDING' });
    const cleanup = await trigger('/api/tasks/cleanup/sessions', { max_age_hours: 6 });
    expect(cleanup.status).toBe(202);
    expect((await finalState(cleanup.body.task_id)).result).toMatchObject({ max_age_hours: 6 });
    expect((await finalState(cleanupDefault.body.task_id)).result).toMatchObject({ max_age_hours: 24 });
    expect((await finalState(sync.body.task_id)).status).toBe('SUCCESS');
    const bad = await trigger('/api/tasks/cleanup/sessions', { max_age_hours: 0 });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toMatch(/^Invalid parameters: max_age_hours/);
  });
});
