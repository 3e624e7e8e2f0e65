import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, TaskyardError } from '../../src/core/errors.js';
import type { TaskRecord } from '../../src/core/record.js';
import { jsonSchemaOf } from '../../src/core/schema.js';
import { scopeOf } from '../../src/http/app.js';
import { parseInput, queryInt, queryList } from '../../src/http/validation.js';
import type { TenantScope } from '../../src/store/types.js';
import type { Taskyard } from '../../src/taskyard.js';
import {
  FINISHED_STATUSES,
  RECONCILIATION_MODES,
  RECONCILIATION_STATUSES,
  TASK_OF_MODE,
  type ReconciliationRow,
  type ReconciliationStore,
} from './store.js';

const startBody = z.object({
  // The seed sends `4`; UUID tenants arrive as strings.
  tenant_id: z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().trim().min(1).max(200)]),
  mode: z.enum(RECONCILIATION_MODES).default('compare_two_engines'),
  config: z
    .record(z.string(), z.unknown())
    .nullish()
    .transform((c) => c ?? {}),
});

const tenantQuery = z.string().trim().min(1).max(200);

const listQuery = z.object({
  tenant_id: tenantQuery.optional(),
  status: queryList(z.enum(RECONCILIATION_STATUSES)).optional(),
  limit: queryInt(1, 500).default(50),
  offset: queryInt(0, 1_000_000_000).default(0),
});

const queuedQuery = z.object({
  tenant_id: tenantQuery.optional(),
  limit: queryInt(1, 500).default(100),
});

const countsQuery = z.object({ tenant_id: tenantQuery.optional() });

const cancelBody = z.object({ reason: z.string().max(1000).nullish() });

const idSchema = { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] } as const;

const DEFAULT_CANCEL_REASON = 'Cancelled by user';

const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text));
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** The module's record: the legacy `ReconciliationTask` serializer. */
export function reconciliationJson(row: ReconciliationRow) {
  return {
    id: row.id,
    task_id: row.task_id,
    tenant_id: row.tenant_id,
    mode: row.mode,
    status: row.status,
    config: parseJson(row.config),
    pipeline: parseJson(row.pipeline),
    suggestions: parseJson(row.suggestions),
    stats: parseJson(row.stats),
    error_message: row.error_message,
    progress: row.progress,
    created_at: row.created_at,
    started_at: row.started_at,
    completed_at: row.completed_at,
    updated_at: row.updated_at,
  };
}

/** What the ledger says about the run right now (the seed's "live Celery info"). */
function liveJson(r: TaskRecord) {
  return {
    state: r.state,
    progress: r.progress,
    progress_message: r.progressMessage,
    worker: r.worker,
    started_at: iso(r.startedAt),
    eta: r.runAt > r.createdAt ? iso(r.runAt) : null,
  };
}

const inScope = (row: ReconciliationRow, scope: TenantScope) => scope === '*' || scope.includes(row.tenant_id);

const notFound = (id: string) => new TaskyardError('task_not_found', `Reconciliation task ${id} not found`);

/** Ids are positive integers; anything else, and rows of other tenants, are simply not found. */
function findRow(store: ReconciliationStore, request: FastifyRequest): ReconciliationRow {
  const raw = String((request.params as { id?: unknown }).id ?? '');
  const row = /^\d{1,15}$/.test(raw) ? store.get(Number(raw)) : undefined;
  if (!row || !inScope(row, scopeOf(request))) throw notFound(raw);
  return row;
}

/** DRF's LimitOffsetPagination links, so legacy clients can page as before. */
function pageLink(request: FastifyRequest, limit: number, offset: number | null): string | null {
  if (offset === null) return null;
  const [path, search = ''] = request.url.split('?');
  const query = new URLSearchParams(search);
  query.set('limit', String(limit));
  if (offset > 0) query.set('offset', String(offset));
  else query.delete('offset');
  return `${request.protocol}://${request.host}${path}?${query.toString()}`;
}

