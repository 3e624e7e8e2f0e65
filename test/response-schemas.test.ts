/**
 * The hot routes answer through compiled response schemas, which drop any field they do not list.
 * Every field the routes build must still come out, with the same values: launch (new, deduplicated,
 * cached), one task with its attempts, and the list, against the records themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import type { TaskRecord } from '../src/core/record.js';
import { launchedJson } from '../src/http/routes/native.js';
import { launchedJsonSchema, taskJson, taskPageSchema, taskWithAttemptsSchema } from '../src/http/serialize.js';
import { eventually, http, startServer } from './helpers.js';

const report = defineTask({
  name: 'report.build',
  params: z.object({ company_id: z.string(), note: z.string().optional() }),
  run: async (params) => ({ rows: [1, 2, { nested: params.note ?? null }], note: 'done' }),
});
const cachedSum = defineTask({
  name: 'report.sum',
  params: z.object({ n: z.number() }),
  cache: { ttl: '1h', by: ['n'] },
  run: async (params) => params.n * 2,
});

describe('response schemas of the hot routes', () => {
  let server: Awaited<ReturnType<typeof startServer>>;

  beforeAll(async () => {
    server = await startServer({ tasks: [report, cachedSum] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('list every field the serializers build', () => {
    const fields = (schema: { properties: object }) => Object.keys(schema.properties).sort();
    const record = {
      id: 'x', name: 'n', category: 'c', displayName: 'd', state: 'PENDING', progress: 0, progressMessage: null, tenantId: null,
      params: {}, result: null, error: null, traceback: null, meta: null, attempt: 0, maxAttempts: 1, priority: 0, queue: 'q',
      route: 'light', engine: 'local', worker: null, idempotencyKey: null, runAt: 1, cancelRequested: null, revokeReason: null,
      createdAt: 1, startedAt: null, finishedAt: null, updatedAt: 1,
    } as TaskRecord;
    const task = Object.keys(taskJson(record)).sort();
    expect(fields(taskPageSchema.properties.tasks.items)).toEqual(task);
    expect(fields(taskWithAttemptsSchema)).toEqual([...task, 'attempts'].sort());
    expect(fields(launchedJsonSchema)).toEqual(
      [...new Set([...Object.keys(launchedJson({ record, outcome: 'idempotent' })), ...Object.keys(launchedJson({ record, outcome: 'cached' }))])].sort(),
    );
  });

  it('launch, read and list answer exactly what the records say', async () => {
    const body = { task_type: 'report.build', params: { company_id: '73', note: 'é "quoted" \u2028 line' }, idempotency_key: 'k-1', priority: 5 };
    const created = await http(`${server.url}/api/tasks`, { body });
    expect(created.status).toBe(202);
    const id = created.body.task_id as string;
    const done = await eventually(async () => {
      const record = await server.yard.get(id);
      return record.state === 'SUCCESS' ? record : null;
    });

    const again = await http(`${server.url}/api/tasks`, { body });
    expect(again.status).toBe(200);
    const expectedAgain = JSON.parse(JSON.stringify(launchedJson({ record: done, outcome: 'idempotent' })));
    expect({ ...again.body, duration_seconds: null }).toEqual({ ...expectedAgain, duration_seconds: null });
    expect(again.body).toMatchObject({ deduplicated: true, launch_outcome: 'idempotent', result: { rows: [1, 2, { nested: body.params.note }], note: 'done' } });

    const one = await http(`${server.url}/api/tasks/${id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual({ ...JSON.parse(JSON.stringify(taskJson(done))), attempts: [expect.objectContaining({ attempt: 1, outcome: 'succeeded', error: null })] });
    expect(Object.keys(one.body.attempts[0]).sort()).toEqual(['attempt', 'error', 'finished_at', 'outcome', 'started_at', 'traceback', 'worker']);

    const list = await http(`${server.url}/api/tasks?company_id=73&limit=1`);
    expect(list.status).toBe(200);
    expect(list.body).toEqual({ tasks: [JSON.parse(JSON.stringify(taskJson(done)))], count: 1, next_cursor: null });

    const first = await http(`${server.url}/api/tasks`, { body: { task_type: 'report.sum', params: { n: 21 } } });
    await eventually(async () => (await server.yard.get(first.body.task_id)).state === 'SUCCESS');
    const cached = await http(`${server.url}/api/tasks`, { body: { task_type: 'report.sum', params: { n: 21 } } });
    expect(cached.status).toBe(200);
    expect(cached.body).toMatchObject({ task_id: first.body.task_id, cached: true, launch_outcome: 'cached', result: 42 });
    expect(cached.body.deduplicated).toBeUndefined();
  });
});
