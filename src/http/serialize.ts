import { durationSeconds, type TaskRecord } from '../core/record.js';

export const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** The native API's task shape: snake_case, ISO times. `task_type` is the category (unified API). */
export function taskJson(r: TaskRecord, now = Date.now()) {
  return {
    task_id: r.id,
    name: r.name,
    task_type: r.category,
    category: r.category,
    display_name: r.displayName,
    state: r.state,
    progress: r.progress,
    progress_message: r.progressMessage,
    tenant_id: r.tenantId,
    params: r.params,
    result: r.result,
    error: r.error,
    traceback: r.traceback,
    meta: r.meta,
    attempt: r.attempt,
    max_attempts: r.maxAttempts,
    priority: r.priority,
    queue: r.queue,
    route: r.route,
    engine: r.engine,
    worker: r.worker,
    eta: r.runAt > r.createdAt ? iso(r.runAt) : null,
    idempotency_key: r.idempotencyKey,
    cancel_requested: r.cancelRequested,
    revoke_reason: r.revokeReason,
    created_at: iso(r.createdAt),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    updated_at: iso(r.updatedAt),
    duration_seconds: durationSeconds(r, now),
  };
}

// ---- response schemas ---------------------------------------------------------------------
// Fastify compiles these into serializers (fast-json-stringify), much cheaper than JSON.stringify
// on the hot routes. A property missing from a schema would be dropped from the answer, so every
// field `taskJson` returns is listed (test/response-schemas.test.ts holds them to it).

const text = { type: 'string' } as const;
const maybeText = { type: ['string', 'null'] } as const;
const number = { type: 'number' } as const;
/** Any JSON value (params, results, meta): serialized as JSON.stringify would. */
const anyJson = {} as const;

export const taskJsonSchema = {
  type: 'object',
  properties: {
    task_id: text, name: text, task_type: text, category: text, display_name: text, state: text, progress: number,
    progress_message: maybeText, tenant_id: maybeText, params: anyJson, result: anyJson, error: maybeText,
    traceback: maybeText, meta: anyJson, attempt: number, max_attempts: number, priority: number, queue: text,
    route: text, engine: text, worker: maybeText, eta: maybeText, idempotency_key: maybeText,
    cancel_requested: maybeText, revoke_reason: maybeText, created_at: text, started_at: maybeText,
    finished_at: maybeText, updated_at: text, duration_seconds: { type: ['number', 'null'] },
  },
} as const;

/** A launch's answer: the task, and when an earlier run answers, why (see launchedJson). */
export const launchedJsonSchema = {
  type: 'object',
  properties: {
    ...taskJsonSchema.properties,
    deduplicated: { type: 'boolean' },
    cached: { type: 'boolean' },
    launch_outcome: text,
  },
} as const;

export const attemptJsonSchema = {
  type: 'object',
  properties: {
    attempt: number, worker: maybeText, started_at: maybeText, finished_at: maybeText, outcome: text,
    error: maybeText, traceback: maybeText,
  },
} as const;

export const taskWithAttemptsSchema = {
  type: 'object',
  properties: { ...taskJsonSchema.properties, attempts: { type: 'array', items: attemptJsonSchema } },
} as const;

export const taskPageSchema = {
  type: 'object',
  properties: { tasks: { type: 'array', items: taskJsonSchema }, count: number, next_cursor: maybeText },
} as const;
