import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { TaskyardError } from '../core/errors.js';
import type { RateLimit } from '../config.js';
import type { Logger } from '../engines/types.js';
import { TaskMetrics } from '../observability/task-metrics.js';
import type { Taskyard } from '../taskyard.js';
import type { TenantScope } from '../store/types.js';
import { Authenticator, requireRole, type ApiKey, type Principal, type Role } from './auth.js';
import { dashboardRoutes } from './dashboard.js';
import { createErrorHandler } from './errors.js';
import { parseJsonBody } from './json-body.js';
import { installRateLimit } from './rate-limit.js';
import { redocRoutes } from './redoc.js';
import { eventRoutes, type EventRoutesOptions } from './routes/events.js';
import { controlRoutes } from './routes/control.js';
import { nativeRoutes } from './routes/native.js';
import { scheduleRoutes } from './routes/schedules.js';
import { instrumentRequests, operationRoutes } from './routes/operations.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Least role a route needs; GET routes default to viewer, others to operator. */
    role?: Role;
    /** Served without credentials (docs, health). */
    public?: boolean;
    /** Not counted by the rate limit (health, metrics). */
    unlimited?: boolean;
  }
}

export interface AppOptions {
  yard: Taskyard;
  apiKeys?: ApiKey[];
  logger?: Logger | boolean;
  /** Event stream tuning: heartbeat, stream caps, per-client buffer and replay bounds. */
  sse?: EventRoutesOptions;
  /** Largest request body, in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Serve `GET /metrics` (default true). */
  metrics?: boolean;
  /** Requests allowed per API key (or client IP) per window; absent or null: no limit. */
  rateLimit?: RateLimit | null;
  /** More routers (the seeds' compatibility routers, app modules), registered after the native one. */
  plugins?: Array<(app: FastifyInstance) => Promise<void> | void>;
}

export const BODY_LIMIT = 1024 * 1024;

/** The caller's tenant scope: every store query made for a request goes through this. */
export const scopeOf = (request: FastifyRequest): TenantScope => request.principal.tenants;

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // Fastify 5 takes a logger instance (pino) apart from `logger: true | options`.
    ...(typeof options.logger === 'object' ? { loggerInstance: options.logger as FastifyBaseLogger } : { logger: options.logger ?? false }),
    bodyLimit: options.bodyLimit ?? BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    ajv: { customOptions: { coerceTypes: false } },
    // Errors Fastify answers itself (bad percent-encoding, over-long path parameters) keep our error model.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).status(error.statusCode ?? 400).send({ detail: error.message });
    },
  });
  const auth = new Authenticator(options.apiKeys ?? []);

  // Validation is zod's job (clear 422s); the JSON schemas on routes are for the OpenAPI document.
  app.setValidatorCompiler(() => () => true);
  // 5xx go to the app's logger when it has one, else to the yard's, so none goes unlogged.
  app.setErrorHandler(createErrorHandler(options.logger ? app.log : options.yard.logger));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ detail: `Not found: ${request.method} ${request.url.split('?')[0]}` });
  });
  // An empty JSON body is no body (curl -X POST -H 'Content-Type: application/json' with no -d).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.decorateRequest('principal', null as unknown as Principal);
  // Before authentication, so requests with wrong keys are counted too (per client IP).
  if (options.rateLimit) await installRateLimit(app, auth, options.rateLimit);
  const metrics = options.metrics === false ? null : new TaskMetrics(options.yard);
  if (metrics) {
    instrumentRequests(app, metrics.registry);
    app.addHook('onClose', async () => metrics.close());
  }
  // The request log: one line per request, at debug level, so it is there when asked for and
  // costs nothing otherwise (task lifecycle lines are the info-level log).
  const requestLog = options.yard.logger as { isLevelEnabled?: (level: string) => boolean; debug: (obj: unknown, msg?: string) => void };
  if (!options.logger && requestLog.isLevelEnabled?.('debug')) {
    app.addHook('onResponse', async (request, reply) => {
      requestLog.debug({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
    });
  }
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    const url = request.routeOptions.url;
    if (config?.public || !url || url === '/docs' || url.startsWith('/docs/')) {
      request.principal = { role: 'viewer', tenants: [], anonymous: true, keyId: 'anonymous' };
      return;
    }
    request.principal = auth.authenticate(request);
    requireRole(request.principal, config?.role ?? (request.method === 'GET' || request.method === 'HEAD' ? 'viewer' : 'operator'));
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Taskyard', version: '0.1.0', description: 'Background tasks with one durable ledger.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/health', { config: { public: true, unlimited: true }, schema: { hide: true }, logLevel: 'silent' }, async () => ({ status: 'ok' }));
  redocRoutes(app);
  operationRoutes(app, options.yard, metrics);

  await app.register(async (scoped) => nativeRoutes(scoped, options.yard));
  await app.register(async (scoped) => scheduleRoutes(scoped, options.yard));
  await app.register(async (scoped) => controlRoutes(scoped, options.yard));
  await app.register(async (scoped) => eventRoutes(scoped, options.yard, options.sse));
  await app.register(async (scoped) => dashboardRoutes(scoped));
  for (const plugin of options.plugins ?? []) await app.register(async (scoped) => plugin(scoped));
  return app;
}

export function assertFound(condition: unknown, message: string): asserts condition {
  if (!condition) throw new TaskyardError('task_not_found', message);
}
