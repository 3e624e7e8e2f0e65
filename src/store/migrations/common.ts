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

/** Rolling aggregates are kept per minute of `finished_at`. */
export const FINISHED_BUCKET_MS = 60_000;

/**
 * Reads at a million runs, the same on both ledgers:
 * - `taskyard_finished`: runs finished per (minute, tenant), kept in the same transaction as the
 *   state writes, so throughput over the last minute and hour sums a few dozen rows instead of
 *   counting every run of the hour. Only the partial minute at the window's start is counted
 *   from the runs themselves (see the stores' `stats`).
 * - The finished index also holds `started_at` and `tenant_id`, so durations and that edge are
 *   read from the index alone. Same name, so queries naming it keep working. Statistics scoped to
 *   some tenants read the same from a tenant-first copy (tenanted runs only), instead of walking
 *   every tenant's last hour to find theirs.
 * - The list filtered by tenant, state and category walks one index range in id order instead
 *   of every run of the tenant. Tenant-less runs are left out, as for the tenant index.
 */
export const countersMigration: Migration = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('taskyard_finished')
      .addColumn('minute', 'bigint', (c) => c.notNull())
      .addColumn('tenant_id', 'text', (c) => c.notNull())
      .addColumn('count', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('taskyard_finished_pk', ['minute', 'tenant_id'])
      .execute();
    await sql`INSERT INTO taskyard_finished (minute, tenant_id, count)
      SELECT finished_at / ${sql.lit(FINISHED_BUCKET_MS)}, coalesce(tenant_id, ${sql.lit(NO_TENANT)}), count(*) FROM taskyard_tasks
      WHERE finished_at IS NOT NULL GROUP BY 1, 2`.execute(db);
    await db.schema.dropIndex('taskyard_tasks_finished').execute();
    await db.schema
      .createIndex('taskyard_tasks_finished')
      .on('taskyard_tasks')
      .columns(['finished_at', 'started_at', 'tenant_id'])
      .where(sql.ref('finished_at'), 'is not', null)
      .execute();
    await db.schema
      .createIndex('taskyard_tasks_tenant_finished')
      .on('taskyard_tasks')
      .columns(['tenant_id', 'finished_at', 'started_at'])
      .where(sql.ref('finished_at'), 'is not', null)
      .where(sql.ref('tenant_id'), 'is not', null)
      .execute();
    await db.schema
      .createIndex('taskyard_tasks_tenant_state_category')
      .on('taskyard_tasks')
      .columns(['tenant_id', 'state', 'category', 'id'])
      .where(sql.ref('tenant_id'), 'is not', null)
      .execute();
  },
};
