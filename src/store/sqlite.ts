import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type MigrationProvider } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import { TASK_STATES, canTransition, type TaskState } from '../core/states.js';
import { NO_TENANT, migrations } from './migrations.js';
import { emptyStats, percentile, type CountRow, foldCounts } from './stats.js';
import type {
  ClaimOptions,
  EventQuery,
  LedgerStats,
  ListFilter,
  TaskChange,
  TaskPage,
  TaskStore,
  TenantScope,
} from './types.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' for tests that need no durability. */
  filename: string;
  onCommit?: (events: TaskEvent[]) => void;
}

interface Row {
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
  run_at: number;
  cancel_requested: 'soft' | 'hard' | null;
  revoke_reason: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

interface EventRow {
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
const COLUMNS: Record<string, { column: string; json?: boolean }> = {
  progress: { column: 'progress' },
  progressMessage: { column: 'progress_message' },
  result: { column: 'result', json: true },
  error: { column: 'error' },
  traceback: { column: 'traceback' },
  meta: { column: 'meta', json: true },
  attempt: { column: 'attempt' },
  worker: { column: 'worker' },
  engine: { column: 'engine' },
  runAt: { column: 'run_at' },
  cancelRequested: { column: 'cancel_requested' },
  revokeReason: { column: 'revoke_reason' },
  startedAt: { column: 'started_at' },
  finishedAt: { column: 'finished_at' },
};

const json = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));
const parse = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

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
    runAt: Number(row.run_at),
    cancelRequested: row.cancel_requested,
    revokeReason: row.revoke_reason,
    createdAt: Number(row.created_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    updatedAt: Number(row.updated_at),
  };
}

