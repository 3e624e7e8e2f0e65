import type { FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';
import { TaskyardError } from '../../core/errors.js';
import { readiness } from '../../observability/readiness.js';
import type { TaskMetrics } from '../../observability/task-metrics.js';
import type { Taskyard } from '../../taskyard.js';

/** Probes and scrapes: no credentials or rate limit for probes, never a line in the info log. */
const QUIET = { logLevel: 'silent', schema: { hide: true } } as const;

/**
 * `/healthz` (the process answers), `/readyz` (it should get traffic: ledger and Redis answer, no
 * shutdown under way) and, unless `metrics` is null, `/metrics` for admins.
 */
export function operationRoutes(app: FastifyInstance, yard: Taskyard, metrics: TaskMetrics | null): void {
  app.get('/healthz', { ...QUIET, config: { public: true, unlimited: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { ...QUIET, config: { public: true, unlimited: true } }, async (_request, reply) => {
    const state = await readiness(yard);
    if (state.status === 'ready') return state;
    const down = Object.entries(state.checks).filter(([, c]) => c !== 'ok').map(([name, c]) => `${name} is ${c}`);
    const detail = state.status === 'draining' ? 'Shutting down: finishing running tasks' : `Not ready: ${down.join('; ')}`;
    return reply.status(503).header('Retry-After', '5').send({ ...state, detail });
  });

  if (!metrics) return;
  app.get('/metrics', { ...QUIET, config: { role: 'admin', unlimited: true } }, async (request, reply) => {
    // The counts cover every tenant: a key limited to some tenants must not read the others'.
    if (request.principal.tenants !== '*') throw new TaskyardError('forbidden', 'Metrics cover every tenant; this key is limited to some');
    const text = await metrics.text();
    return reply.type(metrics.contentType).send(text);
  });
}

/** The request latency histogram, by route pattern (never the raw URL), method and status class. */
export function instrumentRequests(app: FastifyInstance, registry: Registry): void {
  const latency = new Histogram({
    name: 'taskyard_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status class',
    labelNames: ['route', 'method', 'status_class'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    latency.observe({ route, method: request.method, status_class: `${Math.floor(reply.statusCode / 100)}xx` }, reply.elapsedTime / 1000);
  });
}
