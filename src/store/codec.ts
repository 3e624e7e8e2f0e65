/**
 * How a task row maps to a record and back, and which changes may apply to it: shared by every
 * store, so the SQLite and PostgreSQL ledgers decide alike.
 */
import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import { TASK_STATES, canTransition, type TaskState } from '../core/states.js';
import type { Pause, TaskChange, TenantScope } from './types.js';

export interface Row {
  id: string;
  name: string;
  category: string;
  display_name: string;
  state: TaskState;
  progress: number;
  progress_message: string | null;
  tenant_id: string | null;
  params: string;
  result: string | null;
  error: string | null;
  traceback: string | null;
  meta: string | null;
  attempt: number;
  max_attempts: number;
  priority: number;
  queue: string;
  route: 'light' | 'heavy';
  engine: string;
  worker: string | null;
  idempotency_key: string | null;
  /** Absent from rows read column by column on hot paths (claims). */
  unique_key?: string | null;
  cache_key?: string | null;
  run_at: number;
  cancel_requested: 'soft' | 'hard' | null;
  revoke_reason: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface EventRow {
  seq: number;
  task_id: string;
  type: TaskEventType;
  state: TaskState;
  name: string;
  category: string;
  tenant_id: string | null;
  at: number;
  data: string | null;
}

/** Record field -> column, for the fields a change may patch. */
export const COLUMNS: Record<string, { column: string; json?: boolean; notNull?: boolean }> = {
  progress: { column: 'progress', notNull: true },
  progressMessage: { column: 'progress_message' },
  result: { column: 'result', json: true },
  error: { column: 'error' },
  traceback: { column: 'traceback' },
  meta: { column: 'meta', json: true },
  attempt: { column: 'attempt', notNull: true },
  maxAttempts: { column: 'max_attempts', notNull: true },
  worker: { column: 'worker' },
  engine: { column: 'engine', notNull: true },
  runAt: { column: 'run_at', notNull: true },
  cancelRequested: { column: 'cancel_requested' },
  revokeReason: { column: 'revoke_reason' },
  startedAt: { column: 'started_at' },
  finishedAt: { column: 'finished_at' },
};

export const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
export const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

export function rowToRecord(row: Row): TaskRecord {
  return {
    id: row.id,
    name: row.name,
    category: row.category,
    displayName: row.display_name,
    state: row.state,
    progress: row.progress,
    progressMessage: row.progress_message,
    tenantId: row.tenant_id,
    params: parse(row.params),
    result: parse(row.result),
    error: row.error,
    traceback: row.traceback,
    meta: parse(row.meta) as Record<string, unknown> | null,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    queue: row.queue,
    route: row.route,
    engine: row.engine,
    worker: row.worker,
    idempotencyKey: row.idempotency_key,
    ...(row.unique_key ? { uniqueKey: row.unique_key } : {}),
    ...(row.cache_key ? { cacheKey: row.cache_key } : {}),
    runAt: Number(row.run_at),
    cancelRequested: row.cancel_requested,
    revokeReason: row.revoke_reason,
    createdAt: Number(row.created_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    updatedAt: Number(row.updated_at),
  };
}

export function rowToEvent(row: EventRow): TaskEvent {
  return {
    seq: Number(row.seq), // PostgreSQL returns bigint as text
    taskId: row.task_id,
    type: row.type,
    state: row.state,
    name: row.name,
    category: row.category,
    tenantId: row.tenant_id,
    at: Number(row.at),
    data: parse(row.data) as Record<string, unknown> | null,
  };
}

/** States that may move to `to`, computed once from core/states. */
const SOURCES = new Map<TaskState, TaskState[]>(
  TASK_STATES.map((to) => [to, TASK_STATES.filter((from) => canTransition(from, to))]),
);

/** A change with its values checked and serialized, so applying it cannot fail halfway. */
export interface PreparedChange {
  change: TaskChange;
  fields: string[];
  values: unknown[];
  dataText: string | null;
}

export function prepareChange(change: TaskChange): PreparedChange {
  const fields = Object.keys(change.patch);
  const values = fields.map((field) => {
    const column = COLUMNS[field];
    if (!column) throw new Error(`Field ${field} cannot be changed`);
    const value = (change.patch as Record<string, unknown>)[field];
    if (column.json) return json(value);
    if (value === undefined || value === null) {
      if (column.notNull) throw new Error(`Field ${field} cannot be null`);
      return null;
    }
    if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`Field ${field} must be a string or a number`);
    return value;
  });
  return { change, fields, values, dataText: json(change.data) };
}

/** Whether `change` may apply to a task in `state`: a legal transition (or a progress update) from an allowed state. */
export function appliesTo(change: TaskChange, state: TaskState): boolean {
  const progressOnly = change.to === state && change.event !== 'enqueued';
  if (!progressOnly && !SOURCES.get(change.to)!.includes(state)) return false;
  return !change.from || change.from.includes(state);
}


/** What a store knows of a task's row when it decides whether a change applies. */
export interface RowHead {
  state: TaskState;
  cancelRequested: string | null;
  worker: string | null;
}

/**
 * The one rule for every store: a change applies when it is a legal transition (or a field update)
 * from an allowed state, only while the given worker owns the run, and, once a cancel is
 * requested, a running run may only end REVOKED (its owner reads the request and says so).
 */
export function mayApply(change: TaskChange, head: RowHead): boolean {
  if (!appliesTo(change, head.state)) return false;
  if (change.worker !== undefined && head.worker !== change.worker) return false;
  if (head.cancelRequested !== null && head.state === 'STARTED' && change.to !== 'STARTED' && change.to !== 'REVOKED') return false;
  return true;
}

/** A pause as the ledger keeps it. */
export function rowToPause(row: { kind: string; name: string; paused_at: number | string; paused_by: string | null }): Pause {
  return { kind: row.kind as Pause['kind'], name: row.name, pausedAt: Number(row.paused_at), pausedBy: row.paused_by };
}

export function inScope(tenantId: string | null, scope: TenantScope): boolean {
  return scope === '*' || (tenantId !== null && scope.includes(tenantId));
}
