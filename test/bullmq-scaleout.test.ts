/**
 * Scale-out with real processes: two demo API servers and two `npm run worker` processes on one
 * PostgreSQL ledger and one BullMQ queue. The seeds' HTTP flows run through them, cancels cross
 * processes, a run written but never handed to Redis is delivered, a worker killed with -9 loses
 * nothing, and a Redis restart under load leaves no run lost or stuck.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../src/core/ids.js';
import { PostgresStore } from '../src/store/postgres.js';
import { eventually, http } from './helpers.js';
import { freshDatabase, startApi, startWorker, stopScaleOutChildren, throwawayRedis, type WorkerProc } from './bullmq-processes.js';
import { allTasks, kill9, newDataDir, removeDataDirs, stopChildren, type Server, type TaskJson } from './processes.js';
import { randomBytes } from 'node:crypto';

const REDIS_URL = process.env.TASKYARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
/** Short leases, so a killed worker's runs are rescued within a second or two. */
const PEERS = { TASKYARD_LEASE_MS: '2000', TASKYARD_HEARTBEAT_MS: '500' };

afterAll(() => {
  stopScaleOutChildren();
  stopChildren();
  removeDataDirs();
});

/** Polls until `check` gives a value (not null or false). */
const poll = async <T>(check: () => Promise<T | null | false>, timeoutMs: number, intervalMs = 100): Promise<T> =>
  (await eventually(check, timeoutMs, intervalMs)) as T;

const workerPid = (worker: string | null) => Number(/:(\d+):[0-9a-f]+$/.exec(worker ?? '')?.[1]);

