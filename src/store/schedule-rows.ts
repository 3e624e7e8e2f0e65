/**
 * The schedules table as both stores read and write it: columns, row codec and statements. The
 * statements use `?` placeholders; the PostgreSQL store numbers them.
 */
import type { ScheduleAdvance, ScheduleChange, ScheduleRow } from './types.js';

/** Field -> column, in insert order. */
const FIELDS = {
  name: 'name',
  task: 'task',
  params: 'params',
  tenantId: 'tenant_id',
  cron: 'cron',
  every: 'every',
  timezone: 'timezone',
  overlap: 'overlap',
  catchUp: 'catch_up',
  enabled: 'enabled',
  source: 'source',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  lastTick: 'last_tick',
  lastTaskId: 'last_task_id',
  lastRunAt: 'last_run_at',
  skipped: 'skipped',
  lastSkipReason: 'last_skip_reason',
  lastSkipAt: 'last_skip_at',
} as const satisfies Record<keyof ScheduleRow, string>;

type Field = keyof typeof FIELDS;
const ORDER = Object.keys(FIELDS) as Field[];

/** A field as stored: JSON as text, booleans as 0/1 (the same in both databases). */
function toColumn(field: Field, value: unknown): unknown {
  if (field === 'params') return JSON.stringify(value ?? {});
  if (field === 'overlap' || field === 'enabled') return value ? 1 : 0;
  return value;
}

export function scheduleValues(row: ScheduleRow): unknown[] {
  return ORDER.map((field) => toColumn(field, row[field]));
}

export function rowToSchedule(r: Record<string, unknown>): ScheduleRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    name: r.name as string,
    task: r.task as string,
    params: JSON.parse(r.params as string),
    tenantId: (r.tenant_id as string | null) ?? null,
    cron: (r.cron as string | null) ?? null,
    every: (r.every as string | null) ?? null,
    timezone: (r.timezone as string | null) ?? null,
    overlap: Number(r.overlap) === 1,
    catchUp: r.catch_up as ScheduleRow['catchUp'],
    enabled: Number(r.enabled) === 1,
    source: r.source as ScheduleRow['source'],
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastTick: Number(r.last_tick),
    lastTaskId: (r.last_task_id as string | null) ?? null,
    lastRunAt: num(r.last_run_at),
    skipped: Number(r.skipped),
    lastSkipReason: (r.last_skip_reason as string | null) ?? null,
    lastSkipAt: num(r.last_skip_at),
  };
}

export const SCHEDULE_SQL = {
  list: 'SELECT * FROM taskyard_schedules ORDER BY name',
  get: 'SELECT * FROM taskyard_schedules WHERE name = ?',
  insert: `INSERT INTO taskyard_schedules (${ORDER.map((f) => FIELDS[f]).join(', ')})
    VALUES (${ORDER.map(() => '?').join(', ')}) ON CONFLICT (name) DO NOTHING`,
  delete: 'DELETE FROM taskyard_schedules WHERE name = ?',
  /** Values: scheduleAdvanceValues. */
  // Casts, so PostgreSQL knows each parameter's type; SQLite reads them the same way.
  advance: `UPDATE taskyard_schedules SET last_tick = CAST(? AS BIGINT),
      last_task_id = coalesce(CAST(? AS TEXT), last_task_id),
      last_run_at = CASE WHEN CAST(? AS TEXT) IS NULL THEN last_run_at ELSE CAST(? AS BIGINT) END,
      skipped = skipped + CAST(? AS BIGINT),
      last_skip_reason = CASE WHEN CAST(? AS BIGINT) > 0 THEN CAST(? AS TEXT) ELSE last_skip_reason END,
      last_skip_at = CASE WHEN CAST(? AS BIGINT) > 0 THEN CAST(? AS BIGINT) ELSE last_skip_at END
    WHERE name = CAST(? AS TEXT) AND last_tick = CAST(? AS BIGINT)`,
};

export function scheduleAdvanceValues(name: string, fromTick: number, a: ScheduleAdvance): unknown[] {
  return [a.tick, a.taskId, a.taskId, a.at, a.skipped, a.skipped, a.skipReason, a.skipped, a.at, name, fromTick];
}

/** `UPDATE ... SET` for the fields a change sets, and their values (the name last). */
export function scheduleUpdate(name: string, change: ScheduleChange): { text: string; values: unknown[] } {
  const fields = (Object.keys(change) as Field[]).filter((f) => change[f as keyof ScheduleChange] !== undefined);
  return {
    text: `UPDATE taskyard_schedules SET ${fields.map((f) => `${FIELDS[f]} = ?`).join(', ')} WHERE name = ?`,
    values: [...fields.map((f) => toColumn(f, change[f as keyof ScheduleChange])), name],
  };
}
