import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { TaskRecord } from '../../core/record.js';
import { describeParameters, jsonSchemaOf } from '../../core/schema.js';
import { isTerminal } from '../../core/states.js';
import type { WorkerInfo } from '../../engines/types.js';
import type { TenantScope } from '../../store/types.js';
import type { Launched, LaunchOutcome, Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { iso } from '../serialize.js';
import { parseInput, queryBool, taskIdParams, taskIdParamsSchema } from '../validation.js';

/**
 * The Celery-style API (seeds celery-tasks-api and celery-router-module), exactly as the
 * seeds document it. Here `task_type` is the definition name. One documented fix: an unknown
 * task id is a 404, not PENDING.
 */

const launchBody = z.object({
  task_type: z.string().min(1).max(200),
  params: z.record(z.string(), z.unknown()).default({}),
  // Not in the seed; Celery's apply_async options, so delayed runs can be launched here too.
  countdown: z.number().min(0).max(365 * 86400).optional(),
  eta: z.union([z.string(), z.number()]).optional(),
  // As on the native API: a repeated key answers with the first run.
  idempotency_key: z.string().min(1).max(200).optional(),
});


const revokeQuery = z.object({
  terminate: queryBool.default(false),
  reason: z.string().max(1000).optional(),
});


/**
 * The launch body's JSON schema for the OpenAPI document: `task_type` is an enum of the tasks
 * this API launches, as the seed's `TaskType` enum is (internal definitions are not among them).
 */
function launchBodySchema(yard: Taskyard): Record<string, unknown> {
  const schema = jsonSchemaOf(launchBody) as { properties: Record<string, Record<string, unknown>> };
  const names = yard.registry.publicDefinitions().map((d) => d.name);
  if (names.length > 0) schema.properties.task_type = { ...schema.properties.task_type, enum: names };
  return schema;
}

const ANSWERED_BY: Record<Exclude<LaunchOutcome, 'created'>, string> = {
  idempotent: 'its idempotency key belongs to task',
  deduplicated: 'the same run is already live as task',
  cached: 'a recent result is reused from task',
};

/** Most delayed runs read (newest first) to build `scheduled_tasks`. */
const SCHEDULED_SCAN_LIMIT = 1000;

/** Celery's `meta` (AsyncResult.info) for each state, with Taskyard's progress added while running. */
function metaOf(r: TaskRecord, now: number): Record<string, unknown> | null {
  switch (r.state) {
    case 'PENDING': {
      const meta: Record<string, unknown> = { info: 'Task is waiting to be executed' };
      if (r.runAt > now) meta.eta = iso(r.runAt);
      return meta;
    }
    case 'STARTED':
      return { info: 'Task is running', progress: r.progress, message: r.progressMessage };
    case 'RETRY':
      return {
        info: 'Task is being retried',
        attempt: r.attempt,
        max_attempts: r.maxAttempts,
        eta: iso(r.runAt),
        last_error: r.error,
      };
    default:
      return null;
  }
}

export function celeryStatusJson(r: TaskRecord, now = Date.now()) {
  return {
    task_id: r.id,
    status: r.state,
    result: r.state === 'SUCCESS' ? r.result : null,
    error: r.state === 'FAILURE' || r.state === 'REVOKED' ? r.error : null,
    traceback: r.state === 'FAILURE' ? r.traceback : null,
    meta: metaOf(r, now),
  };
}

/** Celery's `inspect().active()` entry. `time_start` is epoch seconds, as Celery reports it. */
function activeJson(worker: WorkerInfo, run: WorkerInfo['active'][number]) {
  return {
    id: run.id,
    name: run.name,
    type: run.name,
    args: [],
    kwargs: run.params,
    hostname: worker.name,
    time_start: run.startedAt / 1000,
    acknowledged: true,
    worker_pid: worker.pid,
  };
}

/** Celery's `inspect().scheduled()` entry: the eta, the priority and the request. */
function scheduledJson(r: TaskRecord, hostname: string) {
  return {
    eta: iso(r.runAt),
    priority: r.priority,
    request: {
      id: r.id,
      name: r.name,
      type: r.name,
      args: [],
      kwargs: r.params,
      hostname,
      time_start: null,
      acknowledged: false,
      worker_pid: null,
    },
  };
}

/** Waiting runs whose time has not come yet (delayed launches and retry backoffs). */
async function delayedRuns(yard: Taskyard, scope: TenantScope, now: number): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  let cursor: string | undefined;
  let scanned = 0;
  do {
    const page = await yard.list({ states: ['PENDING', 'RETRY'], limit: 200, cursor }, scope);
    scanned += page.tasks.length;
    for (const r of page.tasks) if (r.runAt > now) out.push(r);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && scanned < SCHEDULED_SCAN_LIMIT);
  return out.sort((a, b) => a.runAt - b.runAt);
}

