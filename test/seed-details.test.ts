/**
 * The seeds' smaller details: the Celery launch body's `task_type` enum in OpenAPI, a clear 422
 * when /api/tasks is filtered by a task name where a category belongs, validation messages that
 * name the real problem, and a bounded `month_offset`. Real server, demo tasks.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { celeryRoutes } from '../src/http/routes/celery.js';
import type { Taskyard } from '../src/taskyard.js';
import { WEBHOOK_TASK_NAME, webhookTask } from '../src/webhooks/index.js';
import { http, startServer } from './helpers.js';

const UUID = '123e4567-e89b-12d3-a456-426614174000';

let server: Awaited<ReturnType<typeof startServer>>;
beforeAll(async () => {
  server = await startServer({
    tasks: [...demoTasks, webhookTask], // webhook deliveries: an internal definition
    categoryRules,
    plugins: (yard: Taskyard) => [(app: FastifyInstance) => celeryRoutes(app, yard)],
  });
});
afterAll(async () => {
  await server?.close();
});

describe('OpenAPI: the Celery launch body', () => {
  it('has task_type as an enum of the launchable tasks, as the seed’s TaskType enum, internal ones left out', async () => {
    const doc = (await http(`${server.url}/openapi.json`)).body;
    const body = doc.paths['/api/celery/tasks/launch'].post.requestBody.content['application/json'].schema;
    const taskType = body.properties.task_type;
    expect(taskType.type).toBe('string');
    expect([...taskType.enum].sort()).toEqual(demoTasks.map((d) => d.name).sort());
    expect(taskType.enum).toContain('sii.sync_documents');
    expect(taskType.enum).not.toContain(WEBHOOK_TASK_NAME);
    expect(body.required).toContain('task_type');
    // The same names the API lists.
    const listed = (await http(`${server.url}/api/celery/tasks`)).body.map((t: any) => t.task_type);
    expect([...taskType.enum].sort()).toEqual([...listed].sort());
  });
});

describe('GET /api/tasks: task_type is the category', () => {
  it('answers 422 for a value that is no category, listing the categories and pointing to name=', async () => {
    const res = await http(`${server.url}/api/tasks/?task_type=sii.sync_documents`);
    expect(res.status).toBe(422);
    expect(res.body.detail).toBe(
      'Invalid query: task_type is a category (one of: demo, maintenance, onboarding, reconciliation, sii, taskyard); to filter by task name use name=sii.sync_documents',
    );
    expect(res.body.errors).toEqual([{ field: 'task_type', message: expect.stringContaining('use name=sii.sync_documents') }]);

    const byCategory = await http(`${server.url}/api/tasks?category=sii,nope`);
    expect(byCategory.status).toBe(422);
    expect(byCategory.body.detail).toMatch(/^Invalid query: category is a category \(one of: .*\); to filter by task name use name=nope$/);
  });

  it('still filters by known categories and by name', async () => {
    const launched = await http(`${server.url}/api/tasks`, { body: { task_type: 'sii.sync_documents', params: { company_id: UUID } } });
    expect(launched.status).toBe(202);
    for (const query of ['task_type=sii', 'category=sii', 'task_type=sii,onboarding', 'name=sii.sync_documents', 'task_type=reconciliation']) {
      const res = await http(`${server.url}/api/tasks?${query}`);
      expect(res.status, query).toBe(200);
    }
    const bySii = (await http(`${server.url}/api/tasks?task_type=sii`)).body.tasks.map((t: any) => t.task_id);
    expect(bySii).toContain(launched.body.task_id);
  });
});

describe('validation messages name the real problem', () => {
  const launch = (params: unknown) => http(`${server.url}/api/tasks`, { body: { task_type: 'sii.sync_documents', params } });

  it('a wrong type says what was expected and received; "is required" only when absent', async () => {
    const wrongType = await launch({ company_id: 73, months: 'three' });
    expect(wrongType.status).toBe(422);
    expect(wrongType.body.errors).toEqual([
      { field: 'company_id', message: 'expected string, received number' },
      { field: 'months', message: 'expected number, received string' },
    ]);
    const absent = await launch({});
    expect(absent.body.errors).toEqual([{ field: 'company_id', message: 'is required' }]);

    // Route input too (the body of stop, the query of the list).
    const stop = await http(`${server.url}/api/tasks/any-id/stop`, { body: { hard: 'yes' } });
    expect(stop.status).toBe(422);
    expect(stop.body.errors).toEqual([{ field: 'hard', message: 'expected boolean, received string' }]);
    const celery = await http(`${server.url}/api/celery/tasks/launch`, { body: { params: {} } });
    expect(celery.body.errors).toEqual([{ field: 'task_type', message: 'is required' }]);
    const celeryWrong = await http(`${server.url}/api/celery/tasks/launch`, { body: { task_type: 5 } });
    expect(celeryWrong.body.errors).toEqual([{ field: 'task_type', message: 'expected string, received number' }]);
  });

  it('bounds month_offset, so a huge one is a 422 rather than period "NaNNaN"', async () => {
    const huge = await launch({ company_id: UUID, month_offset: 100_000_000 });
    expect(huge.status).toBe(422);
    expect(huge.body.errors).toEqual([{ field: 'month_offset', message: 'must be at most 120 (ten years back)' }]);
    const tenYears = await launch({ company_id: UUID, month_offset: 120 });
    expect(tenYears.status).toBe(202);
    const record = await server.yard.waitFor(tenYears.body.task_id, 20_000);
    const now = new Date();
    const expected = `${now.getUTCFullYear() - 10}${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(record.result).toMatchObject({ compras: { period: expected }, ventas: { period: expected } });
  });
});
