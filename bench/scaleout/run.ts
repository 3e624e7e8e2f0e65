/**
 * Scale-out benchmark: tracked BullMQ (Taskyard API yard dispatching, 2 worker processes, a
 * PostgreSQL ledger) against raw BullMQ (2 bare worker processes) draining the same count of
 * no-op jobs on the same Redis with the same total concurrency.
 *
 * Both drains are measured the same way: the jobs are enqueued into a paused queue, the worker
 * processes connect, then the queue is resumed and the clock runs until every job is done (for
 * Taskyard: every run SUCCESS in the ledger, which a job completes only after).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { eachLine, spawnTsx } from '../lib/child.js';
import { defineTask } from '../../src/core/definition.js';
import { BullMQEngine } from '../../src/engines/bullmq/engine.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { createTaskyard, type Taskyard } from '../../src/taskyard.js';
import { summarize, type LatencySummary } from '../lib/stats.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });

export interface ScaleOutResult {
  trackedPerSec: number;
  /** Tracked again, each worker prefetching `prefetch` more jobs (started ahead of a free slot). */
  prefetchedPerSec: number;
  prefetch: number;
  rawPerSec: number;
  /** Enqueue (submit) to handler start, idle workers, across processes. */
  latency: LatencySummary;
  /** Connections open while the tracked drain ran: Redis (all clients, delta over the idle server) and PostgreSQL (this ledger's). */
  redisConnections: number;
  pgConnections: number;
  /** CPU time per 1000 tasks, by process kind, of each drain (where the 2 cores go). */
  cpu: { raw: CpuUse; tracked: CpuUse; prefetched: CpuUse };
  workers: number;
  concurrency: number;
}

interface WorkerProc {
  child: ChildProcess;
  done: number;
  starts: Map<string, number>;
  exited: Promise<void>;
}

async function startWorkers(n: number, env: Record<string, string>): Promise<WorkerProc[]> {
  const procs = Array.from({ length: n }, () => {
    const child = spawnTsx(WORKER, [], env);
    const proc: WorkerProc = { child, done: 0, starts: new Map(), exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    eachLine(child, (line) => {
      if (line.startsWith('done ')) proc.done = Number(line.slice(5));
      else if (line.startsWith('start ')) {
        const [, id, at] = line.split(' ');
        proc.starts.set(id!, Number(at));
      } else if (line === 'ready') child.emit('ready');
    });
    return proc;
  });
  await Promise.all(procs.map((p) => new Promise<void>((resolve, reject) => {
    p.child.once('ready', resolve);
    void p.exited.then(() => reject(new Error('bench worker exited before it was ready')));
  })));
  return procs;
}

async function stopWorkers(procs: WorkerProc[]): Promise<void> {
  for (const p of procs) p.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.exited));
}

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not done within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now();
}

async function redisClients(redis: Redis): Promise<number> {
  const info = await redis.info('clients');
  return Number(/connected_clients:(\d+)/.exec(info)?.[1] ?? NaN);
}

async function withSchema<T>(fn: (schema: string) => Promise<T>): Promise<T> {
  const schema = `bench_${randomBytes(5).toString('hex')}`;
  try {
    return await fn(schema);
  } finally {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => client.end());
  }
}

/** Connections of the processes under test (API yard and workers name themselves `taskyard-bench`). */
async function pgConnections(applicationName: string): Promise<number> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [applicationName]);
    return rows[0].n;
  } finally {
    await client.end();
  }
}

/**
 * The ledger's rows by task type and state, counted on the table itself. Maintenance services
 * record a round that did something as a run of its own, so only the bench's task type is checked.
 */
async function rowsByState(schema: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT name || ' ' || state AS kind, count(*)::int AS n FROM ${schema}.taskyard_tasks GROUP BY 1`);
    return Object.fromEntries(rows.map((r) => [r.kind, r.n]));
  } finally {
    await client.end();
  }
}

/** CPU milliseconds, per 1000 tasks once divided (see perThousand). */
export interface CpuUse {
  workers: number;
  /** Every backend of the processes under test. */
  postgres: number;
  /** The whole Redis server: anything else using it meanwhile counts too. */
  redis: number;
  /** This process: the tracked API yard (it follows the event feed) and the harness. */
  api: number;
  total: number;
}

/** CPU milliseconds used so far by each of these processes (Linux /proc; none elsewhere). */
function cpuOf(pids: readonly number[]): Map<number, number> {
  const used = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      used.set(pid, (Number(fields[11]) + Number(fields[12])) * 10); // utime + stime, in 10 ms ticks
    } catch {
      // gone, or no /proc
    }
  }
  return used;
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (seconds('used_cpu_sys') + seconds('used_cpu_user')) * 1000;
}

async function pgBackends(applicationName: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [applicationName]);
    return rows.map((r) => r.pid as number);
  } finally {
    await client.end();
  }
}

/** Starts counting CPU time; the returned function stops and answers it per 1000 of `count` tasks. */
async function meterCpu(redis: Redis, workerPids: number[], pgApplication: string | null, count: number): Promise<() => Promise<CpuUse>> {
  const backends = () => (pgApplication ? pgBackends(pgApplication) : Promise.resolve([]));
  const [workers0, pg0, redis0, self0] = [cpuOf(workerPids), cpuOf(await backends()), await redisCpuMs(redis), process.cpuUsage()];
  const grown = (before: Map<number, number>, after: Map<number, number>) => [...after].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);
  return async () => {
    const self = process.cpuUsage(self0);
    const per = (ms: number) => (ms * 1000) / count;
    const use = {
      workers: per(grown(workers0, cpuOf(workerPids))),
      postgres: per(grown(pg0, cpuOf(await backends()))),
      redis: per((await redisCpuMs(redis)) - redis0),
      api: per((self.user + self.system) / 1000),
    };
    return { ...use, total: use.workers + use.postgres + use.redis + use.api };
  };
}

/** Raw BullMQ: `count` no-op jobs drained by `workers` bare worker processes. */
async function rawDrain(count: number, workers: number, concurrency: number): Promise<{ perSec: number; cpu: CpuUse }> {
  const name = `bench-raw-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis, prefix: name });
  await queue.pause();
  for (let i = 0; i < count; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: { removeOnComplete: true, removeOnFail: true } })));
  }
  const procs = await startWorkers(workers, { BENCH_MODE: 'raw', BENCH_QUEUE: name, BENCH_CONCURRENCY: String(concurrency), REDIS_URL });
  try {
    const cpu = await meterCpu(redis, procs.map((p) => p.child.pid!), null, count);
    const t0 = performance.now();
    await queue.resume();
    const t1 = await until(() => procs.reduce((n, p) => n + p.done, 0) >= count, 600_000);
    return { perSec: count / ((t1 - t0) / 1000), cpu: await cpu() };
  } finally {
    await stopWorkers(procs);
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  }
}

