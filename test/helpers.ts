import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AnyTaskDefinition } from '../src/core/definition.js';
import type { CategoryRule } from '../src/core/registry.js';
import { LocalEngine, type LocalEngineOptions } from '../src/engines/local/engine.js';
import type { ApiKey } from '../src/http/auth.js';
import type { AppOptions } from '../src/http/app.js';
import { serve } from '../src/server.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { createTaskyard, type Taskyard, type TaskyardOptions } from '../src/taskyard.js';

export const silentLogger = pino({ level: 'silent' });

/** A fresh directory under the OS temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'taskyard-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestYardOptions extends Partial<TaskyardOptions> {
  tasks: readonly AnyTaskDefinition[];
  categoryRules?: readonly CategoryRule[];
  engineOptions?: LocalEngineOptions;
  dir?: string;
}

/** A real Taskyard on a real SQLite file in a temp dir, with the local engine. */
export async function startYard(options: TestYardOptions): Promise<{ yard: Taskyard; dir: string; close: () => Promise<void> }> {
  const temp = options.dir ? { dir: options.dir, cleanup: () => {} } : tempDir();
  const yard = await createTaskyard({
    logger: silentLogger,
    store: new SqliteStore({ filename: join(temp.dir, 'taskyard.db') }),
    engine: new LocalEngine({ pollIntervalMs: 50, ...options.engineOptions }),
    shutdownGraceMs: 500,
    ...options,
  });
  return {
    yard,
    dir: temp.dir,
    close: async () => {
      await yard.close();
      temp.cleanup();
    },
  };
}

/** A real HTTP server on 127.0.0.1 and a random port, over a real yard. */
export async function startServer(
  options: TestYardOptions & { apiKeys?: ApiKey[]; plugins?: (yard: Taskyard) => AppOptions['plugins']; sse?: AppOptions['sse'] },
): Promise<{ yard: Taskyard; url: string; close: () => Promise<void> }> {
  const { yard, close: closeYard } = await startYard(options);
  const server = await serve({
    yard,
    host: '127.0.0.1',
    port: 0,
    apiKeys: options.apiKeys ?? [],
    plugins: options.plugins?.(yard),
    sse: options.sse ?? { heartbeatMs: 60_000 },
    handleSignals: false,
  });
  return {
    yard,
    url: server.url,
    close: async () => {
      await server.app.close();
      await closeYard();
    },
  };
}

/** fetch + JSON, returning status and parsed body. */
export async function http(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined = init.raw;
  if (init.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(init.body);
  }
  const res = await fetch(url, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls until `check` returns a truthy value or the timeout passes. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Runs `fn` with the demo's simulated time scaled (e.g. stretched so a run stays in flight). */
export async function withTimeScale<T>(scale: string, fn: () => Promise<T>): Promise<T> {
  const previous = process.env.TASKYARD_DEMO_TIME_SCALE;
  process.env.TASKYARD_DEMO_TIME_SCALE = scale;
  try {
    return await fn();
  } finally {
    process.env.TASKYARD_DEMO_TIME_SCALE = previous;
  }
}
