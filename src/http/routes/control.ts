import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { badRequest, TaskyardError } from '../../core/errors.js';
import { jsonSchemaOf } from '../../core/schema.js';
import { TASK_STATES } from '../../core/states.js';
import type { Pause, PauseKind } from '../../store/types.js';
import type { BulkFilter, BulkReport, Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import type { Principal } from '../auth.js';
import { iso } from '../serialize.js';
import { parseInput, queryList, queryTime } from '../validation.js';
import { assertKnownCategories } from './native.js';

/**
 * Batch operations and queue control: bulk cancel and retry by filter, pause and resume of a
 * queue or task type, purge of a queue's waiting runs, and the queue list.
 */

const names = queryList(z.string().min(1).max(200));
const time = z.union([z.number().int().min(0), queryTime]);

/** The filter of a bulk action: the task list's filters, in the body. */
const filterFields = {
  name: names.optional(),
  task_type: names.optional(),
  category: names.optional(),
  company_id: z.string().min(1).max(200).optional(),
  tenant_id: z.string().min(1).max(200).optional(),
  state: queryList(z.enum(TASK_STATES)).optional(),
  queue: names.optional(),
  since: time.optional(),
  until: time.optional(),
};

const bulkFields = {
  ...filterFields,
  /** Required, with no filter, to act on every run in the caller's tenants. */
  all: z.boolean().default(false),
  dry_run: z.boolean().default(false),
  sample_size: z.number().int().min(0).max(1000).default(20),
};

const bulkCancelBody = z.strictObject({ ...bulkFields, hard: z.boolean().default(false), reason: z.string().max(1000).optional() });
const bulkRetryBody = z.strictObject(bulkFields);
const purgeBody = z.strictObject({ reason: z.string().max(1000).optional() });
const queueParams = z.object({ queue: z.string().min(1).max(100) });
const typeParams = z.object({ name: z.string().min(1).max(200) });

type BulkBody = z.output<typeof bulkRetryBody>;

/** The body's filter; refused (400) when it filters nothing and does not say `all: true`. */
function filterOf(yard: Taskyard, body: BulkBody): BulkFilter {
  assertKnownCategories(yard, { task_type: body.task_type, category: body.category });
  const filter: BulkFilter = {
    names: body.name,
    categories: body.task_type ?? body.category,
    tenantId: body.tenant_id ?? body.company_id,
    states: body.state,
    queues: body.queue,
    since: body.since,
    until: body.until,
  };
  const filters = Object.values(filter).some((v) => v !== undefined);
  if (!filters && !body.all) throw badRequest('A bulk action needs a filter (name, task_type, state, tenant_id, queue, since, until); to act on every run, send "all": true');
  return filter;
}

/** A pause holds every tenant's runs, so only a key for every tenant may set or lift one. */
function requireEveryTenant(principal: Principal): void {
  if (principal.tenants !== '*') throw new TaskyardError('forbidden', 'A pause holds every tenant\'s runs: it needs a key for all tenants ("tenants": "*")');
}

function reportJson(report: BulkReport, verb: 'cancelled' | 'retried' | 'revoked') {
  return { matched: report.matched, [verb]: report.acted, skipped: report.skipped, dry_run: report.dryRun, sample_ids: report.sample };
}

function pauseJson(pause: Pause) {
  return { kind: pause.kind, name: pause.name, paused: true, paused_at: iso(pause.pausedAt), paused_by: pause.pausedBy };
}

export function controlRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Queue control'];
  const admin = { role: 'admin' as const };

  app.post('/api/tasks/bulk/cancel', { schema: { tags, summary: 'Cancel every live task matching a filter (dry_run counts them)', body: jsonSchemaOf(bulkCancelBody) } }, async (request) => {
    const body = parseInput(bulkCancelBody, request.body, 'body');
    const report = await yard.bulkCancel(filterOf(yard, body), { dryRun: body.dry_run, sampleSize: body.sample_size, hard: body.hard, reason: body.reason ?? null }, scopeOf(request));
    return reportJson(report, 'cancelled');
  });

  app.post('/api/tasks/bulk/retry', { schema: { tags, summary: 'Retry every FAILURE or REVOKED task matching a filter (dry_run counts them)', body: jsonSchemaOf(bulkRetryBody) } }, async (request) => {
    const body = parseInput(bulkRetryBody, request.body, 'body');
    const report = await yard.bulkRetry(filterOf(yard, body), { dryRun: body.dry_run, sampleSize: body.sample_size }, scopeOf(request));
    return reportJson(report, 'retried');
  });

  app.get('/api/queues', { schema: { tags, summary: 'Queues with their waiting runs and pause state, and paused task types' } }, async (request) => {
    const [queues, pauses] = await Promise.all([yard.queues(scopeOf(request)), yard.pauses()]);
    return {
      queues: queues.map((q) => ({ name: q.name, paused: q.paused, waiting: q.waiting, task_types: q.taskTypes })),
      paused_task_types: pauses.filter((p) => p.kind === 'task_type').map(pauseJson),
    };
  });

  const pauseRoutes = (path: string, kind: PauseKind, nameOf: (params: unknown) => string) => {
    app.post(`${path}/pause`, { config: admin, schema: { tags, summary: `Pause a ${kind === 'queue' ? 'queue' : 'task type'}: its runs are launched but none starts` } }, async (request) => {
      requireEveryTenant(request.principal);
      return pauseJson(await yard.pause(kind, nameOf(request.params), request.principal.keyId));
    });
    app.post(`${path}/resume`, { config: admin, schema: { tags, summary: `Resume a paused ${kind === 'queue' ? 'queue' : 'task type'}` } }, async (request) => {
      requireEveryTenant(request.principal);
      const name = nameOf(request.params);
      const resumed = await yard.resume(kind, name);
      return { kind, name, paused: false, resumed };
    });
  };
  pauseRoutes('/api/queues/:queue', 'queue', (params) => parseInput(queueParams, params, 'query').queue);
  pauseRoutes('/api/tasks/types/:name', 'task_type', (params) => parseInput(typeParams, params, 'query').name);

  app.post('/api/queues/:queue/purge', { config: admin, schema: { tags, summary: "Revoke a queue's waiting (PENDING and RETRY) runs", body: jsonSchemaOf(purgeBody) } }, async (request) => {
    const { queue } = parseInput(queueParams, request.params, 'query');
    const body = parseInput(purgeBody, request.body, 'body');
    return { queue, ...reportJson(await yard.purge(queue, body.reason ?? null, scopeOf(request)), 'revoked') };
  });
}
