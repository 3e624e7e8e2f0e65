/**
 * Every route the bad-input sweep (test/fuzz.test.ts) throws requests at. A `{name}` segment is
 * a path parameter: the fuzzer fills it with real ids, unknown ids and junk. Add each new
 * router's paths here (the compatibility routers too), so the sweep covers every endpoint.
 */
export const fuzzRoutes: string[] = [
  // Native and unified API.
  '/api/tasks',
  '/api/tasks/batch',
  '/api/tasks/{task_id}',
  '/api/tasks/{task_id}/stop',
  '/api/tasks/{task_id}/retry',
  '/api/tasks/{task_id}/status',
  '/api/tasks/{task_id}/cancel',
  '/api/tasks/{task_id}/timeline',
  '/api/tasks/statistics',
  '/api/tasks/types',
  // Schedules.
  '/api/schedules',
  '/api/schedules/{name}',
  // Batch operations and queue control.
  '/api/tasks/bulk/cancel',
  '/api/tasks/bulk/retry',
  '/api/tasks/types/{name}/pause',
  '/api/tasks/types/{name}/resume',
  '/api/queues',
  '/api/queues/{queue}/pause',
  '/api/queues/{queue}/resume',
  '/api/queues/{queue}/purge',
  // Seed task-system-migration-guide triggers.
  '/api/tasks/rating/recalculate',
  '/api/tasks/impressions/sync',
  '/api/tasks/cleanup/sessions',
  // Celery-style API.
  '/api/celery/tasks',
  '/api/celery/tasks/launch',
  '/api/celery/tasks/{task_id}',
  '/api/celery/tasks/{task_id}/retry',
  '/api/celery/stats',
  // Company tracker and onboarding.
  '/api/v1/companies/{company_id}/task_status',
  '/api/v1/companies/{company_id}/onboarding/finalize',
  // Legacy reconciliation module.
  '/reconciliation-tasks',
  '/reconciliation-tasks/start',
  '/reconciliation-tasks/{id}',
  '/reconciliation-tasks/{id}/cancel',
  '/reconciliation-tasks/queued',
  '/reconciliation-tasks/task_counts',
  // Served by the app itself.
  '/openapi.json',
  '/health',
  // Operations: probes and metrics.
  '/healthz',
  '/readyz',
  '/metrics',
  // The dashboard: its page and who the caller is.
  '/',
  '/api/whoami',
];
