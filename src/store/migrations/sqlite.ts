import { sql, type Kysely, type Migration } from 'kysely';
import { schedulesMigration } from './schedules.js';
import { controlMigration, countersMigration, fairMigration, NO_TENANT } from './common.js';

/**
 * The SQLite ledger's migrations, written with Kysely's schema builder and run by its Migrator.
 * The PostgreSQL ledger ends in the same schema (postgres.ts). Times are epoch milliseconds
 * (bigint); JSON is stored as text.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const sqliteMigrations: Record<string, Migration> = {
  '0001_ledger': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('taskyard_tasks')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('progress_message', 'text')
        .addColumn('tenant_id', 'text')
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('error', 'text')
        .addColumn('traceback', 'text')
        .addColumn('meta', 'text')
        .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('route', 'text', (c) => c.notNull())
        .addColumn('engine', 'text', (c) => c.notNull())
        .addColumn('worker', 'text')
        .addColumn('idempotency_key', 'text')
        .addColumn('run_at', 'bigint', (c) => c.notNull())
        .addColumn('cancel_requested', 'text')
        .addColumn('revoke_reason', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('finished_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      // Ids are UUIDv7, so ordering by id is ordering by creation: every list index ends in id.
      await db.schema.createIndex('taskyard_tasks_tenant').on('taskyard_tasks').columns(['tenant_id', 'id']).execute();
      await db.schema.createIndex('taskyard_tasks_state').on('taskyard_tasks').columns(['state', 'id']).execute();
      await db.schema.createIndex('taskyard_tasks_name').on('taskyard_tasks').columns(['name', 'id']).execute();
      await db.schema.createIndex('taskyard_tasks_category').on('taskyard_tasks').columns(['category', 'id']).execute();
      await db.schema
        .createIndex('taskyard_tasks_finished')
        .on('taskyard_tasks')
        .column('finished_at')
        .where(sql.ref('finished_at'), 'is not', null)
        .execute();
      await db.schema
        .createIndex('taskyard_tasks_idempotency')
        .on('taskyard_tasks')
        .column('idempotency_key')
        .unique()
        .where(sql.ref('idempotency_key'), 'is not', null)
        .execute();
      // The queue: only waiting runs are in this index, so it stays small however big the ledger.
      await db.schema
        .createIndex('taskyard_tasks_waiting')
        .on('taskyard_tasks')
        .expression(sql`priority desc, run_at, id`)
        .where(sql.ref('state'), 'in', ['PENDING', 'RETRY'])
        .execute();

      await db.schema
        .createTable('taskyard_events')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('task_id', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('data', 'text')
        .execute();
      await db.schema.createIndex('taskyard_events_task').on('taskyard_events').columns(['task_id', 'seq']).execute();

      // Counts by tenant, name and state, kept up to date with each commit, so statistics
      // never scan the ledger.
      await db.schema
        .createTable('taskyard_counts')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('count', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('taskyard_counts_pk', ['tenant_id', 'name', 'state'])
        .execute();
    },
  },
  /**
   * Cheaper writes, measured on the embedded engine's hot path:
   * - A task's events are chained (`prev_seq` on each event, `last_event_seq` on the task) instead
   *   of indexed by task: every event insert paid for that index, while reading one task's events
   *   follows the chain just as fast.
   * - The tenant index leaves out tenant-less runs, which no tenant filter can match.
   */
  '0002_event_chain': {
    async up(db: AnyDb) {
      await db.schema.alterTable('taskyard_tasks').addColumn('last_event_seq', 'integer').execute();
      await db.schema.alterTable('taskyard_events').addColumn('prev_seq', 'integer').execute();
      // Link the events already there, while the task index still exists to find them.
      await sql`UPDATE taskyard_events SET prev_seq = (SELECT max(p.seq) FROM taskyard_events p
        WHERE p.task_id = taskyard_events.task_id AND p.seq < taskyard_events.seq)`.execute(db);
      await sql`UPDATE taskyard_tasks SET last_event_seq = (SELECT max(e.seq) FROM taskyard_events e
        WHERE e.task_id = taskyard_tasks.id)`.execute(db);
      await db.schema.dropIndex('taskyard_events_task').execute();
      await db.schema.dropIndex('taskyard_tasks_tenant').execute();
      await db.schema
        .createIndex('taskyard_tasks_tenant')
        .on('taskyard_tasks')
        .columns(['tenant_id', 'id'])
        .where(sql.ref('tenant_id'), 'is not', null)
        .execute();
    },
  },
  /**
   * Idempotency keys belong to a tenant: the same key used by two tenants names two runs, so one
   * tenant can neither read nor squat another's run through a key. Tenant-less runs share the
   * NO_TENANT slot (a unique index treats NULLs as distinct, hence the coalesce).
   */
  '0003_tenant_idempotency': {
    async up(db: AnyDb) {
      await db.schema.dropIndex('taskyard_tasks_idempotency').execute();
      await db.schema
        .createIndex('taskyard_tasks_tenant_idempotency')
        .on('taskyard_tasks')
        .expression(sql`coalesce(tenant_id, ${sql.lit(NO_TENANT)}), idempotency_key`)
        .unique()
        .where(sql.ref('idempotency_key'), 'is not', null)
        .execute();
    },
  },
  /**
   * Many processes, one ledger:
   * - `taskyard_workers`: one row per live process, renewed by its heartbeat. A STARTED run is
   *   owned by its `worker`; once that worker's row has expired, the run may be rescued.
   * - `taskyard_leaders`: one row per leader role (e.g. maintenance), held for a short lease.
   * - `taskyard_cursors`: how far each durable consumer (webhooks, app modules) has read the
   *   event log, so it resumes there after a crash.
   */
  '0004_peers': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('taskyard_workers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('pid', 'integer', (c) => c.notNull())
        .addColumn('engine', 'text', (c) => c.notNull())
        .addColumn('concurrency', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('taskyard_leaders')
        .addColumn('role', 'text', (c) => c.primaryKey())
        .addColumn('holder', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('taskyard_cursors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0006_schedules': schedulesMigration,
  /** Queue control: see `controlMigration` (the same on both ledgers). */
  '0007_control': controlMigration,
  /** Fairness and limits: see `fairMigration` (the same on both ledgers). */
  '0008_fair': fairMigration,
  /** Reads at a million runs: see `countersMigration` (the same on both ledgers). */
  '0009_counters': countersMigration,
};