async function launch(server: Server, body: unknown): Promise<string> {
  const res = await http(`${server.url}/api/tasks`, { body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.task_id;
}

async function task(server: Server, id: string): Promise<TaskJson> {
  const res = await http(`${server.url}/api/tasks/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function until(server: Server, id: string, state: string, timeoutMs = 20_000): Promise<TaskJson> {
  return poll(async () => {
    const t = await task(server, id);
    return t.state === state ? t : null;
  }, timeoutMs, 100);
}

describe('bullmq engine, PostgreSQL ledger, 2 API servers and 2 worker processes', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let env: Record<string, string>;
  let a: Server;
  let b: Server;
  let w1: WorkerProc;
  let w2: WorkerProc;
  const apiPids = () => [a.child.pid, b.child.pid];

  beforeAll(async () => {
    db = await freshDatabase();
    const dir = newDataDir();
    env = { ...PEERS, DATABASE_URL: db.url, REDIS_URL, TASKYARD_ENGINE: 'bullmq', TASKYARD_QUEUE: `tyq-${randomBytes(5).toString('hex')}` };
    // The first process creates the ledger's tables; the others start together.
    a = await startApi(dir, env);
    [b, w1, w2] = await Promise.all([startApi(dir, env), startWorker(dir, env), startWorker(dir, env)]);
  }, 90_000);

  afterAll(async () => {
    stopScaleOutChildren();
    stopChildren();
    await db?.drop();
  });

  it("the seeds' curl flow: launch, poll, result; runs on the workers; stats list both workers", async () => {
    const launched = await http(`${a.url}/api/celery/tasks/launch`, { body: { task_type: 'sii.sync_documents', params: { company_id: '73', months: 2 } } });
    expect(launched.status).toBe(200);
    expect(launched.body).toMatchObject({ task_type: 'sii.sync_documents', status: 'PENDING' });
    const id = launched.body.task_id;
    const status = await poll(async () => {
      const res = await http(`${b.url}/api/celery/tasks/${id}`);
      return res.body.status === 'SUCCESS' ? res.body : null;
    }, 20_000, 100);
    expect(status.result).toMatchObject({ success: true });
    const record = await task(a, id);
    expect(record.engine).toBe('bullmq');
    expect([w1.child.pid, w2.child.pid]).toContain(workerPid(record.worker));
    expect(apiPids()).not.toContain(workerPid(record.worker));

    const stats = await http(`${b.url}/api/celery/stats`);
    expect(stats.status).toBe(200);
    for (const w of [w1, w2]) {
      expect(stats.body.worker_stats[w.id]).toMatchObject({ pid: w.child.pid, pool: { 'max-concurrency': 20 } });
    }
    // The API servers run nothing, so they are not listed as workers.
    const statistics = await http(`${a.url}/api/tasks/statistics`);
    const listed = statistics.body.workers.map((w: { pid: number }) => w.pid).sort();
    expect(listed).toEqual([w1.child.pid, w2.child.pid].sort());
    expect(statistics.body.workers[0].host).toBeTruthy();
  }, 40_000);

  it('the company tracker: onboarding finalize, then task_status until all_completed', async () => {
    const fin = await http(`${b.url}/api/v1/companies/73/onboarding/finalize/`, { method: 'POST' });
    expect(fin.status).toBe(202);
    const body = await poll(async () => {
      const res = await http(`${a.url}${fin.body.status_url}`);
      return res.body.all_completed ? res.body : null;
    }, 40_000, 200);
    const ids = fin.body.tasks.map((t: { task_id: string }) => t.task_id);
    const finished = body.summary.recent_completed.filter((t: { task_id: string }) => ids.includes(t.task_id));
    expect(finished.map((t: { status: string }) => t.status)).toEqual(['success', 'success', 'success', 'success']);
  }, 50_000);

  it('the legacy reconciliation module: its row follows the run a worker executed', async () => {
    const started = await http(`${a.url}/reconciliation-tasks/start/`, { body: { tenant_id: 4 } });
    expect(started.status).toBe(201);
    const row = await poll(async () => {
      const res = await http(`${b.url}/reconciliation-tasks/${started.body.id}/`);
      return res.body.status === 'completed' ? res.body : null;
    }, 30_000, 200);
    const run = await task(a, row.task_id);
    expect(run).toMatchObject({ state: 'SUCCESS', engine: 'bullmq' });
    expect([w1.child.pid, w2.child.pid]).toContain(workerPid(run.worker));
  }, 40_000);

  it('a soft cancel through API process A stops a run that process B launched and a worker runs', async () => {
    const id = await launch(b, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 12 } });
    await until(a, id, 'STARTED');
    const stop = await http(`${a.url}/api/tasks/${id}/stop/`, { body: { hard: false, reason: 'changed my mind' } });
    expect(stop.status).toBeLessThan(300);
    const revoked = await until(b, id, 'REVOKED', 10_000);
    expect(revoked.error).toBe('Revoked: changed my mind');
    const types = (await http(`${a.url}/api/tasks/${id}/timeline`)).body.events.map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['started', 'cancel_requested', 'revoked']));
  }, 30_000);

  it('a run written to the ledger but never handed to Redis (the API died in between) is delivered by the sweeper', async () => {
    const store = new PostgresStore({ connectionString: db.url, poolSize: 1 });
    try {
      await store.migrate(); // already migrated: this only opens the store
      const now = Date.now();
      const id = uuidv7(now);
      await store.insert([
        {
          id, name: 'calculate_rating', category: 'calculate_rating', displayName: 'calculate_rating', state: 'PENDING', progress: 0,
          progressMessage: null, tenantId: null, params: { resource_id: 'r-lost' }, result: null, error: null, traceback: null, meta: null,
          attempt: 0, maxAttempts: 3, priority: 0, queue: 'default', route: 'light', engine: 'bullmq', worker: null, idempotencyKey: null,
          runAt: now, cancelRequested: null, revokeReason: null, createdAt: now, startedAt: null, finishedAt: null, updatedAt: now,
        },
      ]);
      const done = await until(a, id, 'SUCCESS', 20_000);
      expect([w1.child.pid, w2.child.pid]).toContain(workerPid(done.worker));
    } finally {
      await store.close();
    }
  }, 30_000);

  it('kill -9 of a worker mid-run: the other worker retries its runs, and the ledger shows it', async () => {
    const ids = await Promise.all(
      Array.from({ length: 6 }, () => launch(a, { task_type: 'sii.sync_documents', params: { company_id: '73', months: 6 } })),
    );
    const running = await poll(async () => {
      const tasks = await allTasks(a.url);
      const started = ids.map((id) => tasks.get(id)!).filter((t) => t.state === 'STARTED');
      const onBoth = new Set(started.map((t) => workerPid(t.worker))).size === 2;
      return started.length === ids.length && onBoth ? started : null;
    }, 20_000, 100);
    const onW1 = running.filter((t) => workerPid(t.worker) === w1.child.pid).map((t) => t.task_id);
    w1.child.kill('SIGKILL');
    expect((await w1.exited).signal).toBe('SIGKILL');

    const after = await poll(async () => {
      const tasks = await allTasks(a.url);
      return ids.every((id) => tasks.get(id)!.state === 'SUCCESS') ? tasks : null;
    }, 45_000, 200);
    for (const id of onW1) {
      expect(after.get(id)!.attempt).toBe(2);
      expect(workerPid(after.get(id)!.worker)).toBe(w2.child.pid);
      const events = (await http(`${a.url}/api/tasks/${id}/timeline`)).body.events;
      const retry = events.find((e: { type: string }) => e.type === 'retry');
      expect(retry.data.error).toMatch(/Worker lost/);
    }
    for (const id of ids.filter((i) => !onW1.includes(i))) expect(after.get(id)!.attempt).toBe(1);
  }, 70_000);
});

describe('Redis restarted under load (a throwaway redis-server without persistence)', () => {
  it('workers reconnect; launches during the outage get 503; no accepted run is lost or stuck', async () => {
    const redis = await throwawayRedis();
    const db = await freshDatabase();
    try {
      const dir = newDataDir();
      const env = { ...PEERS, DATABASE_URL: db.url, REDIS_URL: redis.url, TASKYARD_ENGINE: 'bullmq', TASKYARD_QUEUE: 'tyq-restart' };
      const api = await startApi(dir, env);
      await startWorker(dir, { ...env, TASKYARD_CONCURRENCY: '4' });
      const batch = (n: number, from: number) =>
        http(`${api.url}/api/tasks/batch`, {
          body: { tasks: Array.from({ length: n }, (_, i) => ({ task_type: 'sii.sync_documents', params: { company_id: '73', months: 1, month_offset: (from + i) % 12 } })) },
        });
      const first = await batch(40, 0);
      expect(first.status).toBe(202);
      const accepted: string[] = first.body.tasks.map((t: { task_id: string }) => t.task_id);
      await eventually(async () => (await allTasks(api.url)).size > 0 && [...(await allTasks(api.url)).values()].some((t) => t.state === 'SUCCESS'), 20_000, 100);

      await redis.kill(); // every waiting job is gone with it
      // Until the API notices Redis is gone, a launch is still written to the ledger and accepted
      // (the sweeper hands it to Redis later): such a run counts as accepted too.
      const refused = await poll(async () => {
        const res = await batch(1, 0);
        if (res.status === 202) accepted.push(res.body.tasks[0].task_id);
        return res.status === 503 ? res : null;
      }, 10_000, 100);
      expect(refused.headers.get('retry-after')).toBeTruthy();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await redis.start();

      const second = await poll(async () => {
        const res = await batch(10, 40);
        return res.status === 202 ? res : null;
      }, 15_000, 200);
      accepted.push(...second.body.tasks.map((t: { task_id: string }) => t.task_id));
      const done = await poll(async () => {
        const tasks = await allTasks(api.url);
        return accepted.every((id) => tasks.get(id)?.state === 'SUCCESS') ? tasks : null;
      }, 60_000, 250);
      expect(done.size).toBe(accepted.length); // nothing but the accepted runs was written
    } finally {
      stopScaleOutChildren();
      stopChildren();
      await redis.kill();
      await db.drop();
    }
  }, 120_000);
});
