import { sql, type Kysely, type Migration } from 'kysely';
import { schedulesMigration } from './schedules.js';
import { controlMigration, countersMigration, fairMigration, NO_TENANT } from './common.js';

/**
 * The PostgreSQL ledger's migrations. It starts at the schema the SQLite ledger reached with its
 * migration 0003 (same tables, columns, indexes and names), written in PostgreSQL's own terms:
 * - event seqs come from `bigint generated always as identity`; the store assigns them in
 *   commit order (see PostgresStore), so the identity sequence is only the allocator;
 * - ids sort as bytes (`collate "C"`), as in SQLite, so paging by id means the same on both;
 * - times are epoch milliseconds (bigint); JSON is stored as text, exactly as SQLite keeps it.
 * A later migration is added to both dialects under the same name.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

const bytewiseText = sql`text collate "C"`;

export const postgresMigrations: Record<string, Migration> = {
  '0001_ledger': {
    async up(db: AnyDb) {
      await db.schema
        .createTable('taskyard_tasks')
        .addColumn('id', bytewiseText, (c) => c.primaryKey())
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
        // The task's newest event: the head of its event chain (see 0002 of the SQLite ledger).
        .addColumn('last_event_seq', 'bigint')
        .execute();
      // Ids are UUIDv7, so ordering by id is ordering by creation: every list index ends in id.
      await db.schema
        .createIndex('taskyard_tasks_tenant')
        .on('taskyard_tasks')
        .columns(['tenant_id', 'id'])
        .where(sql.ref('tenant_id'), 'is not', null)
        .execute();
      await db.schema.createIndex('taskyard_tasks_state').on('taskyard_tasks').columns(['state', 'id']).execute();
      await db.schema.createIndex('taskyard_tasks_name').on('taskyard_tasks').columns(['name', 'id']).execute();
      await db.schema.createIndex('taskyard_tasks_category').on('taskyard_tasks').columns(['category', 'id']).execute();
      await db.schema
        .createIndex('taskyard_tasks_finished')
        .on('taskyard_tasks')
        .column('finished_at')
        .where(sql.ref('finished_at'), 'is not', null)
        .execute();
      // Idempotency keys belong to a tenant; tenant-less runs share the NO_TENANT slot.
      await db.schema
        .createIndex('taskyard_tasks_tenant_idempotency')
        .on('taskyard_tasks')
        .expression(sql`coalesce(tenant_id, ${sql.lit(NO_TENANT)}), idempotency_key`)
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
        .addColumn('seq', 'bigint', (c) => c.generatedAlwaysAsIdentity().primaryKey())
        .addColumn('task_id', bytewiseText, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('data', 'text')
        // The task's previous event, so one task's events are read by following the chain.
        .addColumn('prev_seq', 'bigint')
        .execute();

      // Counts by tenant, name and state, kept up to date with each commit.
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
  /** As in the SQLite ledger: live processes, leader leases, durable consumers' cursors. */
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
  /**
   * PostgreSQL only: a task's events are found through an index on (task_id, seq) instead of the
   * SQLite ledger's chain. Keeping the chain meant writing every task row a second time, to point
   * it at its newest event, inside the section that orders commits: most of a commit's time. An
   * index entry per event costs far less. `last_event_seq` and `prev_seq` stay (the schema still
   * matches SQLite's) but are no longer written here.
   */
  '0005_postgres_events_by_task': {
    async up(db: AnyDb) {
      await db.schema.createIndex('taskyard_events_task').on('taskyard_events').columns(['task_id', 'seq']).execute();
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
