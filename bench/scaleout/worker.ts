/**
 * A worker process for the scale-out benchmark: `raw` is a bare BullMQ Worker with a no-op
 * processor; `tracked` is a Taskyard worker (createWorker) on the PostgreSQL ledger. Both print
 * `ready` once connected (BENCH_PREFETCH: the tracked worker's prefetch, default 0) and `done <n>` (jobs finished so far) every 50 ms; in tracked mode each
 * run prints `start <task id> <epoch ms, fractional>` when its handler begins.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { defineTask } from '../../src/core/definition.js';
import { createWorker } from '../../src/engines/bullmq/worker.js';
import { PostgresStore } from '../../src/store/postgres.js';

const { BENCH_MODE, BENCH_QUEUE, BENCH_CONCURRENCY, BENCH_PG_URL, BENCH_SCHEMA, REDIS_URL } = process.env;
const concurrency = Number(BENCH_CONCURRENCY ?? 25);
const redisUrl = REDIS_URL ?? 'redis://127.0.0.1:6379';
const now = () => performance.timeOrigin + performance.now();

let done = 0;
const report = setInterval(() => process.stdout.write(`done ${done}\n`), 50);

if (BENCH_MODE === 'raw') {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const worker = new Worker(BENCH_QUEUE!, async () => undefined, { connection, concurrency, prefix: BENCH_QUEUE });
  worker.on('completed', () => done++);
  await worker.waitUntilReady();
} else {
  const noop = defineTask({
    name: 'bench.noop',
    retry: false,
    async run(_p, ctx) {
      if (process.env.BENCH_TRACE_STARTS) process.stdout.write(`start ${ctx.taskId} ${now()}\n`);
      return null;
    },
  });
  const yard = await createWorker({
    tasks: [noop],
    store: new PostgresStore({ connectionString: BENCH_PG_URL!, schema: BENCH_SCHEMA, poolSize: 4, applicationName: 'taskyard-bench' }),
    redisUrl,
    queue: BENCH_QUEUE,
    concurrency,
    prefetch: Number(process.env.BENCH_PREFETCH ?? 0),
    logger: pino({ level: 'silent' }),
    pruner: false,
  });
  // Hooks see only this process's commits (the event feed carries every process's).
  yard.addHooks({ onSucceeded: () => void done++ });
}
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  clearInterval(report);
  process.exit(0);
});