/** Seed reconciliation-task-compatibility: the legacy `ReconciliationTaskViewSet`. */
export function reconciliationRoutes(app: FastifyInstance, deps: { yard: Taskyard; store: ReconciliationStore }): void {
  const { yard, store } = deps;
  const tags = ['Reconciliation (legacy)'];

  app.post(
    '/reconciliation-tasks/start',
    { schema: { tags, summary: 'Start a reconciliation task', body: jsonSchemaOf(startBody) } },
    async (request, reply) => {
      const body = parseInput(startBody, request.body, 'body');
      const row = store.create({ tenantId: String(body.tenant_id), mode: body.mode, config: body.config });
      let record: TaskRecord;
      try {
        [record] = (await yard.launch(
          [{ name: TASK_OF_MODE[body.mode], params: { tenant_id: body.tenant_id, reconciliation_task_id: row.id, config: body.config } }],
          scopeOf(request),
        )) as [TaskRecord];
      } catch (error) {
        store.delete(row.id);
        throw error;
      }
      // The run may already have started and been bound by the hooks (they find the row through
      // params.reconciliation_task_id); storing the same id again is harmless.
      store.bindTask(row.id, record.id);
      // Like the legacy view, answer with the record as created: queued, with its task id.
      return reply.status(201).send(reconciliationJson({ ...row, task_id: record.id }));
    },
  );

  app.get(
    '/reconciliation-tasks',
    { schema: { tags, summary: 'List reconciliation tasks, newest first', querystring: jsonSchemaOf(listQuery) } },
    async (request) => {
      const q = parseInput(listQuery, request.query, 'query');
      const { rows, count } = store.list({ scope: scopeOf(request), tenantId: q.tenant_id, statuses: q.status, limit: q.limit, offset: q.offset });
      const nextOffset = q.offset + rows.length < count ? q.offset + q.limit : null;
      const previousOffset = q.offset > 0 ? Math.max(0, q.offset - q.limit) : null;
      return {
        count,
        next: pageLink(request, q.limit, nextOffset),
        previous: pageLink(request, q.limit, previousOffset),
        results: rows.map(reconciliationJson),
      };
    },
  );

  app.get(
    '/reconciliation-tasks/queued',
    { schema: { tags, summary: 'Queued and running reconciliation tasks, with live engine info', querystring: jsonSchemaOf(queuedQuery) } },
    async (request) => {
      const q = parseInput(queuedQuery, request.query, 'query');
      const scope = scopeOf(request);
      const { rows, count } = store.list({ scope, tenantId: q.tenant_id, statuses: ['queued', 'running'], limit: q.limit, offset: 0, ascending: true });
      const tasks = await Promise.all(
        rows.map(async (row) => {
          const run = row.task_id ? await yard.get(row.task_id, scope).catch(() => null) : null;
          return { ...reconciliationJson(row), live: run ? liveJson(run) : null };
        }),
      );
      return { count, tasks };
    },
  );

  app.get(
    '/reconciliation-tasks/task_counts',
    { schema: { tags, summary: 'Reconciliation task counts by status', querystring: jsonSchemaOf(countsQuery) } },
    async (request) => {
      const q = parseInput(countsQuery, request.query, 'query');
      return store.counts({ scope: scopeOf(request), tenantId: q.tenant_id });
    },
  );

  app.get('/reconciliation-tasks/:id', { schema: { tags, summary: 'One reconciliation task', params: idSchema } }, async (request) =>
    reconciliationJson(findRow(store, request)),
  );

  app.post(
    '/reconciliation-tasks/:id/cancel',
    { schema: { tags, summary: 'Cancel a reconciliation task (revoke with terminate)', params: idSchema, body: jsonSchemaOf(cancelBody) } },
    async (request) => {
      const row = findRow(store, request);
      const body = parseInput(cancelBody, request.body, 'body');
      if (FINISHED_STATUSES.includes(row.status)) {
        throw conflict(`Reconciliation task ${row.id} is already ${row.status}; it cannot be cancelled`);
      }
      if (!row.task_id) throw conflict(`Reconciliation task ${row.id} is still being started; try again`);
      const reason = body.reason?.trim() || DEFAULT_CANCEL_REASON;
      try {
        // Legacy semantics: revoke(task_id, terminate=True).
        await yard.cancel(row.task_id, { hard: true, reason }, scopeOf(request));
      } catch (error) {
        // A run the ledger no longer has (pruned) has nothing left to stop; the row still ends.
        if (!(error instanceof TaskyardError && error.code === 'task_not_found')) throw error;
      }
      store.markEnded(row.id, 'cancelled', reason, new Date().toISOString());
      return reconciliationJson(store.get(row.id)!);
    },
  );
}
