import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { AnyTaskDefinition } from '../src/core/definition.js';
import type { CategoryRule } from '../src/core/registry.js';
import { LocalEngine, type LocalEngineOptions } from '../src/engines/local/engine.js';
import type { ApiKey } from '../src/http/auth.js';
import type { AppOptions } from '../src/http/app.js';
import { serve } from '../src/server.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import { createTaskyard, type Taskyard, type TaskyardOptions } from '../src/taskyard.js';

export const silentLogger = pino({ level: 'silent' });

/** `TASKYARD_TEST_STORE=postgres` runs every test yard on PostgreSQL instead of a SQLite file. */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.TASKYARD_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';
export const TEST_DATABASE_URL = process.env.TASKYARD_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** A PostgreSQL schema name nobody else uses (`ty_<random>`), for a ledger of its own. */
export const freshSchema = (): string => `ty_${randomBytes(8).toString('hex')}`;

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** PostgreSQL ledgers of test yards, by directory: a ledger lives as long as its directory. */
const schemaOfDir = new Map<string, string>();

/** The test ledger kept in `dir`: its SQLite file, or (on PostgreSQL) the schema named after it. */
export function testStore(dir: string): TaskStore {
  if (TEST_STORE === 'sqlite') return new SqliteStore({ filename: join(dir, 'taskyard.db') });
  const schema = `ty_${createHash('sha256').update(dir).digest('hex').slice(0, 24)}`;
  schemaOfDir.set(dir, schema);
  return new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 });
}

/** A fresh directory under the OS temp dir, removed (with its PostgreSQL ledger, if any) by the returned cleanup. */
export function tempDir(prefix = 'taskyard-test-'): { dir: string; cleanup: () => void | Promise<void> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      const schema = schemaOfDir.get(dir);
      if (schema === undefined) return;
      schemaOfDir.delete(dir);
      return dropSchema(schema);
    },
  };
}

export interface TestYardOptions extends Partial<TaskyardOptions> {
  tasks: readonly AnyTaskDefinition[];
  categoryRules?: readonly CategoryRule[];
  engineOptions?: LocalEngineOptions;
  dir?: string;
}

/** A real Taskyard on a real SQLite file in a temp dir (or PostgreSQL, see TEST_STORE), with the local engine. */
export async function startYard(options: TestYardOptions): Promise<{ yard: Taskyard; dir: string; close: () => Promise<void> }> {
  const temp = options.dir ? { dir: options.dir, cleanup: () => {} } : tempDir();
  const store = options.store ?? testStore(temp.dir);
  let yard: Taskyard;
  try {
    yard = await createTaskyard({
      logger: silentLogger,
      engine: new LocalEngine({ pollIntervalMs: 50, ...options.engineOptions }),
      shutdownGraceMs: 500,
      ...options,
      store,
    });
  } catch (error) {
    // A yard that failed to start leaves no ledger (file or schema) behind.
    await store.close().catch(() => {});
    await temp.cleanup();
    throw error;
  }
  return {
    yard,
    dir: temp.dir,
    close: async () => {
      await yard.close();
      await temp.cleanup();
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
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
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
