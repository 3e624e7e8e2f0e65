import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { TaskyardError } from '../core/errors.js';
import type { Logger } from '../engines/types.js';
import type { Taskyard } from '../taskyard.js';
import type { TenantScope } from '../store/types.js';
import { Authenticator, requireRole, type ApiKey, type Principal, type Role } from './auth.js';
import { errorHandler } from './errors.js';
import { eventRoutes } from './routes/events.js';
import { nativeRoutes } from './routes/native.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Least role a route needs; GET routes default to viewer, others to operator. */
    role?: Role;
    /** Served without credentials (docs, health). */
    public?: boolean;
  }
}

export interface AppOptions {
  yard: Taskyard;
  apiKeys?: ApiKey[];
  logger?: Logger | boolean;
  /** Event stream tuning: heartbeat (default 15 s) and the most events buffered for a slow client. */
  sse?: { heartbeatMs?: number; maxPendingEvents?: number };
  /** More routers (the seeds' compatibility routers, app modules), registered after the native one. */
  plugins?: Array<(app: FastifyInstance) => Promise<void> | void>;
}

export const BODY_LIMIT = 1024 * 1024;

/** The caller's tenant scope: every store query made for a request goes through this. */
export const scopeOf = (request: FastifyRequest): TenantScope => request.principal.tenants;

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger === undefined ? false : (options.logger as never),
    bodyLimit: BODY_LIMIT,
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
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ detail: `Not found: ${request.method} ${request.url.split('?')[0]}` });
  });
  // An empty JSON body is no body (curl -X POST -H 'Content-Type: application/json' with no -d).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(Object.assign(new Error(`Malformed JSON body: ${(error as Error).message}`), { statusCode: 400 }), undefined);
    }
  });

  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    const url = request.routeOptions.url;
    if (config?.public || !url || url === '/docs' || url.startsWith('/docs/')) {
      request.principal = { role: 'viewer', tenants: [], anonymous: true };
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
  app.get('/health', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));

  await app.register(async (scoped) => nativeRoutes(scoped, options.yard));
  await app.register(async (scoped) => eventRoutes(scoped, options.yard, options.sse));
  for (const plugin of options.plugins ?? []) await app.register(async (scoped) => plugin(scoped));
  return app;
}

export function assertFound(condition: unknown, message: string): asserts condition {
  if (!condition) throw new TaskyardError('task_not_found', message);
}
