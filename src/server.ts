import type { FastifyInstance } from 'fastify';
import type { ApiKey } from './http/auth.js';
import { isLoopback } from './http/auth.js';
import { buildApp, type AppOptions } from './http/app.js';
import type { Taskyard } from './taskyard.js';

export interface ServeOptions {
  yard: Taskyard;
  host: string;
  port: number;
  apiKeys: ApiKey[];
  plugins?: AppOptions['plugins'];
  sse?: AppOptions['sse'];
  /** Runs after the server and the yard have closed (an app's own resources). */
  onClose?: () => Promise<void> | void;
  /** Close the server and the yard on SIGTERM/SIGINT (default true). */
  handleSignals?: boolean;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/**
 * Protected mode, as Redis does it: with no API keys, anonymous access is allowed only on a
 * loopback address. Anything else refuses to start and says how to fix it.
 */
export function checkProtectedMode(host: string, apiKeys: ApiKey[]): 'keys' | 'anonymous-loopback' {
  if (apiKeys.length > 0) return 'keys';
  if (isLoopback(host)) return 'anonymous-loopback';
  throw new Error(
    `Refusing to listen on ${host} without API keys. Set TASKYARD_API_KEYS, e.g. ` +
      `TASKYARD_API_KEYS='[{"key":"<a long random secret>","role":"admin","tenants":"*"}]', ` +
      'or bind to loopback with HOST=127.0.0.1.',
  );
}

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const mode = checkProtectedMode(options.host, options.apiKeys);
  const { yard } = options;
  const app = await buildApp({ yard, apiKeys: options.apiKeys, plugins: options.plugins, sse: options.sse });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  if (mode === 'anonymous-loopback') {
    yard.logger.warn(`No API keys configured (TASKYARD_API_KEYS): anonymous access is allowed because ${options.host} is loopback only`);
  }
  yard.logger.info(`Taskyard listening on ${url} (API docs: ${url}/docs, OpenAPI: ${url}/openapi.json)`);

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await yard.close();
      await options.onClose?.();
    })());
  if (options.handleSignals !== false) {
    const onSignal = (signal: string) => {
      yard.logger.info(`${signal} received: finishing running tasks, then stopping`);
      close().then(
        () => process.exit(0),
        (error) => {
          yard.logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { app, url, close };
}
