import type { TaskEvent } from '../core/events.js';
import { parseDatabaseUrl } from './location.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { TaskStore } from './types.js';

export { describeDatabaseUrl, parseDatabaseUrl, type LedgerLocation } from './location.js';

export interface CreateStoreOptions {
  /** PostgreSQL only: connections in the pool. */
  poolSize?: number;
  onCommit?: (events: TaskEvent[]) => void;
}

/** The store for a database URL: SQLite for `sqlite:<file>`, PostgreSQL for `postgres://...`. */
export function createStore(url: string, options: CreateStoreOptions = {}): TaskStore {
  const location = parseDatabaseUrl(url);
  if (location.kind === 'postgres') {
    return new PostgresStore({ connectionString: location.url, poolSize: options.poolSize, onCommit: options.onCommit });
  }
  return new SqliteStore({ filename: location.filename, onCommit: options.onCommit });
}
