import { pino } from 'pino';
import type { Config } from './config.js';
import type { AnyTaskDefinition } from './core/definition.js';
import type { CategoryRule } from './core/registry.js';
import type { ScheduleDefinition } from './schedules/definition.js';
import { serverEngine, startsEngine, workerEngine } from './engines/select.js';
import type { Logger } from './engines/types.js';
import { createStore } from './store/index.js';
import { createTaskyard, type Taskyard } from './taskyard.js';
import { installWebhooks, webhookConfigFromEnv, webhookTask } from './webhooks/index.js';

export interface ConfiguredYardOptions {
  tasks: readonly AnyTaskDefinition[];
  /** Module exporting the definitions, for isolated runs. */
  tasksModule?: string;
  categoryRules?: readonly CategoryRule[];
  /** An API server (its engine per TASKYARD_ENGINE) or a BullMQ worker process. */
  role: 'server' | 'worker';
  /** Schedules defined in code (a tasks module's `schedules` export). */
  schedules?: readonly ScheduleDefinition[];
  env?: NodeJS.ProcessEnv;
}

/**
 * A yard as the environment configures it: the ledger, the engine for the process's role, peers,
 * limits, retention and webhooks. `npm start`, `npm run worker`, `taskyard serve` and `taskyard
 * worker` all start from here, so they read the same settings the same way.
 */
export async function createConfiguredYard(config: Config, options: ConfiguredYardOptions): Promise<{ yard: Taskyard; logger: Logger }> {
  const webhooks = webhookConfigFromEnv(options.env ?? process.env);
  const logger = pino({ level: config.logLevel });
  const worker = options.role === 'worker';
  const yard = await createTaskyard({
    // Webhook deliveries are tasks too, so none is lost across a restart; they run only where
    // webhooks are configured (other processes leave them alone).
    tasks: webhooks ? [...options.tasks, webhookTask] : options.tasks,
    categoryRules: options.categoryRules,
    tasksModule: options.tasksModule,
    schedules: options.schedules,
    store: createStore(config.databaseUrl, { poolSize: config.pgPoolSize }),
    engine: worker ? workerEngine(config) : serverEngine(config),
    execute: worker || startsEngine(config),
    logger,
    maintenance: config.maintenance,
    peers: { ...config.peers, rescueIntervalMs: config.peers.heartbeatMs },
    limits: config.limits,
    shutdownGraceMs: config.shutdownGraceMs,
  });
  // A durable consumer: whichever process hosting it holds its role delivers.
  if (webhooks) installWebhooks(yard, webhooks);
  return { yard, logger };
}
