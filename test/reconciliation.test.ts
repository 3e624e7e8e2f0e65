import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReconciliationModule, type ReconciliationModule } from '../demo/reconciliation/module.js';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { eventually, http, startServer, tempDir, withTimeScale } from './helpers.js';

// The legacy reconciliation module over a real server: its own SQLite table, kept in step with
// the ledger through Taskyard's public hooks only.

const ADMIN = 'admin-key-0123456789abcdef';
const TENANT_73 = 'tenant-73-operator-key-0123';
const VIEWER_4 = 'tenant-4-viewer-key-0123456';

let server: Awaited<ReturnType<typeof startServer>>;
let module: ReconciliationModule;
let temp: ReturnType<typeof tempDir>;

const api = (path: string, init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string>; key?: string } = {}) =>
  http(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${init.key ?? ADMIN}`, ...init.headers } });


const start = (body: unknown, key?: string) => api('/reconciliation-tasks/start/', { body, key });

async function untilStatus(id: number, status: string) {
  return eventually(async () => {
    const res = await api(`/reconciliation-tasks/${id}/`);
    return res.body.status === status ? res.body : null;
  });
}

/** Starts a row and waits until it ends in `status` (a run for company 999 fails). */
async function finishedRow(body: Record<string, unknown>, status: 'completed' | 'failed' = 'completed') {
  const res = await start(body);
  expect(res.status).toBe(201);
  return untilStatus(res.body.id, status);
}

/** Starts a row, waits until it runs (slowed down), and cancels it through the module. */
async function cancelledRow(tenant_id: number) {
  return withTimeScale('5', async () => {
    const res = await start({ tenant_id });
    await untilStatus(res.body.id, 'running');
    expect((await api(`/reconciliation-tasks/${res.body.id}/cancel/`, { body: {} })).status).toBe(200);
    return untilStatus(res.body.id, 'cancelled');
  });
}

beforeAll(async () => {
  temp = tempDir('taskyard-reconciliation-');
  server = await startServer({
    tasks: demoTasks,
    categoryRules,
    apiKeys: [
      { key: ADMIN, role: 'admin', tenants: '*' },
      { key: TENANT_73, role: 'operator', tenants: ['73'] },
      { key: VIEWER_4, role: 'viewer', tenants: ['4'] },
    ],
    plugins: (yard) => {
      module = createReconciliationModule({ yard, filename: join(temp.dir, 'reconciliation.db') });
      return [module.routes];
    },
  });
});

afterAll(async () => {
  await server?.close();
  await module?.close();
  temp?.cleanup();
});

describe('reconciliation module: start and completion', () => {
  it('starts with a numeric tenant id and the default mode, and copies the outcome when it completes', async () => {
    const res = await start({ tenant_id: 4, config: { tolerance: 0.01 } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      tenant_id: '4',
      mode: 'compare_two_engines',
      status: 'queued',
      config: { tolerance: 0.01 },
      pipeline: null,
      suggestions: null,
      stats: null,
      error_message: null,
      progress: 0,
      started_at: null,
      completed_at: null,
    });
    expect(typeof res.body.id).toBe('number');
    expect(res.body.task_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(res.body.created_at)).not.toBeNaN();

    const done = await untilStatus(res.body.id, 'completed');
    expect(done.task_id).toBe(res.body.task_id);
    expect(done.progress).toBe(100);
    expect(done.pipeline).toEqual(['load', 'match_engine_a', 'match_engine_b', 'compare', 'suggest']);
    expect(Array.isArray(done.suggestions)).toBe(true);
    expect(done.suggestions.length).toBeGreaterThan(0);
    expect(done.stats).toMatchObject({ total: expect.any(Number), matched: expect.any(Number), engine_b_matched: expect.any(Number) });
    expect(done.started_at).not.toBeNull();
    expect(done.completed_at).not.toBeNull();
    expect(done.error_message).toBeNull();

    const ledger = await api(`/api/tasks/${res.body.task_id}/`);
    expect(ledger.status).toBe(200);
    expect(ledger.body).toMatchObject({
      state: 'SUCCESS',
      name: 'accounting.tasks.compare_two_engines_task',
      task_type: 'reconciliation',
      tenant_id: '4',
      params: { tenant_id: 4, reconciliation_task_id: res.body.id, config: { tolerance: 0.01 } },
    });
    expect(done.pipeline).toEqual(ledger.body.result.pipeline);
    expect(done.suggestions).toEqual(ledger.body.result.suggestions);
    expect(done.stats).toEqual(ledger.body.result.stats);
  });

  it('starts with a string tenant id in many-to-many mode', async () => {
    const res = await start({ tenant_id: '73', mode: 'match_many_to_many' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ tenant_id: '73', mode: 'match_many_to_many', status: 'queued', config: {} });
    const done = await untilStatus(res.body.id, 'completed');
    expect(done.pipeline).toEqual(['load', 'group', 'match', 'suggest']);
    expect(done.stats).toHaveProperty('groups');
    const ledger = await api(`/api/tasks/${res.body.task_id}/`);
    expect(ledger.body.name).toBe('accounting.tasks.match_many_to_many_task');
  });

  it('records the failure of a run for an unknown company', async () => {
    const res = await start({ tenant_id: 999 });
    expect(res.status).toBe(201);
    const failed = await untilStatus(res.body.id, 'failed');
    expect(failed.error_message).toBe('Company not found');
    expect(failed.completed_at).not.toBeNull();
    const ledger = await api(`/api/tasks/${res.body.task_id}/`);
    expect(ledger.body).toMatchObject({ state: 'FAILURE', error: 'Company not found' });
  });
});

describe('reconciliation module: reading', () => {
  it('lists newest first, filtered by tenant and status, paginated', async () => {
    await finishedRow({ tenant_id: 4 });
    await finishedRow({ tenant_id: 73 });
    await finishedRow({ tenant_id: 999 }, 'failed');
    const all = await api('/reconciliation-tasks/');
    expect(all.status).toBe(200);
    expect(all.body.count).toBeGreaterThanOrEqual(3);
    const ids = all.body.results.map((r: { id: number }) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const tenant4 = await api('/reconciliation-tasks/?tenant_id=4');
    expect(tenant4.body.results.length).toBeGreaterThan(0);
    expect(tenant4.body.results.every((r: { tenant_id: string }) => r.tenant_id === '4')).toBe(true);

    const completed = await api('/reconciliation-tasks/?status=completed');
    expect(completed.body.results.length).toBeGreaterThanOrEqual(2);
    expect(completed.body.results.every((r: { status: string }) => r.status === 'completed')).toBe(true);

    const both = await api('/reconciliation-tasks?tenant_id=73&status=completed,failed');
    expect(both.body.results.every((r: { tenant_id: string; status: string }) => r.tenant_id === '73' && r.status === 'completed')).toBe(true);

    const none = await api('/reconciliation-tasks/?tenant_id=4&status=running');
    expect(none.body).toMatchObject({ count: 0, results: [], next: null, previous: null });

    const page = await api('/reconciliation-tasks/?limit=1');
    expect(page.body.results).toHaveLength(1);
    expect(page.body.results[0].id).toBe(ids[0]);
    expect(page.body.next).toContain('offset=1');
    const second = await api(`/reconciliation-tasks/?limit=1&offset=1`);
    expect(second.body.results[0].id).toBe(ids[1]);
    expect(second.body.previous).not.toBeNull();
  });

  it('rejects bad list queries with 422', async () => {
    expect((await api('/reconciliation-tasks/?status=done')).status).toBe(422);
    expect((await api('/reconciliation-tasks/?limit=0')).status).toBe(422);
    expect((await api('/reconciliation-tasks/?limit=501')).status).toBe(422);
    expect((await api('/reconciliation-tasks/?limit=abc')).status).toBe(422);
    const res = await api('/reconciliation-tasks/?status=RUNNING');
    expect(res.body.detail).toMatch(/status/);
    expect(res.body.errors[0].field).toMatch(/^status/);
  });

  it('shows one task, and 404s unknown or malformed ids', async () => {
    await finishedRow({ tenant_id: 4 });
    const list = await api('/reconciliation-tasks/?limit=1');
    const id = list.body.results[0].id;
    const detail = await api(`/reconciliation-tasks/${id}`);
    expect(detail.status).toBe(200);
    expect(detail.body).toEqual(list.body.results[0]);
    for (const bad of ['999999', 'abc', '-1', '1.5', '99999999999999999999']) {
      const res = await api(`/reconciliation-tasks/${bad}/`);
      expect(res.status, bad).toBe(404);
      expect(res.body.detail).toMatch(/not found/i);
    }
  });

  it('counts tasks by status, in agreement with the list', async () => {
    await finishedRow({ tenant_id: 4 });
    await finishedRow({ tenant_id: 73 });
    await finishedRow({ tenant_id: 999 }, 'failed');
    const counts = await api('/reconciliation-tasks/task_counts/');
    expect(counts.status).toBe(200);
    expect(Object.keys(counts.body).sort()).toEqual(['cancelled', 'completed', 'failed', 'queued', 'running', 'total']);
    const list = await api('/reconciliation-tasks/?limit=500');
    expect(counts.body.total).toBe(list.body.count);
    for (const status of ['queued', 'running', 'completed', 'failed', 'cancelled']) {
      const n = list.body.results.filter((r: { status: string }) => r.status === status).length;
      expect(counts.body[status], status).toBe(n);
    }
    const tenant4 = await api('/reconciliation-tasks/task_counts/?tenant_id=4');
    expect(tenant4.body.failed).toBe(0);
    expect(tenant4.body.completed).toBeGreaterThanOrEqual(1);
  });

  it('appears in the unified view as a reconciliation task', async () => {
    const res = await start({ tenant_id: 4 });
    await untilStatus(res.body.id, 'completed');
    const unified = await api('/api/tasks/?task_type=reconciliation&company_id=4');
    expect(unified.status).toBe(200);
    const ids = unified.body.tasks.map((t: { task_id: string }) => t.task_id);
    expect(ids).toContain(res.body.task_id);
    expect(unified.body.tasks.every((t: { task_type: string; tenant_id: string }) => t.task_type === 'reconciliation' && t.tenant_id === '4')).toBe(true);
  });
});

describe('reconciliation module: live runs and cancelling', () => {
  it('shows queued and running tasks with live ledger info, and cancels through the module', async () => {
    await withTimeScale('5', async () => {
      const res = await start({ tenant_id: 4 });
      expect(res.status).toBe(201);
      const { id, task_id } = res.body;
      const running = await untilStatus(id, 'running');
      expect(running.started_at).not.toBeNull();

      const queued = await api('/reconciliation-tasks/queued/?tenant_id=4');
      expect(queued.status).toBe(200);
      const entry = queued.body.tasks.find((t: { id: number }) => t.id === id);
      expect(entry).toBeDefined();
      expect(queued.body.count).toBe(queued.body.tasks.length);
      expect(entry).toMatchObject({ status: 'running', task_id });
      expect(entry.live).toMatchObject({ state: 'STARTED', progress: expect.any(Number), eta: null });
      expect(entry.live.worker).toEqual(expect.any(String));
      expect(entry.live.started_at).not.toBeNull();
      expect(queued.body.tasks.every((t: { status: string }) => t.status === 'queued' || t.status === 'running')).toBe(true);

      const counts = await api('/reconciliation-tasks/task_counts/?tenant_id=4');
      expect(counts.body.running).toBeGreaterThanOrEqual(1);

      const cancelled = await api(`/reconciliation-tasks/${id}/cancel/`, { body: { reason: 'User requested cancellation' } });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body).toMatchObject({ id, status: 'cancelled', error_message: 'User requested cancellation' });
      expect(cancelled.body.completed_at).not.toBeNull();

      const ledger = await eventually(async () => {
        const r = await api(`/api/tasks/${task_id}/`);
        return r.body.state === 'REVOKED' ? r.body : null;
      });
      expect(ledger.revoke_reason).toBe('User requested cancellation');
      expect(ledger.cancel_requested).toBe('hard');

      // The hook's echo of the revoke leaves the row as the module left it.
      await module.idle();
      const after = await api(`/reconciliation-tasks/${id}/`);
      expect(after.body).toMatchObject({ status: 'cancelled', error_message: 'User requested cancellation', pipeline: null });

      const again = await api(`/reconciliation-tasks/${id}/cancel/`, { body: {} });
      expect(again.status).toBe(409);
      const gone = await api('/reconciliation-tasks/queued/?tenant_id=4');
      expect(gone.body.tasks.find((t: { id: number }) => t.id === id)).toBeUndefined();
    });
  });

  it('uses the default reason when none is given', async () => {
    await withTimeScale('5', async () => {
      const res = await start({ tenant_id: 73, mode: 'match_many_to_many' });
      await untilStatus(res.body.id, 'running');
      const cancelled = await api(`/reconciliation-tasks/${res.body.id}/cancel`, { method: 'POST' });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body).toMatchObject({ status: 'cancelled', error_message: 'Cancelled by user' });
      const ledger = await eventually(async () => {
        const r = await api(`/api/tasks/${res.body.task_id}/`);
        return r.body.state === 'REVOKED' ? r.body : null;
      });
      expect(ledger.revoke_reason).toBe('Cancelled by user');
    });
  });

  it('follows a stop through the unified API: the row ends cancelled with the reason', async () => {
    await withTimeScale('5', async () => {
      const res = await start({ tenant_id: 4 });
      const { id, task_id } = res.body;
      await untilStatus(id, 'running');
      const stop = await api(`/api/tasks/${task_id}/stop/`, { body: { hard: false, reason: 'Stopped from the unified API' } });
      expect(stop.status).toBe(200);
      expect(stop.body.state).toBe('REVOKED');
      const row = await untilStatus(id, 'cancelled');
      expect(row.error_message).toBe('Stopped from the unified API');
      expect(row.completed_at).not.toBeNull();

      const viaModule = await api(`/reconciliation-tasks/${id}/cancel/`, { body: { reason: 'again' } });
      expect(viaModule.status).toBe(409);
      const viaNative = await api(`/api/tasks/${task_id}/stop/`, { body: { hard: true } });
      expect(viaNative.status).toBe(409);
    });
  });

  it('follows a manual retry through the unified API: the row starts over and completes', async () => {
    const row = await cancelledRow(4);
    const retry = await api(`/api/tasks/${row.task_id}/retry`, { method: 'POST' });
    expect(retry.status).toBe(202);
    const done = await untilStatus(row.id, 'completed');
    expect(done).toMatchObject({ task_id: row.task_id, error_message: null, progress: 100 });
    expect(done.stats).not.toBeNull();
  });

  it('cancels a finished task with 409', async () => {
    const completed = await finishedRow({ tenant_id: 4 });
    const res = await api(`/reconciliation-tasks/${completed.id}/cancel/`, { body: { reason: 'too late' } });
    expect(res.status).toBe(409);
    expect(res.body.detail).toMatch(/completed/);
    const failed = await finishedRow({ tenant_id: 999 }, 'failed');
    expect((await api(`/reconciliation-tasks/${failed.id}/cancel/`, { body: {} })).status).toBe(409);
    const cancelled = await cancelledRow(73);
    expect((await api(`/reconciliation-tasks/${cancelled.id}/cancel/`, { body: {} })).status).toBe(409);
    // None of them changed.
    expect((await api(`/reconciliation-tasks/${completed.id}/`)).body).toEqual(completed);
    expect((await api(`/reconciliation-tasks/${failed.id}/`)).body).toEqual(failed);
  });
});

describe('reconciliation module: hooks', () => {
  it('binds a run that got ahead of /start/ through params.reconciliation_task_id', async () => {
    // What /start/ does, with the task id not yet stored when the run begins.
    const row = module.store.create({ tenantId: '4', mode: 'compare_two_engines', config: {} });
    const [record] = await server.yard.launch([
      { name: 'accounting.tasks.compare_two_engines_task', params: { tenant_id: 4, reconciliation_task_id: row.id } },
    ]);
    const done = await untilStatus(row.id, 'completed');
    expect(done.task_id).toBe(record!.id);
    expect(done.stats).not.toBeNull();
  });

  it('ignores runs that name a row they do not own', async () => {
    const own = await start({ tenant_id: 4 });
    const done = await untilStatus(own.body.id, 'completed');
    // Same row id, launched elsewhere: another tenant, and a row already bound to its run.
    for (const tenant of [73, 4]) {
      const res = await api('/api/tasks', {
        body: { task_type: 'accounting.tasks.match_many_to_many_task', params: { tenant_id: tenant, reconciliation_task_id: own.body.id } },
      });
      expect(res.status).toBe(202);
      await server.yard.waitFor(res.body.task_id);
    }
    await module.idle();
    expect((await api(`/reconciliation-tasks/${own.body.id}/`)).body).toEqual(done);
  });
});

describe('reconciliation module: bad input and tenant scope', () => {
  it('rejects bad starts without leaving rows behind', async () => {
    const existing = await finishedRow({ tenant_id: 4 });
    const before = (await api('/reconciliation-tasks/task_counts/')).body.total;
    const cases: Array<[unknown, number]> = [
      [{ tenant_id: 4, mode: 'compare' }, 422],
      [{}, 422],
      [{ tenant_id: '' }, 422],
      [{ tenant_id: 4.5 }, 422],
      [{ tenant_id: true }, 422],
      [{ tenant_id: 4, config: [1, 2] }, 422],
      [{ tenant_id: 4, config: 'x' }, 422],
      [[1, 2], 422],
    ];
    for (const [body, status] of cases) {
      const res = await start(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.detail).toEqual(expect.any(String));
    }
    const bad = await start({ tenant_id: 4, mode: 'compare' });
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toContain('mode');

    const malformed = await api('/reconciliation-tasks/start/', { raw: '{"tenant_id": 4,', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.detail).toMatch(/JSON/);
    const malformedCancel = await api(`/reconciliation-tasks/${existing.id}/cancel/`, { raw: '{oops', headers: { 'content-type': 'application/json' } });
    expect(malformedCancel.status).toBe(400);
    expect((await api(`/reconciliation-tasks/${existing.id}/cancel/`, { body: { reason: 42 } })).status).toBe(422);
    expect((await api('/reconciliation-tasks/999999/cancel/', { body: {} })).status).toBe(404);
    expect((await api('/reconciliation-tasks/queued/?limit=x')).status).toBe(422);

    expect((await api('/reconciliation-tasks/task_counts/')).body.total).toBe(before);
  });

  it('shows a key only the rows of its tenants', async () => {
    const row4 = await finishedRow({ tenant_id: 4 });
    const own = await start({ tenant_id: '73' }, TENANT_73);
    expect(own.status).toBe(201);
    await untilStatus(own.body.id, 'completed');

    const before = (await api('/reconciliation-tasks/task_counts/')).body.total;
    const foreign = await start({ tenant_id: 4 }, TENANT_73);
    expect(foreign.status).toBe(403);
    expect((await api('/reconciliation-tasks/task_counts/')).body.total).toBe(before);

    const list = await api('/reconciliation-tasks/?limit=500', { key: TENANT_73 });
    expect(list.body.results.length).toBeGreaterThan(0);
    expect(list.body.results.every((r: { tenant_id: string }) => r.tenant_id === '73')).toBe(true);
    expect((await api('/reconciliation-tasks/?tenant_id=4', { key: TENANT_73 })).body.count).toBe(0);

    expect((await api(`/reconciliation-tasks/${row4.id}/`, { key: TENANT_73 })).status).toBe(404);
    expect((await api(`/reconciliation-tasks/${row4.id}/cancel/`, { body: {}, key: TENANT_73 })).status).toBe(404);

    const counts = await api('/reconciliation-tasks/task_counts/', { key: TENANT_73 });
    expect(counts.body.total).toBe(list.body.count);
    const queued = await api('/reconciliation-tasks/queued/', { key: TENANT_73 });
    expect(queued.body.tasks.every((t: { tenant_id: string }) => t.tenant_id === '73')).toBe(true);

    // Viewers read their tenant but may not start or cancel.
    expect((await api(`/reconciliation-tasks/${row4.id}/`, { key: VIEWER_4 })).status).toBe(200);
    expect((await start({ tenant_id: 4 }, VIEWER_4)).status).toBe(403);
    expect((await api('/reconciliation-tasks/', { headers: { authorization: '' } })).status).toBe(401);
  });

  it('documents its routes in the OpenAPI document', async () => {
    const doc = await api('/openapi.json');
    expect(doc.status).toBe(200);
    for (const path of ['/reconciliation-tasks/start', '/reconciliation-tasks', '/reconciliation-tasks/{id}', '/reconciliation-tasks/{id}/cancel', '/reconciliation-tasks/queued', '/reconciliation-tasks/task_counts']) {
      expect(doc.body.paths, path).toHaveProperty([path]);
    }
  });
});
