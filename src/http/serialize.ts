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