export async function scaleOut(count: number, workers = 2, concurrency = 25, prefetch = concurrency): Promise<ScaleOutResult> {
  const raw = await rawDrain(count, workers, concurrency);
  return withSchema(async (schema) => {
    const queueName = `bench-tracked-${randomBytes(4).toString('hex')}`;
    const redis = new Redis(REDIS_URL);
    const idleClients = await redisClients(redis);
    const api: Taskyard = await createTaskyard({
      tasks: [noop],
      logger: pino({ level: 'silent' }),
      store: new PostgresStore({ connectionString: PG_URL, schema, poolSize: 10, applicationName: 'taskyard-bench' }),
      engine: new BullMQEngine({ redisUrl: REDIS_URL, queue: queueName, worker: false }),
      pruner: false,
    });
    const queue = new Queue(queueName, { connection: redis, prefix: queueName });
    const env = { BENCH_MODE: 'tracked', BENCH_QUEUE: queueName, BENCH_CONCURRENCY: String(concurrency), BENCH_PG_URL: PG_URL, BENCH_SCHEMA: schema, REDIS_URL };
    let procs: WorkerProc[] = [];
    let redisConnections = 0;
    let pgConns = 0;
    let drained = 0;
    /** Submits `count` runs into the paused queue, then times the workers draining them. */
    const drain = async (workerEnv: Record<string, string>, sample: boolean): Promise<{ perSec: number; cpu: CpuUse }> => {
      await queue.pause();
      for (let i = 0; i < count; i += 5000) {
        await api.submitMany(Array.from({ length: Math.min(5000, count - i) }, () => ({ name: 'bench.noop' })));
      }
      procs = await startWorkers(workers, workerEnv);
      const meter = await meterCpu(redis, procs.map((p) => p.child.pid!), 'taskyard-bench', count);
      const t0 = performance.now();
      await queue.resume();
      const sampler = sample
        ? setTimeout(async () => {
            redisConnections = (await redisClients(redis)) - idleClients;
            pgConns = await pgConnections('taskyard-bench');
          }, 500)
        : undefined;
      const t1 = await until(() => procs.reduce((n, p) => n + p.done, 0) >= count, 600_000);
      clearTimeout(sampler);
      const cpu = await meter();
      if (sample && redisConnections === 0) redisConnections = (await redisClients(redis)) - idleClients;
      if (sample && pgConns === 0) pgConns = await pgConnections('taskyard-bench');
      drained += count;
      const rows = await rowsByState(schema);
      if (rows['bench.noop SUCCESS'] !== drained) throw new Error(`the ledger has ${JSON.stringify(rows)}, expected ${drained} bench.noop SUCCESS`);
      await stopWorkers(procs);
      return { perSec: count / ((t1 - t0) / 1000), cpu };
    };
    try {
      const tracked = await drain(env, true);
      const prefetched = await drain({ ...env, BENCH_PREFETCH: String(prefetch) }, false);

      // Latency: idle workers, one run at a time, submit to handler start (epoch ms, both sides).
      procs = await startWorkers(workers, { ...env, BENCH_TRACE_STARTS: '1' });
      const latencies: number[] = [];
      for (let i = 0; i < 220; i++) {
        const before = performance.timeOrigin + performance.now();
        const id = await api.submit('bench.noop');
        const started = await new Promise<number>((resolve) => {
          const poll = setInterval(() => {
            const at = procs.map((p) => p.starts.get(id)).find((t) => t !== undefined);
            if (at !== undefined) {
              clearInterval(poll);
              resolve(at);
            }
          }, 1);
        });
        if (i >= 20) latencies.push(started - before);
      }
      return {
        trackedPerSec: tracked.perSec,
        prefetchedPerSec: prefetched.perSec,
        prefetch,
        rawPerSec: raw.perSec,
        cpu: { raw: raw.cpu, tracked: tracked.cpu, prefetched: prefetched.cpu },
        latency: summarize(latencies),
        redisConnections,
        pgConnections: pgConns,
        workers,
        concurrency,
      };
    } finally {
      await stopWorkers(procs);
      await api.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      redis.disconnect();
    }
  });
}
