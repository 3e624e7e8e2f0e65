import type { FastifyInstance } from 'fastify';
import type { ApiKey } from './http/auth.js';
import { bindAddressesOf, isLoopbackAddress } from './http/auth.js';
import { buildApp, type AppOptions } from './http/app.js';
import type { Taskyard } from './taskyard.js';

export interface ServeOptions {
  yard: Taskyard;
  host: string;
  port: number;
  apiKeys: ApiKey[];
  plugins?: AppOptions['plugins'];
  sse?: AppOptions['sse'];
  bodyLimit?: AppOptions['bodyLimit'];
  metrics?: AppOptions['metrics'];
  rateLimit?: AppOptions['rateLimit'];
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
 * loopback address. A name counts only when it resolves, and every address it resolves to is
 * loopback (so `127.attacker.example` is no loophole). Anything else refuses to start and says
 * how to fix it.
 */
export async function checkProtectedMode(host: string, apiKeys: ApiKey[]): Promise<'keys' | 'anonymous-loopback'> {
  if (apiKeys.length > 0) return 'keys';
  let addresses: string[];
  try {
    addresses = await bindAddressesOf(host);
  } catch (error) {
    throw refusal(host, `it does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  const outside = addresses.filter((address) => !isLoopbackAddress(address));
  if (addresses.length > 0 && outside.length === 0) return 'anonymous-loopback';
  throw refusal(host, outside.length === 1 && outside[0] === host ? 'it is not a loopback address' : `it resolves to ${outside.join(', ')}, which is not loopback`);
}

function refusal(host: string, why: string): Error {
  return new Error(
    `Refusing to listen on ${host} without API keys: ${why}. Set TASKYARD_API_KEYS, e.g. ` +
      `TASKYARD_API_KEYS='[{"key":"<a long random secret>","role":"admin","tenants":"*"}]', ` +
      'or bind to loopback with HOST=127.0.0.1.',
  );
}

export async function serve(options: ServeOptions): Promise<RunningServer> {
  const mode = await checkProtectedMode(options.host, options.apiKeys);
  const { yard } = options;
  const { apiKeys, plugins, sse, bodyLimit, metrics, rateLimit } = options;
  const app = await buildApp({ yard, apiKeys, plugins, sse, bodyLimit, metrics, rateLimit });
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
  // Work stops first while the API still answers (readiness says 503, so traffic moves away), then
  // the server closes, then the ledger.
  const close = () =>
    (closing ??= (async () => {
      await yard.drain();
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
