import Database from 'better-sqlite3';
import { createPrivateDatabaseFile, restrictSqliteSidecars } from '../../src/store/private-files.js';
import type { TenantScope } from '../../src/store/types.js';

/**
 * The legacy module's own table, in its own SQLite file: the `ReconciliationTask` model of seed
 * reconciliation-task-compatibility. It knows nothing of the ledger; module.ts keeps the two in
 * step through Taskyard's hooks.
 */

export const RECONCILIATION_STATUSES = ['queued', 'running', 'completed', 'failed', 'cancelled'] as const;
export type ReconciliationStatus = (typeof RECONCILIATION_STATUSES)[number];
export const FINISHED_STATUSES: readonly ReconciliationStatus[] = ['completed', 'failed', 'cancelled'];

export const RECONCILIATION_MODES = ['compare_two_engines', 'match_many_to_many'] as const;
export type ReconciliationMode = (typeof RECONCILIATION_MODES)[number];

/** The task each mode launches (demo/tasks/reconciliation.ts). */
export const TASK_OF_MODE: Record<ReconciliationMode, string> = {
  compare_two_engines: 'accounting.tasks.compare_two_engines_task',
  match_many_to_many: 'accounting.tasks.match_many_to_many_task',
};

export interface ReconciliationRow {
  id: number;
  tenant_id: string;
  mode: ReconciliationMode;
  config: string;
  pipeline: string | null;
  suggestions: string | null;
  stats: string | null;
  status: ReconciliationStatus;
  task_id: string | null;
  error_message: string | null;
  progress: number;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  updated_at: string;
}

export interface ListQuery {
  scope: TenantScope;
  tenantId?: string;
  statuses?: readonly ReconciliationStatus[];
  limit: number;
  offset: number;
  /** Oldest first (queue order) instead of newest first. */
  ascending?: boolean;
}

