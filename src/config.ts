import { join, resolve } from 'node:path';
import { toMs } from './core/duration.js';
import { parseApiKeys, type ApiKey } from './http/auth.js';

/** Settings read from the environment; the README's configuration table lists each one. */
export interface Config {
  host: string;
  port: number;
  /** SQLite ledger file. */
  sqliteFile: string;
  apiKeys: ApiKey[];
  concurrency: number;
  logLevel: string;
  /** Finished runs older than this are pruned. */
  retention: string;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT === undefined || env.PORT === '' ? 8000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`);
  const concurrency = env.TASKYARD_CONCURRENCY ? Number(env.TASKYARD_CONCURRENCY) : 20;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('TASKYARD_CONCURRENCY must be an integer >= 1');
  return {
    host: env.HOST || '127.0.0.1',
    port,
    sqliteFile: sqliteFileOf(env),
    apiKeys: parseApiKeys(env.TASKYARD_API_KEYS),
    concurrency,
    logLevel: env.TASKYARD_LOG_LEVEL || 'info',
    retention: retentionOf(env.TASKYARD_RETENTION),
  };
}

function retentionOf(value: string | undefined): string {
  if (!value) return '7d';
  toMs(value); // throws with a clear message when malformed
  return value;
}

function sqliteFileOf(env: NodeJS.ProcessEnv): string {
  const url = env.DATABASE_URL;
  if (url) {
    const match = /^(?:sqlite|file):(?:\/\/)?(.+)$/.exec(url);
    if (match) return resolve(match[1]!);
    if (/^postgres(ql)?:/.test(url)) {
      throw new Error('DATABASE_URL points at PostgreSQL, but this build has only the SQLite ledger; unset it or use sqlite:<file>');
    }
    throw new Error(`DATABASE_URL must look like sqlite:<file>, got ${JSON.stringify(url)}`);
  }
  return resolve(join(env.TASKYARD_DATA_DIR || 'data', 'taskyard.db'));
}
