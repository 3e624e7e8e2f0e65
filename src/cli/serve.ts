/**
 * `taskyard serve --tasks <module>`: the user's task definitions behind the native HTTP API, on the
 * ledger and engine the environment names (default: SQLite ledger, local engine, this process;
 * DATABASE_URL for PostgreSQL, TASKYARD_ENGINE=bullmq|hybrid to hand tasks to `taskyard worker`
 * processes). Imported only by that command, so the rest of the CLI starts without loading
 * Fastify or SQLite.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AnyTaskDefinition } from '../core/definition.js';
import { loadConfig } from '../config.js';
import { createConfiguredYard } from '../configured.js';
import { serve, type RunningServer } from '../server.js';
import { describeDatabaseUrl } from '../store/index.js';
import type { ScheduleDefinition } from '../schedules/definition.js';
import { loadTasksModule, schedulesIn, tasksModuleUrl } from '../tasks-module.js';
import { CliError } from './client.js';

export interface ServeCommandOptions {
  /** Path or URL of the tasks module. */
  tasks: string;
  port?: number;
  host?: string;
  dataDir?: string;
}

export async function serveTasks(options: ServeCommandOptions, env: NodeJS.ProcessEnv = process.env): Promise<RunningServer> {
  const { url, tasks, schedules } = await loadUserTasks(options.tasks);

  // Configuration and start-up problems (bad PORT, unreachable ledger, duplicate names) are the
  // user's to fix: one line, no stack.
  const { config, logger, yard } = await asUsageError(async () => {
    const config = loadConfig({
      ...env,
      ...(options.port !== undefined && { PORT: String(options.port) }),
      ...(options.host !== undefined && { HOST: options.host }),
      ...(options.dataDir !== undefined && { TASKYARD_DATA_DIR: options.dataDir, DATABASE_URL: '' }),
    });
    const { yard, logger } = await createConfiguredYard(config, { tasks, tasksModule: url, role: 'server', env, schedules });
    return { config, logger, yard };
  });
  logger.info(`Ledger: ${describeDatabaseUrl(config.databaseUrl)}; engine: ${config.engine}; ${tasks.length} task type(s) from ${options.tasks}: ${tasks.map((t) => t.name).join(', ')}`);
  try {
    const { host, port, apiKeys, bodyLimit, sse, metrics, rateLimit } = config;
    return await serve({ yard, host, port, apiKeys, bodyLimit, sse, metrics, rateLimit });
  } catch (error) {
    await yard.close();
    throw new CliError((error as Error).message);
  }
}

/** The user's tasks module: its URL and definitions, or a one-line usage error. */
export async function loadUserTasks(path: string): Promise<{ url: string; tasks: AnyTaskDefinition[]; schedules?: ScheduleDefinition[] }> {
  const url = tasksModuleUrl(path);
  if (url.startsWith('file:') && !existsSync(fileURLToPath(url))) throw new CliError(`--tasks: no such file ${fileURLToPath(url)}`);
  let tasks;
  let schedules;
  try {
    tasks = await loadTasksModule(url);
    schedules = schedulesIn(await import(url)); // already loaded: the same module
  } catch (error) {
    throw new CliError(`--tasks: cannot load ${path}: ${(error as Error).message}`);
  }
  if (tasks.length === 0) {
    throw new CliError(`--tasks: ${path} exports no task definitions (export defineTask(...) results, or a default array of them)`);
  }
  return { url, tasks, schedules };
}

export async function asUsageError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}
