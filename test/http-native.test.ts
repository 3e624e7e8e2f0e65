/**
 * The native HTTP API over a real server (Fastify on a random port) and a real SQLite ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { TASK_STATES } from '../src/core/states.js';
import { eventually, http, startServer } from './helpers.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const UNKNOWN_ID = '01890000-0000-7000-8000-000000000000';

const quick = defineTask({
  name: 'alpha.quick',
  displayName: 'Quick alpha',
  description: 'Doubles n',
  params: z.object({ company_id: z.string(), n: z.number().int().min(0).max(10).default(1).describe('A small number') }),
  async run(p, ctx) {
    await ctx.progress(50, 'half way');
    return { doubled: p.n * 2 };
  },
});

const slow = defineTask({
  name: 'alpha.slow',
  params: z.object({ company_id: z.string().optional() }),
  async run(_p, ctx) {
    await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
    throw ctx.signal.reason;
  },
});

const failing = defineTask({
  name: 'beta.fail',
  retry: false,
  params: z.object({ company_id: z.string().optional() }),
  run: () => {
    throw new Error('always fails');
  },
});

const explicitCategory = defineTask({
  name: 'beta.item',
  category: 'gamma',
  params: z.object({ company_id: z.string() }),
  run: () => 'item',
});

const tasks = [quick, slow, failing, explicitCategory];

type Server = Awaited<ReturnType<typeof startServer>>;

async function launch(url: string, body: Record<string, unknown>) {
  const res = await http(`${url}/api/tasks`, { body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body as { task_id: string; state: string } & Record<string, unknown>;
}

async function waitState(url: string, id: string, states: string[], timeoutMs = 5000) {
  return eventually(async () => {
    const res = await http(`${url}/api/tasks/${id}`);
    return states.includes(res.body.state) ? res.body : null;
  }, timeoutMs);
}

describe('native routes', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = await startServer({ tasks });
    url = server.url;
  });
  afterAll(() => server.close());

  it('launches a task (202) and returns the whole record', async () => {
    const created = await launch(url, { task_type: 'alpha.quick', params: { company_id: '73', n: 4 } });
    expect(created).toMatchObject({ name: 'alpha.quick', task_type: 'alpha', category: 'alpha', display_name: 'Quick alpha', tenant_id: '73' });
    expect(['PENDING', 'STARTED', 'SUCCESS']).toContain(created.state);
    const done = await waitState(url, created.task_id, ['SUCCESS']);
    for (const field of [
      'task_id', 'name', 'category', 'display_name', 'state', 'progress', 'progress_message', 'tenant_id', 'params', 'result',
      'error', 'traceback', 'meta', 'attempt', 'max_attempts', 'eta', 'created_at', 'started_at', 'finished_at', 'updated_at',
      'duration_seconds', 'worker', 'engine',
    ]) {
      expect(done, field).toHaveProperty(field);
    }
    expect(done).toMatchObject({ params: { company_id: '73', n: 4 }, result: { doubled: 8 }, progress: 100, attempt: 1, max_attempts: 3, engine: 'local' });
    expect(typeof done.duration_seconds).toBe('number');
    expect(new Date(done.created_at).toISOString()).toBe(done.created_at);
  });

  it('accepts `name` instead of task_type, eta, countdown, priority and idempotency_key', async () => {
    const byName = await launch(url, { name: 'alpha.quick', params: { company_id: '1' }, priority: 7 });
    expect(byName.priority).toBe(7);
    const delayed = await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' }, countdown: 60 });
    expect(delayed.state).toBe('PENDING');
    expect(Date.parse(delayed.eta as string) - Date.now()).toBeGreaterThan(55_000);
    const eta = new Date(Date.now() + 120_000).toISOString();
    const byEta = await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' }, eta });
    expect(byEta.eta).toBe(eta);
    const a = await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' }, idempotency_key: 'http-key' });
    // The repeat is answered with the first run: 200, not another 202.
    const b = await http(`${url}/api/tasks`, { body: { task_type: 'alpha.quick', params: { company_id: '1' }, idempotency_key: 'http-key' } });
    expect(b.status).toBe(200);
    expect(b.body.task_id).toBe(a.task_id);
    for (const t of [delayed, byEta]) expect((await http(`${url}/api/tasks/${t.task_id}/stop`, { body: {} })).status).toBe(200);
  });

  it('launches a batch (202) with every task', async () => {
    const res = await http(`${url}/api/tasks/batch`, {
      body: {
        tasks: [
          { task_type: 'alpha.quick', params: { company_id: '5', n: 1 } },
          { task_type: 'beta.item', params: { company_id: '5' } },
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body.count).toBe(2);
    expect(res.body.tasks.map((t: { name: string }) => t.name)).toEqual(['alpha.quick', 'beta.item']);
    expect(res.body.tasks[1].category).toBe('gamma');
    for (const t of res.body.tasks) await waitState(url, t.task_id, ['SUCCESS']);
  });

  it('batch launch is all or nothing', async () => {
    const before = (await http(`${url}/api/tasks?company_id=batch-co&limit=500`)).body.count;
    const res = await http(`${url}/api/tasks/batch`, {
      body: {
        tasks: [
          { task_type: 'alpha.quick', params: { company_id: 'batch-co' } },
          { task_type: 'alpha.quick', params: { company_id: 'batch-co', n: 99 } },
          { task_type: 'alpha.quick', params: { company_id: 'batch-co' } },
        ],
      },
    });
    expect(res.status).toBe(422);
    expect(Array.isArray(res.body.errors)).toBe(true);
    const unknown = await http(`${url}/api/tasks/batch`, {
      body: { tasks: [{ task_type: 'alpha.quick', params: { company_id: 'batch-co' } }, { task_type: 'nope.none', params: {} }] },
    });
    expect(unknown.status).toBe(400);
    await sleep(50);
    expect((await http(`${url}/api/tasks?company_id=batch-co&limit=500`)).body.count).toBe(before);
    expect((await http(`${url}/api/tasks/batch`, { body: { tasks: [] } })).status).toBe(422);
    expect((await http(`${url}/api/tasks/batch`, { body: {} })).status).toBe(422);
  });

  it('serves status, stop, cancel and retry', async () => {
    const running = await launch(url, { task_type: 'alpha.slow', params: {} });
    await waitState(url, running.task_id, ['STARTED']);

    const status = await http(`${url}/api/tasks/${running.task_id}/status`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ task_id: running.task_id, status: 'STARTED', completed_at: null });
    for (const field of ['progress', 'progress_message', 'result', 'error', 'created_at', 'started_at']) expect(status.body).toHaveProperty(field);

    // Retrying a running task is a conflict.
    const retryRunning = await http(`${url}/api/tasks/${running.task_id}/retry`, { method: 'POST' });
    expect(retryRunning.status).toBe(409);
    expect(typeof retryRunning.body.detail).toBe('string');

    const stopped = await http(`${url}/api/tasks/${running.task_id}/stop`, { body: { hard: false, reason: 'enough' } });
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ task_id: running.task_id, state: 'REVOKED', revoke_reason: 'enough', cancel_requested: 'soft' });

    // Cancelling a finished task is a conflict, on both routes.
    expect((await http(`${url}/api/tasks/${running.task_id}/stop`, { body: { hard: true } })).status).toBe(409);
    expect((await http(`${url}/api/tasks/${running.task_id}/cancel`, { body: {} })).status).toBe(409);

    // A REVOKED task can be retried: it runs again.
    const retried = await http(`${url}/api/tasks/${running.task_id}/retry`, { method: 'POST' });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ task_id: running.task_id, state: 'PENDING', attempt: 1 });
    await waitState(url, running.task_id, ['STARTED']);

    const cancelled = await http(`${url}/api/tasks/${running.task_id}/cancel`, { body: { hard: true } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toEqual({ task_id: running.task_id, cancelled: true, status: 'REVOKED', cancel_requested: 'hard', reason: null });

    // A FAILURE can be retried; it fails again.
    const failed = await launch(url, { task_type: 'beta.fail', params: {} });
    await waitState(url, failed.task_id, ['FAILURE']);
    const failedRecord = (await http(`${url}/api/tasks/${failed.task_id}`)).body;
    expect(failedRecord).toMatchObject({ error: 'always fails', attempt: 1, max_attempts: 1 });
    expect(failedRecord.traceback).toContain('always fails');
    const again = await http(`${url}/api/tasks/${failed.task_id}/retry`, { method: 'POST', body: {} });
    expect(again.status).toBe(202);
    await waitState(url, failed.task_id, ['FAILURE']);

    // Cancel without a body (curl -X POST) works on a pending task.
    const pending = await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' }, countdown: 60 });
    const bare = await http(`${url}/api/tasks/${pending.task_id}/cancel`, { method: 'POST' });
    expect(bare.status).toBe(200);
    expect(bare.body.status).toBe('REVOKED');
    const bareJson = await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' }, countdown: 60 });
    const emptyJson = await http(`${url}/api/tasks/${bareJson.task_id}/stop`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(emptyJson.status).toBe(200);
  });

  it('ignores trailing slashes', async () => {
    const created = await http(`${url}/api/tasks/`, { body: { task_type: 'alpha.quick', params: { company_id: '9' } } });
    expect(created.status).toBe(202);
    const id = created.body.task_id;
    expect((await http(`${url}/api/tasks/`)).status).toBe(200);
    expect((await http(`${url}/api/tasks/${id}/`)).body.task_id).toBe(id);
    expect((await http(`${url}/api/tasks/${id}/status/`)).body.task_id).toBe(id);
    expect((await http(`${url}/api/tasks/statistics/`)).status).toBe(200);
    expect((await http(`${url}/api/tasks/types/`)).status).toBe(200);
    await waitState(url, id, ['SUCCESS']);
    expect((await http(`${url}/api/tasks/${id}/stop/`, { body: {} })).status).toBe(409);
    expect((await http(`${url}/api/tasks/${id}/cancel/`, { body: {} })).status).toBe(409);
    expect((await http(`${url}/api/tasks/${id}/retry/`, { method: 'POST' })).status).toBe(409);
    const batch = await http(`${url}/api/tasks/batch/`, { body: { tasks: [{ task_type: 'beta.item', params: { company_id: '9' } }] } });
    expect(batch.status).toBe(202);
  });

  it('serves statistics with counts, durations, throughput, queue depth and workers', async () => {
    const res = await http(`${url}/api/tasks/statistics`);
    expect(res.status).toBe(200);
    const s = res.body;
    expect(Object.keys(s.by_state).sort()).toEqual([...TASK_STATES].sort());
    expect(s.total).toBe(Object.values(s.by_state as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(s.total).toBeGreaterThan(0);
    expect(s.by_category.alpha.SUCCESS).toBeGreaterThan(0);
    expect(s.by_name['alpha.quick'].SUCCESS).toBeGreaterThan(0);
    expect(s.durations).toEqual({ p50_seconds: expect.any(Number), p95_seconds: expect.any(Number), samples: expect.any(Number) });
    expect(s.throughput).toEqual({ last_minute: expect.any(Number), last_hour: expect.any(Number), per_second: expect.any(Number) });
    expect(s.queue_depth).toMatchObject({ pending: expect.any(Number), delayed: expect.any(Number), retry: expect.any(Number) });
    expect(typeof s.queue_depth.by_queue).toBe('object');
    expect(s.workers).toHaveLength(1);
    expect(s.workers[0]).toMatchObject({ engine: 'local', pid: process.pid, concurrency: 20 });
    expect(s.workers[0].name).toMatch(/^local@/);
  });

  it('serves task types grouped by category', async () => {
    const res = await http(`${url}/api/tasks/types`);
    expect(res.status).toBe(200);
    const categories = res.body.categories as Array<{ category: string; count: number; tasks: Array<Record<string, any>> }>;
    expect(categories.map((c) => c.category)).toEqual(['alpha', 'beta', 'gamma']);
    const alpha = categories.find((c) => c.category === 'alpha')!;
    expect(alpha.count).toBe(2);
    const q = alpha.tasks.find((t) => t.name === 'alpha.quick')!;
    expect(q).toMatchObject({ display_name: 'Quick alpha', description: 'Doubles n', queue: 'default', max_attempts: 3, isolation: 'none' });
    expect(q.parameters.company_id).toMatchObject({ type: 'string', required: true });
    expect(q.parameters.n).toMatchObject({ type: 'integer', required: false, default: 1, min: 0, max: 10, description: 'A small number' });
    expect(q.params_schema.type).toBe('object');
  });

  it('publishes OpenAPI 3.1 listing the routes, and HTML docs', async () => {
    const res = await http(`${url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\.1/);
    const paths = res.body.paths as Record<string, Record<string, unknown>>;
    const expected: Array<[string, string]> = [
      ['/api/tasks', 'get'],
      ['/api/tasks', 'post'],
      ['/api/tasks/batch', 'post'],
      ['/api/tasks/statistics', 'get'],
      ['/api/tasks/types', 'get'],
      ['/api/tasks/{task_id}', 'get'],
      ['/api/tasks/{task_id}/stop', 'post'],
      ['/api/tasks/{task_id}/retry', 'post'],
      ['/api/tasks/{task_id}/status', 'get'],
      ['/api/tasks/{task_id}/cancel', 'post'],
    ];
    for (const [path, method] of expected) expect(paths[path]?.[method], `${method} ${path}`).toBeDefined();

    const docs = await fetch(`${url}/docs`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
    expect((await docs.text()).toLowerCase()).toContain('<html');
    expect((await http(`${url}/health`)).body).toEqual({ status: 'ok' });
  });
});

describe('bad input', () => {
  let server: Server;
  let url: string;
  let finishedId: string;
  let runningId: string;
  beforeAll(async () => {
    server = await startServer({ tasks });
    url = server.url;
    finishedId = (await launch(url, { task_type: 'alpha.quick', params: { company_id: '1' } })).task_id;
    runningId = (await launch(url, { task_type: 'alpha.slow', params: {} })).task_id;
    await waitState(url, finishedId, ['SUCCESS']);
    await waitState(url, runningId, ['STARTED']);
  });
  afterAll(() => server.close());

  const json = { 'content-type': 'application/json' };
  const cases: Array<{ name: string; method?: string; path: string | (() => string); raw?: string; body?: unknown; headers?: Record<string, string>; status: number; errors?: boolean }> = [
    { name: 'malformed JSON', path: '/api/tasks', raw: '{"task_type": "alpha.quick", ', headers: json, status: 400 },
    { name: 'malformed JSON in a batch', path: '/api/tasks/batch', raw: '{tasks: []}', headers: json, status: 400 },
    { name: 'malformed JSON on stop', path: () => `/api/tasks/${runningId}/stop`, raw: '{"hard": tru', headers: json, status: 400 },
    { name: 'unknown task type', path: '/api/tasks', body: { task_type: 'nope.none', params: {} }, status: 400 },
    { name: 'params failing the schema', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: '1', n: 11 } }, status: 422, errors: true },
    { name: 'missing required param', path: '/api/tasks', body: { task_type: 'alpha.quick', params: {} }, status: 422, errors: true },
    { name: 'params of the wrong type', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: 73 } }, status: 422, errors: true },
    { name: 'params not an object', path: '/api/tasks', body: { task_type: 'alpha.quick', params: [1, 2] }, status: 422, errors: true },
    { name: 'no task_type', path: '/api/tasks', body: { params: {} }, status: 422, errors: true },
    { name: 'body not an object', path: '/api/tasks', body: 'alpha.quick', status: 422, errors: true },
    { name: 'negative countdown', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: '1' }, countdown: -5 }, status: 422, errors: true },
    { name: 'unparseable eta', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: '1' }, eta: 'next tuesday' }, status: 422, errors: true },
    { name: 'eta beyond any date', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: '1' }, eta: 1e20 }, status: 422, errors: true },
    { name: 'fractional priority', path: '/api/tasks', body: { task_type: 'alpha.quick', params: { company_id: '1' }, priority: 1.5 }, status: 422, errors: true },
    { name: 'stop with a non-boolean hard', path: () => `/api/tasks/${runningId}/stop`, body: { hard: 'yes' }, status: 422, errors: true },
    { name: 'unknown id (get)', method: 'GET', path: `/api/tasks/${UNKNOWN_ID}`, status: 404 },
    { name: 'unknown id (not a uuid)', method: 'GET', path: '/api/tasks/not-a-task', status: 404 },
    { name: 'unknown id (status)', method: 'GET', path: `/api/tasks/${UNKNOWN_ID}/status`, status: 404 },
    { name: 'unknown id (stop)', path: `/api/tasks/${UNKNOWN_ID}/stop`, body: {}, status: 404 },
    { name: 'unknown id (cancel)', path: `/api/tasks/${UNKNOWN_ID}/cancel`, body: {}, status: 404 },
    { name: 'unknown id (retry)', path: `/api/tasks/${UNKNOWN_ID}/retry`, body: {}, status: 404 },
    { name: 'unknown route', method: 'GET', path: '/api/nothing-here', status: 404 },
    { name: 'cancel finished', path: () => `/api/tasks/${finishedId}/stop`, body: { hard: false }, status: 409 },
    { name: 'cancel finished (cancel route)', path: () => `/api/tasks/${finishedId}/cancel`, body: {}, status: 409 },
    { name: 'retry running', path: () => `/api/tasks/${runningId}/retry`, body: {}, status: 409 },
    { name: 'retry success', path: () => `/api/tasks/${finishedId}/retry`, body: {}, status: 409 },
    {
      name: 'body over 1 MiB',
      path: '/api/tasks',
      raw: JSON.stringify({ task_type: 'alpha.quick', params: { company_id: '1', blob: 'x'.repeat(1024 * 1024 + 10) } }),
      headers: json,
      status: 413,
    },
    { name: 'batch over 1 MiB', path: '/api/tasks/batch', raw: JSON.stringify({ tasks: Array.from({ length: 3000 }, () => ({ task_type: 'alpha.quick', params: { company_id: 'y'.repeat(400) } })) }), headers: json, status: 413 },
    { name: 'state=FOO', method: 'GET', path: '/api/tasks?state=FOO', status: 422, errors: true },
    { name: 'state list with one bad', method: 'GET', path: '/api/tasks?state=SUCCESS,nope', status: 422, errors: true },
    { name: 'limit=-1', method: 'GET', path: '/api/tasks?limit=-1', status: 422, errors: true },
    { name: 'limit=0', method: 'GET', path: '/api/tasks?limit=0', status: 422, errors: true },
    { name: 'limit=abc', method: 'GET', path: '/api/tasks?limit=abc', status: 422, errors: true },
    { name: 'limit=1.5', method: 'GET', path: '/api/tasks?limit=1.5', status: 422, errors: true },
    { name: 'limit too big', method: 'GET', path: '/api/tasks?limit=100000', status: 422, errors: true },
    { name: 'limit repeated', method: 'GET', path: '/api/tasks?limit=1&limit=2', status: 422, errors: true },
    { name: 'bad cursor', method: 'GET', path: '/api/tasks?cursor=not-a-cursor', status: 422, errors: true },
    { name: 'cursor of junk base64', method: 'GET', path: `/api/tasks?cursor=${Buffer.from('hello world').toString('base64url')}`, status: 422, errors: true },
    { name: 'bad since', method: 'GET', path: '/api/tasks?since=yesterday', status: 422, errors: true },
    { name: 'bad until', method: 'GET', path: '/api/tasks?until=2024-13-45', status: 422, errors: true },
  ];

  for (const c of cases) {
    it(`${c.name} -> ${c.status}`, async () => {
      const path = typeof c.path === 'function' ? c.path() : c.path;
      const res = await http(`${url}${path}`, { method: c.method ?? 'POST', body: c.body, raw: c.raw, headers: c.headers });
      expect(res.status, JSON.stringify(res.body)?.slice(0, 500)).toBe(c.status);
      expect(typeof res.body?.detail).toBe('string');
      if (c.errors) {
        expect(Array.isArray(res.body.errors)).toBe(true);
        expect(res.body.errors.length).toBeGreaterThan(0);
        for (const e of res.body.errors) expect(e).toEqual({ field: expect.any(String), message: expect.any(String) });
      }
    });
  }

  it('names the failing fields in `errors`', async () => {
    const res = await http(`${url}/api/tasks`, { body: { task_type: 'alpha.quick', params: { n: 'x' } } });
    expect(res.status).toBe(422);
    const fields = (res.body.errors as Array<{ field: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(['company_id', 'n']);
  });

  it('leaves the running task running after all that', async () => {
    expect((await http(`${url}/api/tasks/${runningId}`)).body.state).toBe('STARTED');
  });
});

describe('listing', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = await startServer({ tasks });
    url = server.url;
  });
  afterAll(() => server.close());

  it('walks every page with the cursor, newest first, without duplicates', async () => {
    const res = await http(`${url}/api/tasks/batch`, {
      body: { tasks: Array.from({ length: 23 }, (_, i) => ({ task_type: 'beta.item', params: { company_id: `page-${i % 2}` } })) },
    });
    expect(res.status).toBe(202);
    const created: string[] = res.body.tasks.map((t: { task_id: string }) => t.task_id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: any } = await http(`${url}/api/tasks?name=beta.item&limit=5${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.count).toBe(page.body.tasks.length);
      expect(page.body.tasks.length).toBeLessThanOrEqual(5);
      seen.push(...page.body.tasks.map((t: { task_id: string }) => t.task_id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    expect(pages).toBe(5);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...created].reverse());
    // The default limit is 50 and there is then no next page.
    const all = await http(`${url}/api/tasks?name=beta.item`);
    expect(all.body.count).toBe(23);
    expect(all.body.next_cursor).toBeNull();
  });

  it('filters by task_type (category), name, company_id, tenant_id, state, since and until', async () => {
    const a1 = await launch(url, { task_type: 'alpha.quick', params: { company_id: 'f1' } });
    const a2 = await launch(url, { task_type: 'alpha.quick', params: { company_id: 'f2' } });
    await sleep(30);
    const middle = Date.now();
    await sleep(30);
    const g1 = await launch(url, { task_type: 'beta.item', params: { company_id: 'f1' } });
    const f1 = await launch(url, { task_type: 'beta.fail', params: { company_id: 'f1' } });
    for (const t of [a1, a2, g1]) await waitState(url, t.task_id, ['SUCCESS']);
    await waitState(url, f1.task_id, ['FAILURE']);

    const ids = async (query: string) => {
      const res = await http(`${url}/api/tasks?${query}`);
      expect(res.status, query).toBe(200);
      return (res.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id).sort();
    };
    const sorted = (...xs: Array<{ task_id: string }>) => xs.map((x) => x.task_id).sort();

    expect(await ids('company_id=f1')).toEqual(sorted(a1, g1, f1));
    expect(await ids('tenant_id=f2')).toEqual(sorted(a2));
    expect(await ids('company_id=f1&task_type=alpha')).toEqual(sorted(a1));
    expect(await ids('company_id=f1&task_type=gamma')).toEqual(sorted(g1));
    expect(await ids('company_id=f1&category=beta')).toEqual(sorted(f1));
    expect(await ids('company_id=f1&task_type=alpha,gamma')).toEqual(sorted(a1, g1));
    expect(await ids('company_id=f1&name=beta.item')).toEqual(sorted(g1));
    expect(await ids('company_id=f1&name=beta.item&name=alpha.quick')).toEqual(sorted(a1, g1));
    expect(await ids('company_id=f1&state=FAILURE')).toEqual(sorted(f1));
    expect(await ids('company_id=f1&state=SUCCESS,FAILURE')).toEqual(sorted(a1, g1, f1));
    expect(await ids('company_id=f1&state=PENDING')).toEqual([]);
    expect(await ids(`company_id=f1&since=${middle}`)).toEqual(sorted(g1, f1));
    expect(await ids(`company_id=f1&until=${middle}`)).toEqual(sorted(a1));
    expect(await ids(`since=${encodeURIComponent(new Date(middle).toISOString())}&task_type=alpha,beta,gamma`)).toEqual(sorted(g1, f1));
    expect(await ids(`company_id=f1&since=${middle - 1}&until=${middle + 1}`)).toEqual([]);
    expect(await ids('company_id=nobody')).toEqual([]);
  });
});
