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
  '/api/tasks/statistics',
  '/api/tasks/types',
  // Served by the app itself.
  '/openapi.json',
  '/health',
];