export type StatusCounts = Record<ReconciliationStatus, number> & { total: number };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reconciliation_tasks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  config TEXT NOT NULL DEFAULT '{}',
  pipeline TEXT,
  suggestions TEXT,
  stats TEXT,
  status TEXT NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  task_id TEXT,
  error_message TEXT,
  progress INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  started_at TEXT,
  completed_at TEXT,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reconciliation_tasks_tenant_status ON reconciliation_tasks (tenant_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS reconciliation_tasks_task_id ON reconciliation_tasks (task_id);
`;

// Optional filters are bound as NULL when absent, and lists as JSON arrays read with json_each,
// so every statement is fixed text prepared once: no SQL is built from input.
const FILTER = `
  (@scope IS NULL OR tenant_id IN (SELECT value FROM json_each(@scope)))
  AND (@tenant IS NULL OR tenant_id = @tenant)
  AND (@statuses IS NULL OR status IN (SELECT value FROM json_each(@statuses)))`;

const now = () => new Date().toISOString();

export class ReconciliationStore {
  readonly db: Database.Database;
  private readonly stmts;

  constructor(filename: string) {
    // Owner-only files, like the ledger's: the rows hold tenants' reconciliation data.
    const created = filename !== ':memory:' && createPrivateDatabaseFile(filename);
    this.db = new Database(filename);
    this.db.pragma('journal_mode = WAL');
    if (created) restrictSqliteSidecars(filename);
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmts = {
      insert: db.prepare<[string, string, string, string, string]>(
        `INSERT INTO reconciliation_tasks (tenant_id, mode, config, status, progress, created_at, updated_at)
         VALUES (?, ?, ?, 'queued', 0, ?, ?) RETURNING *`,
      ),
      get: db.prepare<[number]>('SELECT * FROM reconciliation_tasks WHERE id = ?'),
      byTaskId: db.prepare<[string]>('SELECT * FROM reconciliation_tasks WHERE task_id = ?'),
      unbound: db.prepare<[number, string, string]>(
        'SELECT * FROM reconciliation_tasks WHERE id = ? AND task_id IS NULL AND tenant_id = ? AND mode = ?',
      ),
      anyUnbound: db.prepare('SELECT 1 FROM reconciliation_tasks WHERE task_id IS NULL LIMIT 1'),
      bind: db.prepare<[string, string, number]>('UPDATE reconciliation_tasks SET task_id = ?, updated_at = ? WHERE id = ?'),
      delete: db.prepare<[number]>('DELETE FROM reconciliation_tasks WHERE id = ?'),
      listDesc: db.prepare(`SELECT * FROM reconciliation_tasks WHERE ${FILTER} ORDER BY id DESC LIMIT @limit OFFSET @offset`),
      listAsc: db.prepare(`SELECT * FROM reconciliation_tasks WHERE ${FILTER} ORDER BY id ASC LIMIT @limit OFFSET @offset`),
      count: db.prepare(`SELECT count(*) AS n FROM reconciliation_tasks WHERE ${FILTER}`),
      counts: db.prepare(`SELECT status, count(*) AS n FROM reconciliation_tasks WHERE ${FILTER} GROUP BY status`),
      queued: db.prepare<{ at: string; reset: number; id: number }>(
        `UPDATE reconciliation_tasks SET status = 'queued', updated_at = @at,
           error_message = CASE WHEN @reset THEN NULL ELSE error_message END,
           progress = CASE WHEN @reset THEN 0 ELSE progress END,
           started_at = CASE WHEN @reset THEN NULL ELSE started_at END,
           completed_at = NULL
         WHERE id = @id AND (@reset OR status IN ('queued', 'running'))`,
      ),
      running: db.prepare<{ at: string; started: string; id: number }>(
        `UPDATE reconciliation_tasks SET status = 'running', started_at = @started, completed_at = NULL, updated_at = @at
         WHERE id = @id AND status IN ('queued', 'running')`,
      ),
      progress: db.prepare<{ at: string; progress: number; id: number }>(
        `UPDATE reconciliation_tasks SET progress = @progress, updated_at = @at
         WHERE id = @id AND status IN ('queued', 'running')`,
      ),
      completed: db.prepare<{ at: string; finished: string; started: string | null; pipeline: string | null; suggestions: string | null; stats: string | null; id: number }>(
        `UPDATE reconciliation_tasks SET status = 'completed', progress = 100, error_message = NULL,
           pipeline = @pipeline, suggestions = @suggestions, stats = @stats,
           started_at = coalesce(started_at, @started), completed_at = @finished, updated_at = @at
         WHERE id = @id`,
      ),
      ended: db.prepare<{ at: string; finished: string; status: ReconciliationStatus; message: string | null; id: number }>(
        `UPDATE reconciliation_tasks SET status = @status, error_message = @message,
           completed_at = coalesce(completed_at, @finished), updated_at = @at
         WHERE id = @id`,
      ),
    };
  }

  create(input: { tenantId: string; mode: ReconciliationMode; config: unknown }): ReconciliationRow {
    const at = now();
    return this.stmts.insert.get(input.tenantId, input.mode, JSON.stringify(input.config ?? {}), at, at) as ReconciliationRow;
  }

  get(id: number): ReconciliationRow | undefined {
    return this.stmts.get.get(id) as ReconciliationRow | undefined;
  }

  byTaskId(taskId: string): ReconciliationRow | undefined {
    return this.stmts.byTaskId.get(taskId) as ReconciliationRow | undefined;
  }

  /** A row that was started but whose task id is not stored yet (the run got ahead of the route). */
  unbound(id: number, tenantId: string, mode: ReconciliationMode): ReconciliationRow | undefined {
    return this.stmts.unbound.get(id, tenantId, mode) as ReconciliationRow | undefined;
  }

  /** Whether any row still waits for its task id (cheap: the task_id index holds the NULLs). */
  hasUnbound(): boolean {
    return this.stmts.anyUnbound.get() !== undefined;
  }

  bindTask(id: number, taskId: string): void {
    this.stmts.bind.run(taskId, now(), id);
  }

  delete(id: number): void {
    this.stmts.delete.run(id);
  }

  list(query: ListQuery): { rows: ReconciliationRow[]; count: number } {
    const filter = filterParams(query);
    const stmt = query.ascending ? this.stmts.listAsc : this.stmts.listDesc;
    const rows = stmt.all({ ...filter, limit: query.limit, offset: query.offset }) as ReconciliationRow[];
    const { n } = this.stmts.count.get(filter) as { n: number };
    return { rows, count: n };
  }

  counts(query: Pick<ListQuery, 'scope' | 'tenantId'>): StatusCounts {
    const out = { queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0, total: 0 };
    for (const { status, n } of this.stmts.counts.all(filterParams(query)) as Array<{ status: ReconciliationStatus; n: number }>) {
      out[status] = n;
      out.total += n;
    }
    return out;
  }

  /** Back to waiting: a requeue or automatic retry of a live row, or (reset) a manual retry of a finished one. */
  markQueued(id: number, reset: boolean): void {
    this.stmts.queued.run({ at: now(), reset: reset ? 1 : 0, id });
  }

  markRunning(id: number, startedAt: string): void {
    this.stmts.running.run({ at: now(), started: startedAt, id });
  }

  setProgress(id: number, progress: number): void {
    this.stmts.progress.run({ at: now(), progress, id });
  }

  markCompleted(
    id: number,
    output: { pipeline: unknown; suggestions: unknown; stats: unknown },
    times: { startedAt: string | null; finishedAt: string },
  ): void {
    this.stmts.completed.run({
      at: now(),
      finished: times.finishedAt,
      started: times.startedAt,
      pipeline: jsonOrNull(output.pipeline),
      suggestions: jsonOrNull(output.suggestions),
      stats: jsonOrNull(output.stats),
      id,
    });
  }

  markEnded(id: number, status: 'failed' | 'cancelled', message: string | null, finishedAt: string): void {
    this.stmts.ended.run({ at: now(), finished: finishedAt, status, message, id });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function filterParams(query: Pick<ListQuery, 'scope' | 'tenantId' | 'statuses'>) {
  return {
    scope: query.scope === '*' ? null : JSON.stringify(query.scope),
    tenant: query.tenantId ?? null,
    statuses: query.statuses && query.statuses.length > 0 ? JSON.stringify(query.statuses) : null,
  };
}

const jsonOrNull = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
