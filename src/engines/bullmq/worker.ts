import type { TaskyardOptions } from '../../taskyard.js';
import { createTaskyard, type Taskyard } from '../../taskyard.js';
import { createStore } from '../../store/index.js';
import { BullMQEngine, type BullMQEngineOptions } from './engine.js';

export interface WorkerOptions extends Omit<TaskyardOptions, 'engine' | 'execute' | 'dataDir'>, Pick<BullMQEngineOptions, 'redisUrl' | 'queue' | 'concurrency' | 'prefetch' | 'connectTimeoutMs' | 'sweeper'> {
  /** The shared ledger, when `store` is not given: `postgres://...`, or `sqlite:<file>` for workers on one machine. */
  databaseUrl?: string;
}

/**
 * A worker process: runs the tasks that API servers hand to BullMQ, recording every state,
 * progress, log line and result in the shared ledger. The library twin of `taskyard worker`.
 *
 *   const worker = await createWorker({ tasks, databaseUrl: process.env.DATABASE_URL, redisUrl: process.env.REDIS_URL });
 *   process.on('SIGTERM', () => worker.close()); // finishes running tasks, requeues the rest
 */
export async function createWorker(options: WorkerOptions): Promise<Taskyard> {
  const { databaseUrl, redisUrl, queue, concurrency, prefetch, connectTimeoutMs, sweeper, ...yardOptions } = options;
  if (!yardOptions.store && !databaseUrl) throw new Error('createWorker needs the shared ledger: pass store or databaseUrl');
  const store = yardOptions.store ?? createStore(databaseUrl!);
  const engine = new BullMQEngine({ redisUrl, queue, concurrency, prefetch, connectTimeoutMs, sweeper, worker: true });
  try {
    return await createTaskyard({ ...yardOptions, store, engine, execute: true });
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
}
