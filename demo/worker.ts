/**
 * `npm run worker`: a BullMQ worker for the seeds' demo tasks, reading the same environment as
 * `npm start` (DATABASE_URL, REDIS_URL, TASKYARD_QUEUE, TASKYARD_CONCURRENCY, ...). Start as many
 * as you like, on any machine that reaches Redis and the ledger.
 */
import { dirname, join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { createConfiguredYard } from '../src/configured.js';
import { describeDatabaseUrl } from '../src/store/index.js';
import { createReconciliationModule } from './reconciliation/module.js';
import { categoryRules, demoTasks } from './tasks/index.js';

try {
  const config = loadConfig({ TASKYARD_ENGINE: 'bullmq', ...process.env });
  const { yard, logger } = await createConfiguredYard(config, {
    tasks: demoTasks,
    categoryRules,
    tasksModule: new URL('./tasks/index.ts', import.meta.url).href,
    role: 'worker',
  });
  const reconciliation = createReconciliationModule({ yard, filename: join(dirname(config.sqliteFile), 'reconciliation.db') });
  logger.info(`Taskyard worker ${yard.identity.id} ready: ledger ${describeDatabaseUrl(config.databaseUrl)}, queue ${config.queue}, concurrency ${config.concurrency}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received: finishing running tasks, then stopping`);
    yard
      .close()
      .then(() => reconciliation.close())
      .then(
        () => process.exit(0),
        (error) => {
          logger.error({ err: error }, 'worker did not stop cleanly');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (error) {
  console.error(`taskyard worker: ${(error as Error).message}`);
  process.exit(1);
}
