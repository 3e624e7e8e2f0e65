/**
 * `npm start`: the seeds' world on the embedded default (SQLite ledger, local engine, one process),
 * or on a PostgreSQL ledger when DATABASE_URL says so. With TASKYARD_ENGINE=bullmq it runs no task
 * itself and hands them to `npm run worker` processes; with `hybrid`, only the heavy ones.
 */
import { loadConfig } from '../src/config.js';
import { createConfiguredYard } from '../src/configured.js';
import { describeDatabaseUrl } from '../src/store/index.js';
import { serve } from '../src/server.js';
import { createDemoApp } from './app.js';
import { categoryRules, demoTasks } from './tasks/index.js';

try {
  const config = loadConfig();
  const { yard, logger } = await createConfiguredYard(config, {
    tasks: demoTasks,
    categoryRules,
    tasksModule: new URL('./tasks/index.ts', import.meta.url).href,
    role: 'server',
  });
  logger.info(`Ledger: ${describeDatabaseUrl(config.databaseUrl)}; engine: ${config.engine}${config.engine === 'local' ? '' : ` (queue ${config.queue})`}`);
  const demo = createDemoApp(yard, { ledgerFile: config.sqliteFile });
  await serve({
    yard,
    host: config.host,
    port: config.port,
    apiKeys: config.apiKeys,
    bodyLimit: config.bodyLimit,
    sse: config.sse,
    metrics: config.metrics,
    rateLimit: config.rateLimit,
    plugins: demo.plugins,
    onClose: () => demo.close(),
  });
} catch (error) {
  console.error(`taskyard: ${(error as Error).message}`);
  process.exit(1);
}
