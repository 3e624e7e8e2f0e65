/**
 * The ledgers store-level tests run on: a fresh SQLite file and a fresh PostgreSQL schema, each
 * able to open more stores on the same database (other processes).
 */
import { join } from 'node:path';
import type { TaskEvent } from '../src/core/events.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import { TEST_DATABASE_URL, dropSchema, freshSchema, tempDir } from './helpers.js';

/** A fresh, empty ledger, and a way to open more stores on the same database (other processes). */
export interface Ledger {
  open(onCommit?: (events: TaskEvent[]) => void): Promise<TaskStore>;
  dispose(): Promise<void>;
}

export const ledgerHarnesses: Array<[string, () => Ledger]> = [
  [
    'sqlite',
    () => {
      const temp = tempDir();
      const stores: TaskStore[] = [];
      return {
        async open(onCommit) {
          const store = new SqliteStore({ filename: join(temp.dir, 'ledger.db'), onCommit });
          stores.push(store);
          await store.migrate();
          return store;
        },
        async dispose() {
          for (const store of stores) await store.close();
          await temp.cleanup();
        },
      };
    },
  ],
  [
    'postgres',
    () => {
      const schema = freshSchema();
      const stores: TaskStore[] = [];
      return {
        async open(onCommit) {
          const store = new PostgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3, onCommit });
          stores.push(store);
          await store.migrate();
          return store;
        },
        async dispose() {
          for (const store of stores) await store.close();
          await dropSchema(schema);
        },
      };
    },
  ],
];
