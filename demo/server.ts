/**
 * `npm start`: the seeds' world on the embedded default (SQLite ledger, local engine, one process).
 */
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { LocalEngine } from '../src/engines/local/engine.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { serve } from '../src/server.js';
import { createTaskyard } from '../src/taskyard.js';
import { installWebhooks, webhookConfigFromEnv, webhookTask } from '../src/webhooks/index.js';
import { createDemoApp } from './app.js';
import { categoryRules, demoTasks } from './tasks/index.js';

try {
  const config = loadConfig();
  const webhooks = webhookConfigFromEnv(process.env);
  const logger = pino({ level: config.logLevel });
  const yard = await createTaskyard({
    // Webhook deliveries are tasks too, so none is lost across a restart.
    tasks: [...demoTasks, webhookTask],
    categoryRules,
    tasksModule: new URL('./tasks/index.ts', import.meta.url).href,
    store: new SqliteStore({ filename: config.sqliteFile }),
    engine: new LocalEngine({ concurrency: config.concurrency }),
    logger,
    pruner: { retention: config.retention },
  });
  if (webhooks) installWebhooks(yard, webhooks);
  logger.info(`Ledger: ${config.sqliteFile}`);
  const demo = createDemoApp(yard, { ledgerFile: config.sqliteFile });
  await serve({
    yard,
    host: config.host,
    port: config.port,
    apiKeys: config.apiKeys,
    plugins: demo.plugins,
    onClose: () => demo.close(),
  });
} catch (error) {
  console.error(`taskyard: ${(error as Error).message}`);
  process.exit(1);
}
