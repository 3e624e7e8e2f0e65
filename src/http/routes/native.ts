import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TaskyardError } from '../../core/errors.js';
import { describeParameters, jsonSchemaOf } from '../../core/schema.js';
import type { Attempt } from '../../core/attempts.js';
import { isTerminal, TASK_STATES } from '../../core/states.js';
import type { Launched, SubmitRequest, Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { iso, launchedJsonSchema, taskJson, taskPageSchema, taskWithAttemptsSchema } from '../serialize.js';
import { parseInput, queryInt, queryList, queryTime, taskIdParams, taskIdParamsSchema } from '../validation.js';

const launchBody = z
  .object({
    task_type: z.string().min(1).max(200).optional(),
    name: z.string().min(1).max(200).optional(),
    params: z.record(z.string(), z.unknown()).default({}),
    eta: z.union([z.string(), z.number()]).optional(),
    countdown: z.number().min(0).max(365 * 86400).optional(),
    priority: z.number().int().min(-1000).max(1000).optional(),
    queue: z.string().min(1).max(100).optional(),
    idempotency_key: z.string().min(1).max(200).optional(),
  })
  .refine((b) => b.task_type || b.name, { message: 'task_type is required', path: ['task_type'] });

type LaunchBody = z.output<typeof launchBody>;

const toSubmit = (b: LaunchBody): SubmitRequest => ({
  name: (b.task_type ?? b.name)!,
  params: b.params,
  eta: b.eta,
  countdown: b.countdown,
  priority: b.priority,
  queue: b.queue,
  idempotencyKey: b.idempotency_key,
});

const cursorText = z
  .string()
  .max(200)
  .transform((value, ctx) => {
    const id = Buffer.from(value, 'base64url').toString('utf8');
    if (!/^[0-9a-f-]{36}$/.test(id)) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API returned' });
      return z.NEVER;
    }
    return id;
  });

const listQuery = z.object({
  task_type: queryList(z.string().max(200)).optional(),
  category: queryList(z.string().max(200)).optional(),
  name: queryList(z.string().max(200)).optional(),
  company_id: z.string().max(200).optional(),
  tenant_id: z.string().max(200).optional(),
  state: queryList(z.enum(TASK_STATES)).optional(),
  since: queryTime.optional(),
  until: queryTime.optional(),
  q: z.string().trim().max(200).optional(),
  limit: queryInt(1, 500).default(50),
  cursor: cursorText.optional(),
});

const stopBody = z.object({
  hard: z.boolean().default(false),
  reason: z.string().max(1000).nullable().optional(),
});

const timelineQuery = z.object({
  after: queryInt(0, Number.MAX_SAFE_INTEGER).default(0),
  limit: queryInt(1, 1000).default(100),
});

const batchBody = z.object({ tasks: z.array(launchBody).min(1).max(1000) });


/**
 * `task_type` (or `category`) filters by category here, unlike the Celery router where it is the
 * task name. A value that is no category would silently match nothing: say so, and point to name=.
 */
export function assertKnownCategories(yard: Taskyard, filters: Record<'task_type' | 'category', string[] | undefined>): void {
  const known = [...new Set(yard.registry.all().map((d) => yard.registry.categoryOf(d)))].sort();
  for (const [field, values] of Object.entries(filters)) {
    const unknown = values?.find((v) => !known.includes(v));
    if (unknown === undefined) continue;
    const message = `${field} is a category (one of: ${known.join(', ')}); to filter by task name use name=${unknown}`;
    throw new TaskyardError('invalid_params', `Invalid query: ${message}`, [{ field, message }]);
  }
}

