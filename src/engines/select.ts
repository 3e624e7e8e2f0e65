import type { Config } from '../config.js';
import { BullMQEngine } from './bullmq/engine.js';
import { HybridEngine } from './hybrid.js';
import { LocalEngine } from './local/engine.js';
import type { Engine } from './types.js';

/**
 * The engine an API server uses for TASKYARD_ENGINE: `local` runs everything here; `bullmq`
 * dispatches everything to workers and runs nothing here; `hybrid` runs light tasks here and
 * dispatches heavy ones. With `execute: false` a local or hybrid server runs nothing itself.
 */
export function serverEngine(config: Config): Engine {
  if (config.engine === 'local') return new LocalEngine({ concurrency: config.concurrency });
  const remote = new BullMQEngine({ redisUrl: config.redisUrl!, queue: config.queue, worker: false });
  if (config.engine === 'bullmq') return remote;
  return new HybridEngine({
    local: { concurrency: config.concurrency },
    remote,
    heavyTasks: config.heavyTasks,
    redisFallback: config.redisFallback,
    executeLocal: config.execute,
  });
}

/**
 * Whether the runtime must start the server's engine: a BullMQ or hybrid server always does (it
 * dispatches to Redis even when it runs nothing itself); a local one only if it executes.
 */
export function startsEngine(config: Config): boolean {
  return config.engine !== 'local' || config.execute;
}

/** A worker process's engine: BullMQ with this process running tasks. */
export function workerEngine(config: Config, concurrency = config.concurrency): BullMQEngine {
  if (!config.redisUrl) throw new Error('A worker needs REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379');
  return new BullMQEngine({ redisUrl: config.redisUrl, queue: config.queue, concurrency, prefetch: config.workerPrefetch, worker: true });
}
