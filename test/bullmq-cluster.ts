/**
 * A small Taskyard cluster inside the test process, for the BullMQ engine tests: an API yard that
 * dispatches (runs nothing) and worker yards, sharing one PostgreSQL ledger (a fresh schema) and
 * one BullMQ queue of their own on the local Redis. Everything is removed on close.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { AnyTaskDefinition } from '../src/core/definition.js';
import { uuidv7 } from '../src/core/ids.js';
import type { TaskRecord } from '../src/core/record.js';
import { BullMQEngine, type BullMQEngineOptions } from '../src/engines/bullmq/engine.js';
import { createWorker } from '../src/engines/bullmq/worker.js';
import { PostgresStore } from '../src/store/postgres.js';
import { createTaskyard, type Taskyard, type TaskyardOptions } from '../src/taskyard.js';
import { TEST_DATABASE_URL, dropSchema, freshSchema, silentLogger } from './helpers.js';

export const REDIS_URL = process.env.TASKYARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** Short leases and a quick sweeper, so crashes and lost jobs show within a second or two. */
export const FAST_PEERS = { leaseMs: 2000, heartbeatMs: 500, feedPollMs: 50 };
export const FAST_SWEEPER = { intervalMs: 200, graceMs: 300 };

export interface Cluster {
  queue: string;
  schema: string;
  api: Taskyard;
  workers: Taskyard[];
  addWorker(options?: { concurrency?: number; prefetch?: number; shutdownGraceMs?: number }): Promise<Taskyard>;
  /** Whether Redis holds this job (by id). */
  hasJob(jobId: string): Promise<boolean>;
  /** A raw BullMQ queue on the cluster's queue, for adding jobs behind Taskyard's back. */
  rawQueue(): Queue;
  store(): PostgresStore;
  close(): Promise<void>;
}

export interface ClusterOptions extends Partial<TaskyardOptions> {
  tasks: readonly AnyTaskDefinition[];
  workers?: number;
  concurrency?: number;
  apiEngine?: Partial<BullMQEngineOptions>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const schema = freshSchema();
  const queue = `tyq-${randomBytes(5).toString('hex')}`;
  const { tasks, workers: count = 1, concurrency = 5, apiEngine, ...yardOptions } = options;
  const stores: PostgresStore[] = [];
  const store = () => {
    const s = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 });
    stores.push(s);
    return s;
  };
  const redis = new Redis(REDIS_URL);
  const raw: Queue[] = [];
  const workers: Taskyard[] = [];
  const api = await createTaskyard({
    tasks,
    logger: silentLogger,
    peers: FAST_PEERS,
    shutdownGraceMs: 500,
    ...yardOptions,
    store: store(),
    engine: new BullMQEngine({ redisUrl: REDIS_URL, queue, worker: false, sweeper: FAST_SWEEPER, ...apiEngine }),
  });
  const cluster: Cluster = {
    queue,
    schema,
    api,
    workers,
    async addWorker(o = {}) {
      const worker = await createWorker({
        tasks,
        logger: silentLogger,
        peers: FAST_PEERS,
        shutdownGraceMs: o.shutdownGraceMs ?? 500,
        ...yardOptions,
        store: store(),
        redisUrl: REDIS_URL,
        queue,
        concurrency: o.concurrency ?? concurrency,
        prefetch: o.prefetch,
        sweeper: FAST_SWEEPER,
      });
      workers.push(worker);
      return worker;
    },
    async hasJob(jobId) {
      return (await redis.exists(`${queue}:${queue}:${jobId}`)) === 1;
    },
    rawQueue() {
      const q = new Queue(queue, { connection: redis, prefix: queue });
      raw.push(q);
      return q;
    },
    store,
    async close() {
      for (const yard of [...workers, api]) await yard.close().catch(() => {});
      const cleaner = new Queue(queue, { connection: redis, prefix: queue });
      await cleaner.obliterate({ force: true }).catch(() => {});
      await cleaner.close();
      for (const q of raw) await q.close().catch(() => {});
      for (const s of stores) await s.close().catch(() => {});
      redis.disconnect();
      await dropSchema(schema);
    },
  };
  for (let i = 0; i < count; i++) await cluster.addWorker();
  return cluster;
}

/** A PENDING record as a launch would write it, for inserting behind the engine's back. */
export function bareRecord(yard: Taskyard, name: string, params: Record<string, unknown> = {}): TaskRecord {
  const now = Date.now();
  const definition = yard.registry.get(name);
  return {
    id: uuidv7(now),
    name,
    category: yard.registry.categoryOf(definition),
    displayName: definition.displayName,
    state: 'PENDING',
    progress: 0,
    progressMessage: null,
    tenantId: definition.tenantOf(params),
    params,
    result: null,
    error: null,
    traceback: null,
    meta: null,
    attempt: 0,
    maxAttempts: definition.retry.attempts,
    priority: 0,
    queue: 'default',
    route: definition.route,
    engine: 'bullmq',
    worker: null,
    idempotencyKey: null,
    runAt: now,
    cancelRequested: null,
    revokeReason: null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    updatedAt: now,
  };
}