function rowToEvent(row: EventRow): TaskEvent {
  return {
    seq: row.seq,
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

type Op = () => unknown;
interface Pending {
  op: Op;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The embedded ledger: one SQLite file in WAL mode. Writes are group-committed: every write
 * made in the same event-loop turn shares one transaction, which is what makes the embedded
 * engine fast. Events are handed to `onCommit` after the commit, in sequence order.
 */
export class SqliteStore implements TaskStore {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  private readonly kysely: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  private pending: Pending[] = [];
  private flushScheduled = false;
  private committedEvents: TaskEvent[] = [];
  private countDeltas = new Map<string, number>();
  private closed = false;
  onCommit: (events: TaskEvent[]) => void;
  private stmts!: ReturnType<SqliteStore['prepare']>;

  constructor(options: SqliteStoreOptions) {
    if (options.filename !== ':memory:') mkdirSync(dirname(options.filename), { recursive: true });
    this.db = new Database(options.filename);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a process crash; only an OS crash can lose the last few.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -65536');
    this.db.pragma('temp_store = MEMORY');
    // Checkpoints fsync; doing them less often keeps commits cheap. The WAL is bounded by the limit.
    this.db.pragma('wal_autocheckpoint = 10000');
    this.db.pragma('journal_size_limit = 268435456');
    this.kysely = new Kysely({ dialect: new SqliteDialect({ database: this.db }) });
    this.onCommit = options.onCommit ?? (() => {});
  }

  async migrate(): Promise<void> {
    const provider: MigrationProvider = { getMigrations: async () => migrations };
    const migrator = new Migrator({ db: this.kysely, provider, migrationTableName: 'taskyard_migrations', migrationLockTableName: 'taskyard_migrations_lock' });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
    this.stmts = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      insert: db.prepare(`INSERT INTO taskyard_tasks (id, name, category, display_name, state, progress, progress_message,
        tenant_id, params, result, error, traceback, meta, attempt, max_attempts, priority, queue, route, engine, worker,
        idempotency_key, run_at, cancel_requested, revoke_reason, created_at, started_at, finished_at, updated_at)
        VALUES (@id, @name, @category, @display_name, @state, @progress, @progress_message, @tenant_id, @params, @result,
        @error, @traceback, @meta, @attempt, @max_attempts, @priority, @queue, @route, @engine, @worker, @idempotency_key,
        @run_at, @cancel_requested, @revoke_reason, @created_at, @started_at, @finished_at, @updated_at)
        ON CONFLICT DO NOTHING`),
      event: db.prepare(`INSERT INTO taskyard_events (task_id, type, state, name, category, tenant_id, at, data)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      head: db.prepare('SELECT state, name, category, tenant_id FROM taskyard_tasks WHERE id = ?'),
      get: db.prepare('SELECT * FROM taskyard_tasks WHERE id = ?'),
      byKey: db.prepare('SELECT * FROM taskyard_tasks WHERE idempotency_key = ?'),
      count: db.prepare(`INSERT INTO taskyard_counts (tenant_id, name, category, state, count) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (tenant_id, name, state) DO UPDATE SET count = count + excluded.count`),
      started: db.prepare(`SELECT * FROM taskyard_tasks WHERE state = 'STARTED'`),
      nextRunAt: db.prepare(`SELECT min(run_at) AS t FROM taskyard_tasks WHERE state IN ('PENDING', 'RETRY')`),
    };
  }

  private readonly statementCache = new Map<string, Database.Statement>();

  /** Statements built from a small set of shapes (which fields a change patches) are parsed once. */
  private cached(text: string): Database.Statement {
    let statement = this.statementCache.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statementCache.set(text, statement);
    }
    return statement;
  }

  // ---- group commit -------------------------------------------------------------------

  private write<T>(op: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('Store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const results: Array<{ ok: boolean; value: unknown }> = [];
    try {
      this.db.transaction(() => {
        for (const item of batch) {
          try {
            results.push({ ok: true, value: item.op() });
          } catch (error) {
            results.push({ ok: false, value: error });
          }
        }
        this.flushCounts();
      })();
    } catch (error) {
      // The transaction itself failed (disk full, I/O error): nothing was written.
      this.committedEvents = [];
      this.countDeltas.clear();
      for (const item of batch) item.reject(error);
      return;
    }
    const events = this.committedEvents;
    this.committedEvents = [];
    batch.forEach((item, i) => (results[i]!.ok ? item.resolve(results[i]!.value) : item.reject(results[i]!.value)));
    if (events.length > 0) this.onCommit(events);
  }

  private countDelta(tenantId: string | null, name: string, category: string, state: TaskState, delta: number): void {
    const key = `${tenantId ?? NO_TENANT}\u0000${name}\u0000${category}\u0000${state}`;
    this.countDeltas.set(key, (this.countDeltas.get(key) ?? 0) + delta);
  }

  private flushCounts(): void {
    for (const [key, delta] of this.countDeltas) {
      if (delta === 0) continue;
      const [tenant, name, category, state] = key.split('\u0000');
      this.stmts.count.run(tenant, name, category, state, delta);
    }
    this.countDeltas.clear();
  }

  private recordEvent(
    taskId: string,
    type: TaskEventType,
    state: TaskState,
    name: string,
    category: string,
    tenantId: string | null,
    at: number,
    data: Record<string, unknown> | null | undefined,
  ): TaskEvent {
    const dataText = json(data);
    const info = this.stmts.event.run(taskId, type, state, name, category, tenantId, at, dataText);
    const event: TaskEvent = { seq: Number(info.lastInsertRowid), taskId, type, state, name, category, tenantId, at, data: data ?? null };
    this.committedEvents.push(event);
    return event;
  }

  // ---- writes ---------------------------------------------------------------------------

  insert(records: TaskRecord[]): Promise<TaskEvent[]> {
    return this.write(() => {
      const events: TaskEvent[] = [];
      for (const r of records) {
        const info = this.stmts.insert.run({
          id: r.id,
          name: r.name,
          category: r.category,
          display_name: r.displayName,
          state: r.state,
          progress: r.progress,
          progress_message: r.progressMessage,
          tenant_id: r.tenantId,
          params: JSON.stringify(r.params ?? {}),
          result: json(r.result),
          error: r.error,
          traceback: r.traceback,
          meta: json(r.meta),
          attempt: r.attempt,
          max_attempts: r.maxAttempts,
          priority: r.priority,
          queue: r.queue,
          route: r.route,
          engine: r.engine,
          worker: r.worker,
          idempotency_key: r.idempotencyKey,
          run_at: r.runAt,
          cancel_requested: r.cancelRequested,
          revoke_reason: r.revokeReason,
          created_at: r.createdAt,
          started_at: r.startedAt,
          finished_at: r.finishedAt,
          updated_at: r.updatedAt,
        });
        if (info.changes === 0) continue; // idempotency key already used: the caller looks it up
        this.countDelta(r.tenantId, r.name, r.category, r.state, 1);
        const data = r.runAt > r.createdAt ? { eta: new Date(r.runAt).toISOString() } : null;
        events.push(this.recordEvent(r.id, 'enqueued', r.state, r.name, r.category, r.tenantId, r.createdAt, data));
      }
      return events;
    });
  }

  apply(changes: TaskChange[]): Promise<Array<TaskEvent | null>> {
    return this.write(() => changes.map((change) => this.applyOne(change)));
  }

  private applyOne(change: TaskChange): TaskEvent | null {
    const head = this.stmts.head.get(change.id) as Pick<Row, 'state' | 'name' | 'category' | 'tenant_id'> | undefined;
    if (!head) return null;
    const progressOnly = change.to === head.state && change.event !== 'enqueued';
    if (!progressOnly && !SOURCES.get(change.to)!.includes(head.state)) return null;
    if (change.from && !change.from.includes(head.state)) return null;
    const now = Date.now();
    const sets: string[] = ['state = ?', 'updated_at = ?'];
    const values: unknown[] = [change.to, now];
    for (const [field, value] of Object.entries(change.patch)) {
      const column = COLUMNS[field];
      if (!column) throw new Error(`Field ${field} cannot be changed`);
      sets.push(`${column.column} = ?`);
      values.push(column.json ? json(value) : value);
    }
    values.push(change.id);
    this.cached(`UPDATE taskyard_tasks SET ${sets.join(', ')} WHERE id = ?`).run(...values);
    if (change.to !== head.state) {
      this.countDelta(head.tenant_id, head.name, head.category, head.state, -1);
      this.countDelta(head.tenant_id, head.name, head.category, change.to, 1);
    }
    return this.recordEvent(change.id, change.event, change.to, head.name, head.category, head.tenant_id, now, change.data);
  }

  claim(options: ClaimOptions): Promise<TaskRecord[]> {
    return this.write(() => {
      const where: string[] = [`state IN ('PENDING', 'RETRY')`, 'run_at <= ?'];
      const values: unknown[] = [options.now];
      const filter = (column: string, op: string, list: string[] | undefined) => {
        if (!list?.length) return;
        where.push(`${column} ${op} (${list.map(() => '?').join(', ')})`);
        values.push(...list);
      };
      filter('queue', 'IN', options.queues);
      filter('name', 'IN', options.names);
      filter('queue', 'NOT IN', options.excludeQueues);
      filter('name', 'NOT IN', options.excludeNames);
      const candidates = this.cached(
        `SELECT id, state FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting WHERE ${where.join(' AND ')}
         ORDER BY priority DESC, run_at, id LIMIT ?`,
      ).all(...values, options.limit) as Array<Pick<Row, 'id' | 'state'>>;
      const start = this.cached(
        `UPDATE taskyard_tasks SET state = 'STARTED', attempt = attempt + 1, worker = ?, started_at = ?, updated_at = ?,
           progress = 0, progress_message = NULL WHERE id = ? RETURNING *`,
      );
      return candidates.map(({ id, state }) => {
        const row = start.get(options.worker, options.now, options.now, id) as Row;
        this.countDelta(row.tenant_id, row.name, row.category, state, -1);
        this.countDelta(row.tenant_id, row.name, row.category, 'STARTED', 1);
        this.recordEvent(row.id, 'started', 'STARTED', row.name, row.category, row.tenant_id, options.now, {
          attempt: row.attempt,
          worker: options.worker,
        });
        return rowToRecord(row);
      });
    });
  }

  prune(before: number, limit: number): Promise<number> {
    return this.write(() => {
      const rows = this.db
        .prepare(
          `DELETE FROM taskyard_tasks WHERE id IN (SELECT id FROM taskyard_tasks WHERE finished_at IS NOT NULL AND finished_at < ?
             AND state IN ('SUCCESS', 'FAILURE', 'REVOKED') LIMIT ?) RETURNING id, name, category, state, tenant_id`,
        )
        .all(before, limit) as Array<Pick<Row, 'id' | 'name' | 'category' | 'state' | 'tenant_id'>>;
      const del = this.db.prepare('DELETE FROM taskyard_events WHERE task_id = ?');
      for (const row of rows) {
        del.run(row.id);
        this.countDelta(row.tenant_id, row.name, row.category, row.state, -1);
      }
      return rows.length;
    });
  }

  // ---- reads ----------------------------------------------------------------------------

  async get(id: string, scope: TenantScope): Promise<TaskRecord | null> {
    const row = this.stmts.get.get(id) as Row | undefined;
    if (!row || !inScope(row.tenant_id, scope)) return null;
    return rowToRecord(row);
  }

  async getMany(ids: string[]): Promise<TaskRecord[]> {
    return ids.map((id) => this.stmts.get.get(id) as Row | undefined).filter((r): r is Row => !!r).map(rowToRecord);
  }

  async findByIdempotencyKey(key: string): Promise<TaskRecord | null> {
    const row = this.stmts.byKey.get(key) as Row | undefined;
    return row ? rowToRecord(row) : null;
  }

  async list(filter: ListFilter, scope: TenantScope): Promise<TaskPage> {
    let query = this.kysely.selectFrom('taskyard_tasks').selectAll();
    if (scope !== '*') {
      if (scope.length === 0) return { tasks: [], nextCursor: null };
      query = query.where('tenant_id', 'in', [...scope]);
    }
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.names?.length) query = query.where('name', 'in', filter.names);
    if (filter.categories?.length) query = query.where('category', 'in', filter.categories);
    if (filter.states?.length) query = query.where('state', 'in', filter.states);
    if (filter.since !== undefined) query = query.where('created_at', '>=', filter.since);
    if (filter.until !== undefined) query = query.where('created_at', '<', filter.until);
    if (filter.cursor !== undefined) query = query.where('id', '<', filter.cursor);
    const rows = (await query.orderBy('id', 'desc').limit(filter.limit + 1).execute()) as Row[];
    const more = rows.length > filter.limit;
    const page = more ? rows.slice(0, filter.limit) : rows;
    return { tasks: page.map(rowToRecord), nextCursor: more ? page[page.length - 1]!.id : null };
  }

  async stats(scope: TenantScope, now: number): Promise<LedgerStats> {
    if (scope !== '*' && scope.length === 0) return emptyStats();
    const tenantSql = scope === '*' ? sql`1 = 1` : sql`tenant_id IN (${sql.join([...scope])})`;
    const counts = await sql<CountRow>`SELECT name, category, state, sum(count) AS count FROM taskyard_counts
      WHERE ${tenantSql} GROUP BY name, category, state`.execute(this.kysely);
    const stats = foldCounts(counts.rows);

    const recent = await sql<{ d: number }>`SELECT finished_at - started_at AS d FROM taskyard_tasks
      INDEXED BY taskyard_tasks_finished
      WHERE finished_at IS NOT NULL AND finished_at >= ${now - 3_600_000} AND started_at IS NOT NULL AND ${tenantSql}
      ORDER BY finished_at DESC LIMIT 5000`.execute(this.kysely);
    const durations = recent.rows.map((r) => Number(r.d)).sort((a, b) => a - b);
    stats.durations = { p50: percentile(durations, 0.5), p95: percentile(durations, 0.95), samples: durations.length };

    const finished = await sql<{ minute: number; hour: number }>`SELECT
        sum(CASE WHEN finished_at >= ${now - 60_000} THEN 1 ELSE 0 END) AS minute, count(*) AS hour
      FROM taskyard_tasks INDEXED BY taskyard_tasks_finished
      WHERE finished_at IS NOT NULL AND finished_at >= ${now - 3_600_000} AND ${tenantSql}`.execute(this.kysely);
    const minute = Number(finished.rows[0]?.minute ?? 0);
    stats.throughput = { lastMinute: minute, lastHour: Number(finished.rows[0]?.hour ?? 0), perSecond: Math.round((minute / 60) * 100) / 100 };

    const waiting = await sql<{ queue: string; state: TaskState; due: number; n: number }>`SELECT queue, state,
        run_at <= ${now} AS due, count(*) AS n FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting
      WHERE state IN ('PENDING', 'RETRY') AND ${tenantSql} GROUP BY queue, state, due`.execute(this.kysely);
    for (const row of waiting.rows) {
      const n = Number(row.n);
      if (row.state === 'RETRY') stats.queueDepth.retry += n;
      else if (row.due) stats.queueDepth.pending += n;
      else stats.queueDepth.delayed += n;
      stats.queueDepth.byQueue[row.queue] = (stats.queueDepth.byQueue[row.queue] ?? 0) + n;
    }
    return stats;
  }

  async findStarted(worker?: string): Promise<TaskRecord[]> {
    const rows = this.stmts.started.all() as Row[];
    return rows.filter((r) => worker === undefined || r.worker === worker).map(rowToRecord);
  }

  async nextRunAt(): Promise<number | null> {
    const row = this.stmts.nextRunAt.get() as { t: number | null };
    return row.t === null ? null : Number(row.t);
  }

  async events(query: EventQuery, scope: TenantScope): Promise<TaskEvent[]> {
    let q = this.kysely.selectFrom('taskyard_events').selectAll().where('seq', '>', query.afterSeq);
    if (scope !== '*') {
      if (scope.length === 0) return [];
      q = q.where('tenant_id', 'in', [...scope]);
    }
    if (query.taskId) q = q.where('task_id', '=', query.taskId);
    if (query.tenantId) q = q.where('tenant_id', '=', query.tenantId);
    if (query.name) q = q.where('name', '=', query.name);
    if (query.category) q = q.where('category', '=', query.category);
    const rows = (await q.orderBy('seq').limit(query.limit).execute()) as EventRow[];
    return rows.map(rowToEvent);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.length) this.flush();
    this.closed = true;
    this.db.close();
  }
}

export function inScope(tenantId: string | null, scope: TenantScope): boolean {
  return scope === '*' || (tenantId !== null && scope.includes(tenantId));
}