/** Delayed runs are not held by a worker yet; show each under the worker of its engine that will take it. */
function hostnameFor(r: TaskRecord, workers: WorkerInfo[]): string {
  return (workers.find((w) => w.engine === r.engine) ?? workers[0])?.name ?? `${r.engine}@unassigned`;
}

export function celeryRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Celery Tasks'];

  app.get('/api/celery/tasks', { schema: { tags, summary: 'List the available tasks and their parameters' } }, async () =>
    yard.registry.publicDefinitions().map((d) => ({
      task_type: d.name,
      name: d.name,
      description: d.description,
      parameters: describeParameters(d.params),
    })),
  );

  app.post('/api/celery/tasks/launch', { schema: { tags, summary: 'Launch a task', body: launchBodySchema(yard) } }, async (request) => {
    const body = parseInput(launchBody, request.body, 'body');
    const [{ record, outcome }] = (await yard.launchEach(
      [{ name: body.task_type, params: body.params, countdown: body.countdown, eta: body.eta, idempotencyKey: body.idempotency_key }],
      scopeOf(request),
    )) as [Launched];
    if (outcome === 'created') {
      return { task_id: record.id, task_type: record.name, status: 'PENDING', message: `Task ${record.name} launched successfully` };
    }
    // The seed's response, answered by an earlier run: its real status, and why.
    return {
      task_id: record.id,
      task_type: record.name,
      status: record.state,
      message: `Task ${record.name} was not launched again: ${ANSWERED_BY[outcome]} ${record.id}`,
      ...(outcome === 'cached' ? { cached: true } : { deduplicated: true }),
    };
  });

  app.get('/api/celery/tasks/:task_id', { schema: { tags, summary: 'Status and result of a task', params: taskIdParamsSchema } }, async (request) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    return celeryStatusJson(await yard.get(task_id, scopeOf(request)));
  });

  app.delete(
    '/api/celery/tasks/:task_id',
    { schema: { tags, summary: 'Revoke a task (terminate=true also stops it if running)', params: taskIdParamsSchema, querystring: jsonSchemaOf(revokeQuery) } },
    async (request) => {
      const { task_id } = parseInput(taskIdParams, request.params, 'query');
      const q = parseInput(revokeQuery, request.query, 'query');
      const scope = scopeOf(request);
      const current = await yard.get(task_id, scope);
      // As in Celery, revoking a finished task is a no-op: it answers with the real state.
      if (isTerminal(current.state) && current.state !== 'REVOKED') {
        return {
          task_id: current.id,
          status: current.state,
          terminate: q.terminate,
          message: `Task ${current.id} had already finished (${current.state}); nothing was revoked`,
        };
      }
      const record = current.state === 'REVOKED' ? current : await yard.cancel(task_id, { hard: q.terminate, reason: q.reason ?? null }, scope);
      const revoked = record.state === 'REVOKED' || record.cancelRequested !== null;
      return {
        task_id: record.id,
        status: revoked ? 'revoked' : record.state,
        terminate: q.terminate,
        message: record.state === 'REVOKED' ? `Task ${record.id} has been revoked` : `Task ${record.id} will be revoked: the cancel is recorded and the task is stopping`,
      };
    },
  );

  app.post('/api/celery/tasks/:task_id/retry', { schema: { tags, summary: 'Retry a FAILURE or REVOKED task', params: taskIdParamsSchema } }, async (request) => {
    const { task_id } = parseInput(taskIdParams, request.params, 'query');
    const record = await yard.retry(task_id, scopeOf(request));
    return {
      task_id: record.id,
      task_type: record.name,
      status: 'PENDING',
      message: `Task ${record.id} has been queued for retry`,
    };
  });

  app.get('/api/celery/stats', { config: { role: 'admin' }, schema: { tags, summary: 'Worker and queue statistics' } }, async (request) => {
    const scope = scopeOf(request);
    const now = Date.now();
    // A tenant-limited key sees only its tenants' runs among the workers' active and total ones.
    const [stats, delayed] = await Promise.all([yard.stats(scope), delayedRuns(yard, scope, now)]);
    const active_tasks: Record<string, unknown[]> = {};
    const worker_stats: Record<string, unknown> = {};
    for (const w of stats.workers) {
      active_tasks[w.name] = w.active.map((run) => activeJson(w, run));
      worker_stats[w.name] = {
        total: w.processed,
        pid: w.pid,
        uptime: Math.floor((now - w.startedAt) / 1000),
        pool: { 'max-concurrency': w.concurrency, processes: [w.pid] },
      };
    }
    const scheduled_tasks: Record<string, unknown[]> = {};
    for (const r of delayed) {
      const host = hostnameFor(r, stats.workers);
      (scheduled_tasks[host] ??= []).push(scheduledJson(r, host));
    }
    return { active_tasks, scheduled_tasks, registered_tasks: yard.registry.publicDefinitions().map((d) => d.name), worker_stats };
  });
}