/** The native and unified API (seed reconciliation-task-compatibility, plus launch). */
export function nativeRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Tasks'];

  app.get('/api/tasks', { schema: { tags, summary: 'List tasks, newest first', querystring: jsonSchemaOf(listQuery), response: { 200: taskPageSchema } } }, async (request) => {
    const q = parseInput(listQuery, request.query, 'query');
    assertKnownCategories(yard, { task_type: q.task_type, category: q.category });
    const tenantId = q.tenant_id ?? q.company_id;
    const page = await yard.list(
      {
        categories: q.task_type ?? q.category,
        names: q.name,
        tenantId,
        states: q.state,
        since: q.since,
        until: q.until,
        search: q.q || undefined,
        limit: q.limit,
        cursor: q.cursor,
      },
      scopeOf(request),
    );
    const now = Date.now();
    return {
      tasks: page.tasks.map((t) => taskJson(t, now)),
      count: page.tasks.length,
      next_cursor: page.nextCursor ? Buffer.from(page.nextCursor).toString('base64url') : null,
    };
  });

  app.post('/api/tasks', { schema: { tags, summary: 'Launch a task', body: jsonSchemaOf(launchBody), response: { 200: launchedJsonSchema, 202: launchedJsonSchema } } }, async (request, reply) => {
    const body = parseInput(launchBody, request.body, 'body');
    const [launched] = await yard.launchEach([toSubmit(body)], scopeOf(request));
    // 202: a new run was accepted; 200: an earlier run answers (idempotency key, unique or cache).
    return reply.status(launched!.outcome === 'created' ? 202 : 200).send(launchedJson(launched!));
  });

  app.post('/api/tasks/batch', { schema: { tags, summary: 'Launch many tasks (all or nothing)', body: jsonSchemaOf(batchBody) } }, async (request, reply) => {
    const body = parseInput(batchBody, request.body, 'body');
    const launched = await yard.launchEach(body.tasks.map(toSubmit), scopeOf(request));
    const created = launched.some((l) => l.outcome === 'created');
    return reply.status(created ? 202 : 200).send({ tasks: launched.map(launchedJson), count: launched.length });
  });

  app.get('/api/tasks/statistics', { schema: { tags, summary: 'Counts, durations, throughput, queue depth and workers' } }, async (request) => {
    const stats = await yard.stats(scopeOf(request));
    const total = Object.values(stats.byState).reduce((a, b) => a + b, 0);
    const seconds = (ms: number | null) => (ms === null ? null : ms / 1000);
    return {
      total,
      by_state: stats.byState,
      by_category: stats.byCategory,
      by_name: stats.byName,
      durations: { p50_seconds: seconds(stats.durations.p50), p95_seconds: seconds(stats.durations.p95), samples: stats.durations.samples },
      throughput: { last_minute: stats.throughput.lastMinute, last_hour: stats.throughput.lastHour, per_second: stats.throughput.perSecond },
      queue_depth: { pending: stats.queueDepth.pending, delayed: stats.queueDepth.delayed, retry: stats.queueDepth.retry, by_queue: stats.queueDepth.byQueue },
      // Worker details (pids, hosts, running params) are for admins only.
      workers:
        request.principal.role === 'admin'
          ? stats.workers.map((w) => ({ name: w.name, engine: w.engine, host: w.host ?? hostname(), pid: w.pid, concurrency: w.concurrency, active: w.active.length, processed: w.processed, started_at: iso(w.startedAt) }))
          : undefined,
    };
  });

  app.get('/api/tasks/types', { schema: { tags, summary: 'Task types, grouped by category' } }, async () => {
    const byCategory = new Map<string, unknown[]>();
    for (const d of yard.registry.publicDefinitions()) {
      const category = yard.registry.categoryOf(d);
      const list = byCategory.get(category) ?? [];
      list.push({
        name: d.name,
        display_name: d.displayName,
        description: d.description,
        queue: d.queue,
        route: d.route,
        isolation: d.isolation,
        priority: d.priority,
        max_attempts: d.retry.attempts,
        soft_timeout_seconds: d.softTimeoutMs === null ? null : d.softTimeoutMs / 1000,
        hard_timeout_seconds: d.hardTimeoutMs === null ? null : d.hardTimeoutMs / 1000,
        parameters: describeParameters(d.params),
        params_schema: jsonSchemaOf(d.params),
      });
      byCategory.set(category, list);
    }
    return {
      categories: [...byCategory.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([category, tasks]) => ({ category, count: tasks.length, tasks })),
    };
  });

  app.get('/api/tasks/:task_id', { schema: { tags, summary: 'The whole record of one task', params: taskIdParamsSchema, response: { 200: taskWithAttemptsSchema } } }, async (request) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    const scope = scopeOf(request);
    const record = await yard.get(task_id, scope);
    const attempts = await yard.attempts(record, scope);
    return { ...taskJson(record), attempts: attempts.map(attemptJson) };
  });

  app.get(
    '/api/tasks/:task_id/timeline',
    { schema: { tags, summary: 'Every transition, progress step, log line and cancel request of a task, oldest first', params: taskIdParamsSchema, querystring: jsonSchemaOf(timelineQuery) } },
    async (request) => {
      const { task_id } = parseInput(taskIdParams, request.params, 'query');
      const q = parseInput(timelineQuery, request.query, 'query');
      const page = await yard.timeline(task_id, { after: q.after, limit: q.limit }, scopeOf(request));
      return {
        task_id,
        events: page.events.map((e) => ({ seq: e.seq, type: e.type, state: e.state, at: iso(e.at), data: e.data })),
        next_after: page.nextAfter,
      };
    },
  );

  app.post('/api/tasks/:task_id/stop', { schema: { tags, summary: 'Cancel a task (soft or hard)', params: taskIdParamsSchema, body: jsonSchemaOf(stopBody) } }, async (request, reply) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    const body = parseInput(stopBody, request.body, 'body');
    const record = await yard.cancel(task_id, { hard: body.hard, reason: body.reason ?? null }, scopeOf(request));
    // 202: the cancel is recorded, and the run is still finishing up.
    return reply.status(isTerminal(record.state) ? 200 : 202).send(taskJson(record));
  });

  app.post('/api/tasks/:task_id/retry', { schema: { tags, summary: 'Retry a FAILURE or REVOKED task', params: taskIdParamsSchema } }, async (request, reply) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    return reply.status(202).send(taskJson(await yard.retry(task_id, scopeOf(request))));
  });

  // Seed task-system-migration-guide: the TaskManager's status and cancel routes.
  app.get('/api/tasks/:task_id/status', { schema: { tags, summary: 'Status, result and error of a task', params: taskIdParamsSchema } }, async (request) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    const r = await yard.get(task_id, scopeOf(request));
    return {
      task_id: r.id,
      status: r.state,
      progress: r.progress,
      progress_message: r.progressMessage,
      result: r.result,
      error: r.error,
      created_at: iso(r.createdAt),
      started_at: iso(r.startedAt),
      completed_at: iso(r.finishedAt),
    };
  });

  app.post('/api/tasks/:task_id/cancel', { schema: { tags, summary: 'Cancel a task', params: taskIdParamsSchema, body: jsonSchemaOf(stopBody) } }, async (request, reply) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    const body = parseInput(stopBody, request.body, 'body');
    const r = await yard.cancel(task_id, { hard: body.hard, reason: body.reason ?? null }, scopeOf(request));
    return reply
      .status(isTerminal(r.state) ? 200 : 202)
      .send({ task_id: r.id, cancelled: true, status: r.state, cancel_requested: r.cancelRequested, reason: r.revokeReason });
  });
}

/**
 * A launched task as the API returns it. One answered by an earlier run says why:
 * `deduplicated` (its idempotency key's run, or the live run of a `unique` task) or `cached`.
 */
export function launchedJson({ record, outcome }: Launched) {
  const json = taskJson(record);
  if (outcome === 'created') return json;
  return { ...json, ...(outcome === 'cached' ? { cached: true } : { deduplicated: true }), launch_outcome: outcome };
}

function attemptJson(a: Attempt) {
  return {
    attempt: a.attempt,
    worker: a.worker,
    started_at: iso(a.startedAt),
    finished_at: iso(a.finishedAt),
    outcome: a.outcome,
    error: a.error,
    traceback: a.traceback,
  };
}
