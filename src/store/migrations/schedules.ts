import type { Kysely, Migration } from 'kysely';

/**
 * 0006: schedules, the same on SQLite and PostgreSQL. One row per schedule: its definition, and
 * `last_tick`, the tick it has got to, which schedulers move forward by compare-and-set so a tick
 * is handled once however many of them run. Booleans are 0/1 integers in both databases.
 */
export const schedulesMigration: Migration = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('taskyard_schedules')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('task', 'text', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('tenant_id', 'text')
      .addColumn('cron', 'text')
      .addColumn('every', 'text')
      .addColumn('timezone', 'text')
      .addColumn('overlap', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('catch_up', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('last_tick', 'bigint', (c) => c.notNull())
      .addColumn('last_task_id', 'text')
      .addColumn('last_run_at', 'bigint')
      .addColumn('skipped', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('last_skip_reason', 'text')
      .addColumn('last_skip_at', 'bigint')
      .execute();
  },
};
