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

/**
 * Fairness and limits, written once for both dialects:
 * - `taskyard_tasks_fair`: waiting runs by priority, then tenant, then run_at and id. A fair claim
 *   walks it to find the tenants waiting at a priority (one seek per tenant) and each tenant's
 *   oldest due runs, without reading the other tenants' runs.
 * - `taskyard_starts`: one row per start (name, time, run) of a definition that has a rate
 *   limit, kept for its window only, so counting the starts in a window reads at most `max` rows.
 */
export const fairMigration: Migration = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async up(db: Kysely<any>) {
    await db.schema
      .createIndex('taskyard_tasks_fair')
      .on('taskyard_tasks')
      .expression(sql`priority desc, coalesce(tenant_id, ${sql.lit(NO_TENANT)}), run_at, id`)
      .where(sql.ref('state'), 'in', ['PENDING', 'RETRY'])
      .execute();
    await db.schema
      .createTable('taskyard_starts')
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('task_id', 'text', (c) => c.notNull())
      // Also the index the window is counted with.
      .addPrimaryKeyConstraint('taskyard_starts_pk', ['name', 'at', 'task_id'])
      .execute();
  },
};
