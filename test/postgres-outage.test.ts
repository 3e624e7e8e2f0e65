/**
 * PostgreSQL going away, caused for real but safely: a port nobody listens on, the store's own
 * connections terminated by the server (pg_terminate_backend), and a TCP proxy in front of the
 * server that is taken down and brought back under a running HTTP server.
 */
import { createServer } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { TaskyardError } from '../src/core/errors.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { PostgresStore } from '../src/store/postgres.js';
import { TEST_DATABASE_URL, dropSchema, eventually, freshSchema, http, startServer } from './helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function record(): TaskRecord {
  const now = Date.now() - 1000;
  return {
    id: uuidv7(), name: 'outage.job', category: 'outage', displayName: 'Outage job', state: 'PENDING', progress: 0,
    progressMessage: null, tenantId: '73', params: {}, result: null, error: null, traceback: null, meta: null, attempt: 0,
    maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'local', worker: null, idempotencyKey: null,
    runAt: now, cancelRequested: null, revokeReason: null, createdAt: now, startedAt: null, finishedAt: null, updatedAt: now,
  };
}

const unavailable = { code: 'backend_unavailable' };

/** A port that was free a moment ago: nothing listens there. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('PostgreSQL unavailable', () => {
  it('under load: 503s while the database is gone for a few seconds, no crash, then every run converges to its true state', async () => {
    const proxy = new TcpProxy(TEST_DATABASE_URL);
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const work = defineTask({
      name: 'outage.work',
      params: z.object({ ms: z.number(), fail: z.boolean().default(false) }),
      retry: false,
      run: async ({ ms, fail }) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        if (fail) throw new Error('failed on purpose');
        return { ms };
      },
    });
    const server = await startServer({
      tasks: [work],
      store: new PostgresStore({ connectionString: proxy.url, schema, poolSize: 3, connectTimeoutMs: 1000 }),
    });
    cleanups.push(() => server.close());
    // In flight when the database goes: some end while it is gone, some after it is back.
    const launched = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        http(`${server.url}/api/tasks`, { body: { task_type: 'outage.work', params: { ms: 300 + 400 * (i % 6), fail: i % 4 === 0 } } }),
      ),
    );
    const ids = launched.map((r) => r.body.task_id as string);
    await eventually(async () => (await http(`${server.url}/api/tasks/?state=STARTED&limit=50`)).body.tasks?.length >= 6);

    await proxy.stop();
    const during: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const res = await http(`${server.url}/api/tasks`, { body: { task_type: 'outage.work', params: { ms: 10 } } });
      during.push(res.status);
      expect(res.status === 503 ? res.headers.get('retry-after') : 'n/a').toBeTruthy();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(during.every((status) => status === 503)).toBe(true);
    await proxy.start();

    const final = await eventually(async () => {
      const records = await Promise.all(ids.map((id) => server.yard.get(id).catch(() => null)));
      return records.every((r) => r && (r.state === 'SUCCESS' || r.state === 'FAILURE')) ? records : null;
    }, 20_000, 200);
    final.forEach((record, i) => {
      // Its true state: what the run did, recorded once, on its first attempt.
      expect(record!.state).toBe(i % 4 === 0 ? 'FAILURE' : 'SUCCESS');
      expect(record!.attempt).toBe(1);
    });
  });

  it('a run that finishes while the database is gone is recorded once it returns, without a restart', async () => {
    const proxy = new TcpProxy(TEST_DATABASE_URL);
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = defineTask({ name: 'outage.slow', run: async () => { await gate; return 'made it'; } });
    const server = await startServer({
      tasks: [slow],
      store: new PostgresStore({ connectionString: proxy.url, schema, poolSize: 3, connectTimeoutMs: 1000 }),
    });
    cleanups.push(() => server.close());
    const launched = await http(`${server.url}/api/tasks`, { body: { task_type: 'outage.slow', params: {} } });
    await eventually(async () => (await server.yard.get(launched.body.task_id)).state === 'STARTED');

    await proxy.stop();
    release(); // it finishes while the ledger is unreachable
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await proxy.start();

    const done = await eventually(async () => {
      const record = await server.yard.get(launched.body.task_id).catch(() => null);
      return record?.state === 'SUCCESS' ? record : null;
    }, 15_000, 100);
    expect(done).toMatchObject({ result: 'made it', attempt: 1 });
  });


  it('nothing listening: every call rejects with backend_unavailable, quickly', async () => {
    const url = new URL(TEST_DATABASE_URL);
    url.port = String(await closedPort());
    const store = new PostgresStore({ connectionString: url.toString(), schema: freshSchema(), connectTimeoutMs: 1000 });
    cleanups.push(() => store.close());
    const started = Date.now();
    await expect(store.migrate()).rejects.toMatchObject(unavailable);
    await expect(store.get(uuidv7(), '*')).rejects.toMatchObject(unavailable);
    await expect(store.insert([record()])).rejects.toMatchObject(unavailable);
    await expect(store.claim({ limit: 5, now: Date.now(), worker: 'w' })).rejects.toMatchObject(unavailable);
    await expect(store.list({ limit: 5 }, '*')).rejects.toBeInstanceOf(TaskyardError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("the store's connections terminated mid-write: the write fails as unavailable, and the next calls work", async () => {
    const schema = freshSchema();
    const applicationName = `ty-outage-${schema.slice(-8)}`;
    const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3, applicationName });
    cleanups.push(() => dropSchema(schema));
    cleanups.push(() => store.close());
    await store.migrate();
    const first = record();
    await store.insert([first]);

    // Hold the count row the next insert updates, so its transaction is in flight when the server
    // ends the connection under it.
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    cleanups.push(() => admin.end());
    const blocker = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await blocker.connect();
    cleanups.push(() => blocker.end());
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM ${schema}.taskyard_counts WHERE state = 'PENDING' FOR UPDATE`);
    const lost = record();
    const writing = store.insert([lost]).then(() => 'committed', (error: unknown) => error);
    await eventually(async () => {
      const { rows } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [applicationName]);
      return rows.length === 1;
    });
    const { rows: killed } = await admin.query(
      'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    expect(killed.length).toBeGreaterThan(0);
    expect(await writing).toMatchObject(unavailable);
    await blocker.query('ROLLBACK');

    // No restart: the pool replaces the dead connections by itself.
    expect(await store.get(lost.id, '*')).toBeNull();
    const [event] = await store.insert([lost]);
    expect(event).toMatchObject({ taskId: lost.id, type: 'enqueued' });
    expect((await store.list({ limit: 10 }, '*')).tasks.map((t) => t.id).sort()).toEqual([first.id, lost.id].sort());
    expect((await store.stats('*', Date.now())).byState.PENDING).toBe(2);

    // Idle connections killed between calls are replaced without the caller noticing.
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
    expect((await store.get(first.id, '*'))!.id).toBe(first.id);
    expect(await store.claim({ limit: 5, now: Date.now(), worker: 'w' })).toHaveLength(2);
  });

  it('over HTTP: 503 with Retry-After while the database is gone, no crash, and back to work when it returns', async () => {
    const proxy = new TcpProxy(TEST_DATABASE_URL);
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const echo = defineTask({ name: 'outage.echo', params: z.object({ n: z.number() }), run: async ({ n }) => ({ n }) });
    const server = await startServer({
      tasks: [echo],
      store: new PostgresStore({ connectionString: proxy.url, schema, poolSize: 3, connectTimeoutMs: 1000 }),
    });
    cleanups.push(() => server.close());

    const before = await http(`${server.url}/api/tasks`, { body: { task_type: 'outage.echo', params: { n: 1 } } });
    expect(before.status).toBe(202);
    await eventually(async () => (await server.yard.get(before.body.task_id)).state === 'SUCCESS');

    await proxy.stop();
    for (const attempt of [
      http(`${server.url}/api/tasks/${before.body.task_id}`),
      http(`${server.url}/api/tasks`, { body: { task_type: 'outage.echo', params: { n: 2 } } }),
      http(`${server.url}/api/tasks/?limit=5`),
      http(`${server.url}/api/tasks/statistics/`),
    ]) {
      const response = await attempt;
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBeTruthy();
      expect(response.body.detail).toMatch(/unavailable/i);
    }
    // The engine keeps polling (and failing) meanwhile; the process must simply carry on.
    await new Promise((resolve) => setTimeout(resolve, 300));

    await proxy.start(); // the same port: the database is back
    const after = await eventually(async () => {
      const response = await http(`${server.url}/api/tasks`, { body: { task_type: 'outage.echo', params: { n: 3 } } });
      return response.status === 202 ? response : null;
    });
    const done = await server.yard.waitFor(after!.body.task_id, 10_000);
    expect(done).toMatchObject({ state: 'SUCCESS', result: { n: 3 } });
    expect((await http(`${server.url}/api/tasks/${before.body.task_id}`)).status).toBe(200);
  });
});
