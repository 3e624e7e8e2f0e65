import { sql, type Kysely, type Migration } from 'kysely';

/**
 * What the SQLite and PostgreSQL ledgers' migrations share. Each dialect has its own list
 * (sqlite.ts, postgres.ts) and both end in the same schema: a new migration is added to both,
 * under the same name.
 */

/** Tenant-less runs are counted (and keep their idempotency keys) under this key, since primary keys cannot hold NULL. */
export const NO_TENANT = '';

/**
 * The states of a live run, as migration 0007 wrote them into its partial index (kept here, not
 * read from core, so the migration never changes); queries repeat them so the index is used.
 */
export const LIVE_STATES = ['PENDING', 'STARTED', 'RETRY'] as const;

/**
 * Queue control, written once for both dialects (plain types only):
 * - `unique_key`: a definition declaring `unique: { by }` keeps one live run per key. The partial
 *   unique index holds only live runs, so the ledger itself refuses a second one, whichever process
 *   launches it, and a finished run frees its key.
 * - `cache_key`: a definition declaring `cache` finds a recent SUCCESS run with the same key.
 * - `taskyard_pauses`: paused queues and task types, read by every engine.
 */
export const controlMigration: Migration = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async up(db: Kysely<any>) {
    await db.schema.alterTable('taskyard_tasks').addColumn('unique_key', 'text').execute();
    await db.schema.alterTable('taskyard_tasks').addColumn('cache_key', 'text').execute();
    await db.schema
      .createIndex('taskyard_tasks_unique_live')
      .on('taskyard_tasks')
      .column('unique_key')
      .unique()
      .where(sql.ref('state'), 'in', [...LIVE_STATES])
      .where(sql.ref('unique_key'), 'is not', null)
      .execute();
    await db.schema
      .createIndex('taskyard_tasks_cache')
      .on('taskyard_tasks')
      .columns(['cache_key', 'finished_at'])
      .where(sql.ref('cache_key'), 'is not', null)
      .execute();
    await db.schema
      .createTable('taskyard_pauses')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('paused_at', 'bigint', (c) => c.notNull())
      .addColumn('paused_by', 'text')
      .addPrimaryKeyConstraint('taskyard_pauses_pk', ['kind', 'name'])
      .execute();
  },
};
