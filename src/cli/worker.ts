/**
 * `taskyard worker --tasks <module>`: a BullMQ worker process for the user's task definitions. It
 * reads the same environment as `taskyard serve` (DATABASE_URL, REDIS_URL, TASKYARD_QUEUE,
 * TASKYARD_CONCURRENCY, TASKYARD_SHUTDOWN_GRACE_MS, ...). Imported only by that command.
 */
import { loadConfig } from '../config.js';
import { createConfiguredYard } from '../configured.js';
import { describeDatabaseUrl } from '../store/index.js';
import type { Taskyard } from '../taskyard.js';
import { asUsageError, loadUserTasks } from './serve.js';

export interface WorkerCommandOptions {
  /** Path or URL of the tasks module. */
  tasks: string;
  concurrency?: number;
  queue?: string;
}

export async function runWorker(options: WorkerCommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<Taskyard> {
  const { url, tasks } = await loadUserTasks(options.tasks);
  return asUsageError(async () => {
    const config = loadConfig({
      ...env,
      TASKYARD_ENGINE: 'bullmq',
      ...(options.concurrency !== undefined && { TASKYARD_CONCURRENCY: String(options.concurrency) }),
      ...(options.queue !== undefined && { TASKYARD_QUEUE: options.queue }),
    });
    const { yard, logger } = await createConfiguredYard(config, { tasks, tasksModule: url, role: 'worker', env });
    logger.info(
      `Taskyard worker ${yard.identity.id} ready: ledger ${describeDatabaseUrl(config.databaseUrl)}, queue ${config.queue}, ` +
        `concurrency ${config.concurrency}; ${tasks.length} task type(s) from ${options.tasks}`,
    );
    const stop = (signal: string) => {
      logger.info(`${signal} received: finishing running tasks, then stopping`);
      yard.close().then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, 'worker did not stop cleanly');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    return yard;
  });
}
