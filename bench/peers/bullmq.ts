// Raw BullMQ baseline: what a bare Queue + Worker on local Redis does with no framework on top.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { summarize, type LatencySummary } from '../lib/stats.js';

const REDIS_HOST = process.env.REDIS_HOST ?? '127.0.0.1';
const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);
// Workers use blocking commands, which BullMQ requires to run without per-request retries.
const connection: ConnectionOptions = { host: REDIS_HOST, port: REDIS_PORT, maxRetriesPerRequest: null };

const CHUNK = 1000;

export interface ThroughputResult {
  jobsPerSec: number;
  seconds: number;
}

/** Unique name per run so concurrent or crashed runs never share keys. */
function freshName(tag: string): string {
  return `bench-${tag}-${randomUUID().slice(0, 8)}`;
}

async function cleanup(queue: Queue, worker: Worker): Promise<void> {
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

/**
 * Enqueue `count` no-op jobs first, then time only the drain: from worker start
 * until `count` jobs have completed (one Worker, concurrency 50).
 */
export async function rawBullmq(count: number): Promise<ThroughputResult> {
  const name = freshName('tput');
  const queue = new Queue(name, { connection });
  const jobs = Array.from({ length: CHUNK }, (_, i) => ({
    name: 'noop',
    data: { i },
    opts: { removeOnComplete: true },
  }));
  for (let added = 0; added < count; added += CHUNK) {
    await queue.addBulk(jobs.slice(0, Math.min(CHUNK, count - added)));
  }

  // autorun: false so connecting the worker is not part of the measured drain.
  const worker = new Worker(name, async () => undefined, { connection, concurrency: 50, autorun: false });
  await worker.waitUntilReady();

  let done = 0;
  const finished = new Promise<number>((resolve, reject) => {
    worker.on('completed', () => {
      if (++done === count) resolve(performance.now());
    });
    worker.on('failed', (_job, err) => reject(err));
  });
  const t0 = performance.now();
  void worker.run();
  const t1 = await finished;

  await cleanup(queue, worker);
  const seconds = (t1 - t0) / 1000;
  return { jobsPerSec: count / seconds, seconds };
}

/**
 * Idle enqueue-to-start latency: one job at a time against an already running, idle worker.
 * latency = processor start − time just before queue.add(). Same process, so one clock.
 */
export async function bullmqLatency(samples: number, warmup = 20): Promise<LatencySummary> {
  const name = freshName('lat');
  const queue = new Queue(name, { connection });
  // Same worker shape as rawBullmq (concurrency 50); idle, it sits blocked on Redis for new work.
  let onStart: (t: number) => void = () => {};
  let onDone: () => void = () => {};
  const worker = new Worker(name, async () => onStart(performance.now()), { connection, concurrency: 50 });
  worker.on('completed', () => onDone());
  await worker.waitUntilReady();
  await queue.waitUntilReady();

  const latencies: number[] = [];
  for (let i = 0; i < warmup + samples; i++) {
    const startedAt = new Promise<number>((resolve) => (onStart = resolve));
    // Wait for completion too, so the worker is idle again before the next add.
    const completed = new Promise<void>((resolve) => (onDone = resolve));
    const tAdd = performance.now();
    await queue.add('noop', { i }, { removeOnComplete: true });
    const tStart = await startedAt;
    await completed;
    if (i >= warmup) latencies.push(tStart - tAdd); // warm-up hides connection/script-load cost
  }

  await cleanup(queue, worker);
  return summarize(latencies);
}
