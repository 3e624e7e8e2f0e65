import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type MigrationProvider } from 'kysely';
import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskState } from '../core/states.js';
import { FINISHED_BUCKET_MS, LIVE_STATES, NO_TENANT } from './migrations/common.js';
import { sqliteMigrations } from './migrations/sqlite.js';
import { appliesTo, COLUMNS, inScope, json, mayApply, prepareChange, rowToEvent, rowToPause, rowToRecord, type EventRow, type PreparedChange, type Row } from './codec.js';
import { createPrivateDatabaseFile, restrictSqliteSidecars } from './private-files.js';
import { addTimingsAndQueues, emptyStats, type CountRow, foldCounts } from './stats.js';
import { listQuery, pageOf } from './list-query.js';
import { pruneWhere } from './prune.js';
import { LimitRoom, limited, roundRobin, share, tenantKey, type WaitingHead } from './fair.js';
import { rowToSchedule, SCHEDULE_SQL, scheduleAdvanceValues, scheduleUpdate, scheduleValues } from './schedule-rows.js';
import type {
  ClaimOptions,
  EventQuery,
  LedgerStats,
  ListFilter,
  PruneRule,
  RunLimits,
  ScheduleAdvance,
  ScheduleChange,
  ScheduleRow,
  Pause,
  TaskChange,
  TaskPage,
  TaskStore,
  TenantScope,
  WorkerRow,
  EventTypesPage,
  EventTypesQuery,
} from './types.js';

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' for tests that need no durability. */
  filename: string;
  onCommit?: (events: TaskEvent[]) => void;
  /**
   * How long a write may wait for another process's lock before it fails as unavailable (503).
   * The wait is asynchronous, so a locked file never stalls the event loop. Default 2 s.
   */
  lockWaitMs?: number;
}

/** The WAL file is cut back to this after a checkpoint. */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** This long without writing and the WAL is checkpointed and, when nothing holds it, truncated. */
const IDLE_CHECKPOINT_MS = 1000;

/** The longest the event loop may block in SQLite's own busy handler, per try. */
const BUSY_SLICE_MS = 20;

/** Every column, in Row order. Hot paths bind and read rows as arrays, which is much cheaper than objects. */
const ROW_COLUMNS = [
  'id', 'name', 'category', 'display_name', 'state', 'progress', 'progress_message', 'tenant_id', 'params', 'result',
  'error', 'traceback', 'meta', 'attempt', 'max_attempts', 'priority', 'queue', 'route', 'engine', 'worker',
  'idempotency_key', 'run_at', 'cancel_requested', 'revoke_reason', 'created_at', 'started_at', 'finished_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof Row>;

function tupleToRow(t: unknown[]): Row {
  return {
    id: t[0], name: t[1], category: t[2], display_name: t[3], state: t[4], progress: t[5], progress_message: t[6],
    tenant_id: t[7], params: t[8], result: t[9], error: t[10], traceback: t[11], meta: t[12], attempt: t[13],
    max_attempts: t[14], priority: t[15], queue: t[16], route: t[17], engine: t[18], worker: t[19],
    idempotency_key: t[20], run_at: t[21], cancel_requested: t[22], revoke_reason: t[23], created_at: t[24],
    started_at: t[25], finished_at: t[26], updated_at: t[27],
  } as Row;
}

/** Columns a new run from `launch` may have set; the others are empty, so its insert binds only these. */
const FRESH_COLUMNS = [
  'id', 'name', 'category', 'display_name', 'tenant_id', 'params', 'meta', 'max_attempts', 'priority', 'queue', 'route',
  'engine', 'idempotency_key', 'run_at', 'created_at', 'updated_at',
] as const satisfies ReadonlyArray<keyof Row>;

const isFresh = (r: TaskRecord): boolean =>
  r.state === 'PENDING' && r.progress === 0 && r.progressMessage === null && r.result === null && r.error === null &&
  r.traceback === null && r.attempt === 0 && r.worker === null && r.cancelRequested === null && r.revokeReason === null &&
  r.startedAt === null && r.finishedAt === null;

/** Columns every insert binds after the record's own: the keys of `unique` and `cache` definitions. */
const KEY_COLUMNS = ['unique_key', 'cache_key'] as const;
const keysOf = (r: TaskRecord): unknown[] => [r.uniqueKey ?? null, r.cacheKey ?? null];

function freshToTuple(r: TaskRecord): unknown[] {
  return [
    r.id, r.name, r.category, r.displayName, r.tenantId, JSON.stringify(r.params ?? {}), json(r.meta), r.maxAttempts,
    r.priority, r.queue, r.route, r.engine, r.idempotencyKey, r.runAt, r.createdAt, r.updatedAt,
  ];
}

function recordToTuple(r: TaskRecord): unknown[] {
  return [
    r.id, r.name, r.category, r.displayName, r.state, r.progress, r.progressMessage, r.tenantId,
    JSON.stringify(r.params ?? {}), json(r.result), r.error, r.traceback, json(r.meta), r.attempt, r.maxAttempts,
    r.priority, r.queue, r.route, r.engine, r.worker, r.idempotencyKey, r.runAt, r.cancelRequested, r.revokeReason,
    r.createdAt, r.startedAt, r.finishedAt, r.updatedAt,
  ];
}

/** A run's finish time once `change` applies to it. */
const finishedAfter = (change: TaskChange, before: number | null): number | null =>
  'finishedAt' in change.patch ? (change.patch.finishedAt ?? null) : before;

/**
 * One task's events, newest first, by following the chain back from seq `?` while the
 * previous seq is above `?`.
 */
const CHAIN = `WITH RECURSIVE chain(seq) AS (SELECT ? UNION ALL
  SELECT e.prev_seq FROM taskyard_events e JOIN chain ON e.seq = chain.seq WHERE e.prev_seq > ? AND e.prev_seq < e.seq) `;

type Op = () => unknown;
interface Pending {
  op: Op;
  /** Run under a savepoint, so a failure halfway leaves nothing behind. */
  atomic: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** What a transition needs to know about a task: where its row is, its state, and its fixed fields. */
type Head = [
  rowid: number,
  state: TaskState,
  name: string,
  category: string,
  tenantId: string | null,
  lastSeq: number | null,
  cancelRequested: string | null,
  worker: string | null,
  finishedAt: number | null,
];

/** A run this store moved to STARTED: enough to record its outcome without reading its row first. */
interface ClaimedRun {
  rowid: number;
  name: string;
  category: string;
  tenantId: string | null;
  /** The last event this store wrote for it. */
  lastSeq: number;
  finishedAt: number | null;
}

/** The tenant a waiting run takes turns as, written as the fair index has it. */
const TENANT = `coalesce(tenant_id, '${NO_TENANT}')`;

/** The tenant key of a row read as ROW_COLUMNS. */
const tupleTenant = (t: unknown[]): string => tenantKey(t[7] as string | null);

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** More claimed runs than this and the cache is dropped (it is only a shortcut). */
const MAX_CLAIMED = 100_000;

/** Columns of an event row, in insert order. */
const EVENT_COLUMNS = ['seq', 'prev_seq', 'task_id', 'type', 'state', 'name', 'category', 'tenant_id', 'at', 'data'];
const EVENT_WIDTH = EVENT_COLUMNS.length;
/** Events are inserted at commit by multi-row statements of these sizes (any count is a sum of them). */
const EVENT_CHUNKS = [256, 64, 16, 4, 1];

/**
 * The embedded ledger: one SQLite file in WAL mode. Writes are group-committed: every write
 * made in the same event-loop turn shares one transaction, which is what makes the embedded
 * engine fast. Events are handed to `onCommit` after the commit, in sequence order.
 *
 * A task's events form a chain (each row holds the seq of the task's previous event, the task
 * row holds the last one), so reading one task's events needs no index on the events table,
 * which every event insert would otherwise pay for.
 */
export class SqliteStore implements TaskStore {
  readonly kind = 'sqlite' as const;
  readonly db: Database.Database;
  private readonly kysely: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  private pending: Pending[] = [];
  private flushScheduled = false;
  private readonly commit: Database.Transaction<(batch: Pending[]) => Array<{ ok: boolean; value: unknown }>>;
  /** Events of the open transaction, in order, and their row values; rows are written at commit. */
  private txEvents: TaskEvent[] = [];
  private txEventValues: unknown[] = [];
  /** Next event seq in the open transaction; 0 until read. Seqs are known when an event is made. */
  private nextSeq = 0;
  private countDeltas = new Map<string, number>();
  /** Runs this store claimed and has not seen leave STARTED, by id. */
  private claimed = new Map<string, ClaimedRun>();
  /**
   * The tenant fair claims served last: the next claim starts after it. Kept per process; each
   * process sharing the ledger takes turns on its own.
   */
  private lastServed: string | null = null;
  /** Count deltas of the op being run, kept apart so a failed op leaves no trace. */
  private opDeltas: Array<[string, number]> = [];
  /** Runs finished per (minute, tenant) of the open transaction, and of the op being run. */
  private finishedDeltas = new Map<string, number>();
  private opFinished: Array<[string, number]> = [];
  private closed = false;
  private readonly lockWaitMs: number;
  /** When the current run of lock failures began. */
  private lockedSince: number | null = null;
  onCommit: (events: TaskEvent[]) => void;
  private readonly inMemory: boolean;
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** Rows this connection had changed at the last commit, when that number last moved, and the last idle checkpoint. */
  private changesSeen = 0;
  private lastWriteAt = 0;
  private checkpointedAt = 0;
  private stmts!: ReturnType<SqliteStore['prepare']>;

  constructor(options: SqliteStoreOptions) {
    this.inMemory = options.filename === ':memory:';
    const created = !this.inMemory && createPrivateDatabaseFile(options.filename);
    this.db = new Database(options.filename);
    // 16 KiB pages (set before WAL, so only a new file takes it): each commit writes every page it
    // touched as one WAL frame, and the group commits here touch a few small regions of each
    // b-tree, so bigger pages mean far fewer frames; the b-trees are shallower too.
    this.db.pragma('page_size = 16384');
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a process crash; only an OS crash can lose the last few.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -65536');
    this.db.pragma('temp_store = MEMORY');
    // The WAL stays bounded: a checkpoint every 2000 frames (32 MiB at 16 KiB pages) while
    // writing, the file cut back to 64 MiB after one, and to nothing once the store is idle
    // (see checkpointWhenIdle).
    this.db.pragma('wal_autocheckpoint = 2000');
    this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    if (created) restrictSqliteSidecars(options.filename);
    this.kysely = new Kysely({ dialect: new SqliteDialect({ database: this.db }) });
    this.onCommit = options.onCommit ?? (() => {});
    this.lockWaitMs = options.lockWaitMs ?? 2000;
    const commit = this.db.transaction((batch: Pending[]) => {
      const results = batch.map((item) => this.runOp(item));
      this.flushEvents();
      this.flushCounts();
      this.flushFinished();
      return results;
    });
    // IMMEDIATE: ops read before they write; taking the write lock first means another process
    // cannot commit in between, which would make the first write fail (SQLITE_BUSY_SNAPSHOT).
    this.commit = commit.immediate as typeof commit;
  }

  async migrate(): Promise<void> {
    const provider: MigrationProvider = { getMigrations: async () => sqliteMigrations };
    const migrator = new Migrator({ db: this.kysely, provider, migrationTableName: 'taskyard_migrations', migrationLockTableName: 'taskyard_migrations_lock' });
    // Several processes may start on a fresh file at once, and Kysely takes no lock on SQLite: the
    // whole migration runs under the write lock, so the others wait (busy_timeout) and then find
    // it done. SQLite's DDL is transactional, so a failed migration leaves nothing half-made.
    this.db.exec('BEGIN IMMEDIATE');
    const { error } = await migrator.migrateToLatest();
    this.db.exec(error ? 'ROLLBACK' : 'COMMIT');
    if (error) throw error;
    this.stmts = this.prepare();
    // Start-up may wait for another process's migration; from now on a lock is waited for
    // asynchronously (see flush), never by blocking the event loop.
    this.db.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
  }

  private prepare() {
    const db = this.db;
    const eventRow = `(${EVENT_COLUMNS.map(() => '?').join(', ')})`;
    const eventInsert = (rows: number) =>
      db.prepare(`INSERT INTO taskyard_events (${EVENT_COLUMNS.join(', ')}) VALUES ${Array(rows).fill(eventRow).join(', ')}`);
    return {
      insert: db.prepare(`INSERT INTO taskyard_tasks (${ROW_COLUMNS.join(', ')}, ${KEY_COLUMNS.join(', ')}, last_event_seq)
        VALUES (${ROW_COLUMNS.map(() => '?').join(', ')}, ?, ?, ?) ON CONFLICT DO NOTHING`),
      insertFresh: db.prepare(`INSERT INTO taskyard_tasks (${FRESH_COLUMNS.join(', ')}, ${KEY_COLUMNS.join(', ')}, state, progress, attempt, last_event_seq)
        VALUES (${FRESH_COLUMNS.map(() => '?').join(', ')}, ?, ?, 'PENDING', 0, 0, ?) ON CONFLICT DO NOTHING`),
      events: new Map(EVENT_CHUNKS.map((n) => [n, eventInsert(n)])),
      // AUTOINCREMENT: seqs are never reused, even after the newest events are pruned.
      lastSeq: db
        .prepare(`SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'taskyard_events'), 0),
          coalesce((SELECT max(seq) FROM taskyard_events), 0))`)
        .pluck(),
      head: db.prepare('SELECT rowid, state, name, category, tenant_id, last_event_seq, cancel_requested, worker, finished_at FROM taskyard_tasks WHERE id = ?').raw(),
      start: db.prepare(`UPDATE taskyard_tasks SET state = 'STARTED', attempt = ?, worker = ?, started_at = ?, updated_at = ?,
        progress = 0, progress_message = NULL, last_event_seq = ? WHERE rowid = ?`),
      get: db.prepare('SELECT * FROM taskyard_tasks WHERE id = ?'),
      // The expression matches the unique index of migration 0003, so this is one index lookup.
      byKey: db.prepare(`SELECT * FROM taskyard_tasks WHERE coalesce(tenant_id, '${NO_TENANT}') = ? AND idempotency_key = ?`),
      count: db.prepare(`INSERT INTO taskyard_counts (tenant_id, name, category, state, count) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (tenant_id, name, state) DO UPDATE SET count = count + excluded.count`),
      finished: db.prepare(`INSERT INTO taskyard_finished (minute, tenant_id, count) VALUES (?, ?, ?)
        ON CONFLICT (minute, tenant_id) DO UPDATE SET count = count + excluded.count`),
      started: db.prepare(`SELECT * FROM taskyard_tasks WHERE state = 'STARTED'`),
      nextRunAt: db.prepare(`SELECT min(run_at) AS t FROM taskyard_tasks WHERE state IN ('PENDING', 'RETRY')`),
      totalChanges: db.prepare('SELECT total_changes()').pluck(),
      savepoint: db.prepare('SAVEPOINT op'),
      release: db.prepare('RELEASE op'),
      rollback: db.prepare('ROLLBACK TO op'),
    };
  }

  private readonly statementCache = new Map<string, Database.Statement>();

  /** Statements built from a small set of shapes (claim filters) are parsed once. */
  private cached(text: string): Database.Statement {
    let statement = this.statementCache.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statementCache.set(text, statement);
    }
    return statement;
  }

  // ---- group commit -------------------------------------------------------------------

  private write<T>(op: () => T, atomic = false): Promise<T> {
    if (this.closed) return Promise.reject(new Error('Store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, atomic, resolve: resolve as (v: unknown) => void, reject });
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
    if (batch.length === 0 || this.closed) return;
    let results: Array<{ ok: boolean; value: unknown }>;
    try {
      results = this.commit(batch);
      this.lockedSince = null;
    } catch (error) {
      // The transaction itself failed (locked, disk full, I/O error): nothing was written.
      this.txEvents = [];
      this.txEventValues = [];
      this.countDeltas.clear();
      this.finishedDeltas.clear();
      this.claimed.clear();
      if (this.retryWhenLocked(batch, error)) return;
      for (const item of batch) item.reject(error);
      return;
    } finally {
      this.nextSeq = 0; // another process may write before our next transaction
    }
    this.checkpointWhenIdle();
    const events = this.txEvents;
    this.txEvents = [];
    batch.forEach((item, i) => (results[i]!.ok ? item.resolve(results[i]!.value) : item.reject(results[i]!.value)));
    if (events.length > 0) this.onCommit(events);
  }

  /**
   * Once this store has written nothing for a moment, copies the WAL into the database and
   * truncates it, so a quiet ledger keeps no WAL to speak of. Under steady load it stays out of
   * the way (a checkpoint stalls the event loop on fsync) and SQLite's own checkpoints bound the
   * WAL. Engines poll with transactions that write nothing: those do not count as activity.
   */
  private checkpointWhenIdle(): void {
    if (this.inMemory) return;
    const changes = this.stmts.totalChanges.get() as number;
    if (changes !== this.changesSeen) {
      this.changesSeen = changes;
      this.lastWriteAt = Date.now();
    }
    if (this.checkpointTimer || this.lastWriteAt === 0) return;
    const arm = (delay: number) => {
      this.checkpointTimer = setTimeout(() => {
        this.checkpointTimer = null;
        if (this.closed) return;
        const quietFor = Date.now() - this.lastWriteAt;
        if (quietFor < IDLE_CHECKPOINT_MS) arm(IDLE_CHECKPOINT_MS - quietFor);
        else if (this.lastWriteAt > this.checkpointedAt) {
          this.checkpointedAt = Date.now();
          this.checkpoint();
        }
      }, delay);
      this.checkpointTimer.unref();
    };
    arm(IDLE_CHECKPOINT_MS);
  }

  /**
   * PASSIVE first (it never waits); only when that copied every frame, TRUNCATE, which then has
   * nothing left to copy. Another process busy with the file makes it a no-op until next time.
   * Whether the WAL was emptied.
   */
  checkpoint(): boolean {
    try {
      const [passive] = this.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      if (!passive || passive.busy || passive.checkpointed < passive.log) return false;
      const [truncate] = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
      return truncate?.busy === 0;
    } catch {
      return false;
    }
  }

  /**
   * Another process holds the write lock: try the batch again shortly, without blocking, until
   * `lockWaitMs` has passed; then it fails (the HTTP layer answers 503 with Retry-After).
   */
  private retryWhenLocked(batch: Pending[], error: unknown): boolean {
    const code = (error as { code?: string }).code;
    if (code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') return false;
    const now = Date.now();
    this.lockedSince ??= now;
    if (now - this.lockedSince >= this.lockWaitMs) {
      this.lockedSince = null;
      return false;
    }
    this.pending = batch.concat(this.pending);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => this.flush(), 5 + Math.random() * 20);
    }
    return true;
  }

  /**
   * Runs one op. A failed op leaves no events or count deltas; its rows are undone by SQLite
   * when it failed on its only statement, by the savepoint when it is atomic, and otherwise it
   * checked everything that can fail before writing anything.
   */
  private runOp(item: Pending): { ok: boolean; value: unknown } {
    const eventMark = this.txEvents.length;
    const seqMark = this.nextSeq;
    this.opDeltas.length = 0;
    this.opFinished.length = 0;
    if (item.atomic) this.stmts.savepoint.run();
    try {
      const value = item.op();
      if (item.atomic) this.stmts.release.run();
      for (const [key, delta] of this.opDeltas) this.countDeltas.set(key, (this.countDeltas.get(key) ?? 0) + delta);
      for (const [key, delta] of this.opFinished) this.finishedDeltas.set(key, (this.finishedDeltas.get(key) ?? 0) + delta);
      return { ok: true, value };
    } catch (error) {
      if (item.atomic) {
        this.stmts.rollback.run();
        this.stmts.release.run();
      }
      this.txEvents.length = eventMark;
      this.txEventValues.length = eventMark * EVENT_WIDTH;
      this.nextSeq = seqMark;
      return { ok: false, value: error };
    }
  }

  private countDelta(tenantId: string | null, name: string, category: string, state: TaskState, delta: number): void {
    this.opDeltas.push([`${tenantId ?? NO_TENANT}\u0000${name}\u0000${category}\u0000${state}`, delta]);
  }

  private flushCounts(): void {
    for (const [key, delta] of this.countDeltas) {
      if (delta === 0) continue;
      const [tenant, name, category, state] = key.split('\u0000');
      this.stmts.count.run(tenant, name, category, state, delta);
    }
    this.countDeltas.clear();
  }

  /** A run's finish time moved from `before` to `after` (null: not finished): the rolling counts follow. */
  private finishedMoved(tenantId: string | null, before: number | null, after: number | null): void {
    if (before === after) return;
    const tenant = tenantId ?? NO_TENANT;
    if (before !== null) this.opFinished.push([`${Math.floor(before / FINISHED_BUCKET_MS)}\u0000${tenant}`, -1]);
    if (after !== null) this.opFinished.push([`${Math.floor(after / FINISHED_BUCKET_MS)}\u0000${tenant}`, 1]);
  }

  private flushFinished(): void {
    for (const [key, delta] of this.finishedDeltas) {
      if (delta === 0) continue;
      const [minute, tenant] = key.split('\u0000');
      this.stmts.finished.run(Number(minute), tenant, delta);
    }
    this.finishedDeltas.clear();
  }

  /** The seq the next event of this transaction gets. */
  private peekSeq(): number {
    if (this.nextSeq === 0) this.nextSeq = (this.stmts.lastSeq.get() as number) + 1;
    return this.nextSeq;
  }

  /**
   * Makes an event of the open transaction, with its seq; the row is written at commit.
   * `prevSeq` is the task's previous event, `dataText` its data already serialized.
   */
  private recordEvent(
    taskId: string,
    prevSeq: number | null,
    type: TaskEventType,
    state: TaskState,
    name: string,
    category: string,
    tenantId: string | null,
    at: number,
    data: Record<string, unknown> | null | undefined,
    dataText: string | null,
  ): TaskEvent {
    const seq = this.peekSeq();
    this.nextSeq++;
    const event: TaskEvent = { seq, taskId, type, state, name, category, tenantId, at, data: data ?? null };
    this.txEvents.push(event);
    this.txEventValues.push(seq, prevSeq, taskId, type, state, name, category, tenantId, at, dataText);
    return event;
  }

  /** Writes the transaction's events with a few multi-row INSERTs. */
  private flushEvents(): void {
    const values = this.txEventValues;
    this.txEventValues = [];
    const total = values.length / EVENT_WIDTH;
    for (let i = 0; i < total; ) {
      const n = EVENT_CHUNKS.find((size) => size <= total - i)!;
      this.stmts.events.get(n)!.run(values.slice(i * EVENT_WIDTH, (i + n) * EVENT_WIDTH));
      i += n;
    }
  }

  // ---- writes ---------------------------------------------------------------------------

  insert(records: TaskRecord[]): Promise<TaskEvent[]> {
    // Atomic when there are several: a record that fails (e.g. params JSON cannot hold) undoes the others.
    return this.write(() => {
      const events: TaskEvent[] = [];
      for (const r of records) {
        const fresh = isFresh(r);
        const tuple = fresh ? freshToTuple(r) : recordToTuple(r);
        tuple.push(...keysOf(r), this.peekSeq());
        const statement = fresh ? this.stmts.insertFresh : this.stmts.insert;
        // An idempotency key already used, or a unique key held by a live run: the caller looks it up.
        if (statement.run(tuple).changes === 0) continue;
        this.countDelta(r.tenantId, r.name, r.category, r.state, 1);
        this.finishedMoved(r.tenantId, null, r.finishedAt);
        const data = r.runAt > r.createdAt ? { eta: new Date(r.runAt).toISOString() } : null;
        events.push(this.recordEvent(r.id, null, 'enqueued', r.state, r.name, r.category, r.tenantId, r.createdAt, data, json(data)));
      }
      return events;
    }, records.length > 1);
  }

  apply(changes: TaskChange[]): Promise<Array<TaskEvent | null>> {
    // Everything that can throw is checked before the first write, so a batch applies whole.
    let prepared: PreparedChange[];
    try {
      prepared = changes.map(prepareChange);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.write(() => prepared.map((change) => this.applyOne(change)));
  }

  private applyOne(prepared: PreparedChange): TaskEvent | null {
    const { change, fields, values, dataText } = prepared;
    const now = Date.now();
    const seq = this.peekSeq();
    const known = this.claimed.get(change.id);
    if (known && change.worker === undefined && appliesTo(change, 'STARTED')) {
      // A run we claimed: one guarded UPDATE instead of reading its row first. The guard holds only
      // if the row is still STARTED with the last event we wrote (seqs are unique, so it is this
      // task's row); otherwise someone else moved it on, and the general path below decides.
      const info = this.updateStatement(fields, true).run(change.to, now, seq, ...values, known.rowid, known.lastSeq);
      if (info.changes === 1) {
        const event = this.recordEvent(change.id, known.lastSeq, change.event, change.to, known.name, known.category, known.tenantId, now, change.data, dataText);
        this.transitioned(change, known.tenantId, known.name, known.category, 'STARTED', seq);
        this.finishedMoved(known.tenantId, known.finishedAt, finishedAfter(change, known.finishedAt));
        return event;
      }
    }
    const head = this.stmts.head.get(change.id) as Head | undefined;
    if (!head) return null;
    const [rowid, state, name, category, tenantId, lastSeq, cancelRequested, worker, finishedAt] = head;
    if (!mayApply(change, { state, cancelRequested, worker })) return null;
    this.updateStatement(fields, false).run(change.to, now, seq, ...values, rowid);
    const event = this.recordEvent(change.id, lastSeq, change.event, change.to, name, category, tenantId, now, change.data, dataText);
    this.transitioned(change, tenantId, name, category, state, seq);
    this.finishedMoved(tenantId, finishedAt, finishedAfter(change, finishedAt));
    return event;
  }

  /** Bookkeeping after a change applied: counts, and the claimed-run cache. */
  private transitioned(change: TaskChange, tenantId: string | null, name: string, category: string, from: TaskState, seq: number): void {
    if (change.to !== from) {
      this.countDelta(tenantId, name, category, from, -1);
      this.countDelta(tenantId, name, category, change.to, 1);
    }
    const known = this.claimed.get(change.id);
    if (!known) return;
    // After a cancel request the shortcut is off: the general path enforces REVOKED-only.
    if (change.to === 'STARTED' && change.event !== 'cancel_requested') known.lastSeq = seq;
    else this.claimed.delete(change.id);
  }

  private readonly updates = new Map<string, Database.Statement>();

  /** The UPDATE for a patch shape (which fields it sets), parsed once per shape. */
  private updateStatement(fields: string[], guarded: boolean): Database.Statement {
    const key = `${guarded}:${fields.join()}`;
    let statement = this.updates.get(key);
    if (!statement) {
      const sets = ['state = ?', 'updated_at = ?', 'last_event_seq = ?', ...fields.map((field) => `${COLUMNS[field]!.column} = ?`)];
      const guard = guarded ? ` AND state = 'STARTED' AND last_event_seq = ? AND cancel_requested IS NULL` : '';
      statement = this.db.prepare(`UPDATE taskyard_tasks SET ${sets.join(', ')} WHERE rowid = ?${guard}`);
      this.updates.set(key, statement);
    }
    return statement;
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
      filter('engine', 'IN', options.engines);
      const room = limited(options.limits) ? this.limitRoom(options.limits, options.names ?? [], options.now) : null;
      const limit = Math.min(options.limit, room?.total ?? Infinity);
      if (limit <= 0) return [];
      const full = room?.full() ?? [];
      if (full.length > 0) {
        // One statement shape however many tenants are full, so it is parsed once.
        where.push(`${TENANT} NOT IN (SELECT value FROM json_each(?))`);
        values.push(JSON.stringify(full));
      }
      const started = options.fair
        ? this.claimFair(where.join(' AND '), values, limit, room, options.worker, options.now)
        : this.claimInOrder(where.join(' AND '), values, limit, room, options.worker, options.now);
      if (options.limits?.rate) this.recordStarts(started, options.now);
      return started;
    });
  }

  /** Due runs in strict priority, run_at, id order. */
  private claimInOrder(where: string, values: unknown[], limit: number, room: LimitRoom | null, worker: string, now: number): TaskRecord[] {
    // Whole rows as arrays, then a plain UPDATE each: far cheaper than UPDATE ... RETURNING *.
    const candidates = this.cached(
      `SELECT ${ROW_COLUMNS.join(', ')}, rowid, last_event_seq FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting
       WHERE ${where} ORDER BY priority DESC, run_at, id LIMIT ?`,
    )
      .raw()
      .all(...values, limit) as unknown[][];
    return this.startRows(room ? room.take(candidates, tupleTenant) : candidates, worker, now);
  }

  /**
   * Due runs round-robin across tenants, highest priority first. At the top priority that has a
   * due run, the tenants waiting there are walked in turn through the fair index (one seek each),
   * starting after the tenant this store served last and wrapping around, until
   * `need` of them have a due run; with fewer tenants than slots, each takes its share. Every
   * tenant's first run goes before any tenant's second. A level is taken again until it is empty
   * or the claim is full, then the next one down.
   */
  private claimFair(where: string, values: unknown[], limit: number, room: LimitRoom | null, worker: string, now: number): TaskRecord[] {
    const top = this.cached(
      `SELECT priority FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting WHERE ${where} AND priority < ?
       ORDER BY priority DESC, run_at, id LIMIT 1`,
    ).pluck();
    // Priority and tenant are fixed, so the fair index is already in run_at, id order.
    const heads = this.cached(
      `SELECT ${ROW_COLUMNS.join(', ')}, rowid, last_event_seq FROM taskyard_tasks INDEXED BY taskyard_tasks_fair
       WHERE ${where} AND priority = ? AND ${TENANT} = ? ORDER BY run_at, id LIMIT ?`,
    ).raw();
    const headsOf = (priority: number, tenant: string, count: number) =>
      (heads.all(...values, priority, tenant, count) as unknown[][]).map((key) => ({ key, tenant, runAt: key[21] as number, id: key[0] as string }));
    const started: TaskRecord[] = [];
    let below = Number.MAX_SAFE_INTEGER;
    while (started.length < limit) {
      const priority = top.get(...values, below) as number | undefined;
      if (priority === undefined) break;
      const need = limit - started.length;
      const roomOf = (tenant: string) => room?.forTenant(tenant) ?? need;
      const byTenant: Array<Array<WaitingHead & { key: unknown[] }>> = [];
      const first = this.tenantAfter(priority, this.lastServed) ?? this.tenantAfter(priority, null);
      let tenant = first;
      let wrapped = false;
      while (tenant !== undefined && byTenant.length < need) {
        if (roomOf(tenant) > 0) {
          const head = headsOf(priority, tenant, 1);
          if (head.length > 0) byTenant.push(head);
        }
        tenant = this.tenantAfter(priority, tenant) ?? this.tenantAfter(priority, null);
        if (tenant === first) {
          wrapped = true;
          break;
        }
      }
      // Every tenant seen and slots to spare: each takes its share.
      const each = share(need, byTenant.length);
      if (wrapped && each > 1) {
        for (let i = 0; i < byTenant.length; i++) byTenant[i] = headsOf(priority, byTenant[i]![0]!.tenant, Math.min(each, roomOf(byTenant[i]![0]!.tenant)));
      }
      const picked = roundRobin(byTenant, need);
      const kept = room ? room.take(picked, (h) => h.tenant) : picked;
      // Nothing left here for this claim (e.g. every tenant at its limit): the next level down.
      if (kept.length === 0) {
        below = priority;
        continue;
      }
      this.lastServed = kept.at(-1)!.tenant;
      started.push(...this.startRows(kept.map((h) => h.key), worker, now));
    }
    return started;
  }

  /** The first tenant after `tenant` (or the first of all) with a waiting run at `priority`: one seek of the fair index. */
  private tenantAfter(priority: number, tenant: string | null): string | undefined {
    if (tenant === null) {
      return this.cached(
        `SELECT ${TENANT} FROM taskyard_tasks INDEXED BY taskyard_tasks_fair WHERE state IN ('PENDING', 'RETRY') AND priority = ?
         ORDER BY priority DESC, ${TENANT} LIMIT 1`,
      ).pluck().get(priority) as string | undefined;
    }
    return this.cached(
      `SELECT ${TENANT} FROM taskyard_tasks INDEXED BY taskyard_tasks_fair WHERE state IN ('PENDING', 'RETRY') AND priority = ?
       AND ${TENANT} > ? ORDER BY priority DESC, ${TENANT} LIMIT 1`,
    ).pluck().get(priority, tenant) as string | undefined;
  }

  /** Room under a definition's limits, read in the claiming transaction (writes are serialized). */
  private limitRoom(limits: RunLimits, names: readonly string[], now: number): LimitRoom {
    const list = JSON.stringify(names);
    const running =
      limits.tenantConcurrency === null
        ? []
        : (this.cached(`SELECT ${TENANT}, count(*) FROM taskyard_tasks INDEXED BY taskyard_tasks_state
            WHERE state = 'STARTED' AND name IN (SELECT value FROM json_each(?)) GROUP BY 1`).raw().all(list) as Array<[string, number]>);
    let recent = 0;
    if (limits.rate) {
      const since = now - limits.rate.windowMs;
      // Starts older than the window no longer count: the table keeps only the window.
      this.cached('DELETE FROM taskyard_starts WHERE name IN (SELECT value FROM json_each(?)) AND at <= ?').run(list, since);
      recent = this.cached('SELECT count(*) FROM taskyard_starts WHERE name IN (SELECT value FROM json_each(?)) AND at > ?').pluck().get(list, since) as number;
    }
    return new LimitRoom(limits, running, recent);
  }

  /** Counts starts of a rate-limited definition in its window. */
  private recordStarts(records: readonly TaskRecord[], now: number): void {
    const insert = this.cached('INSERT INTO taskyard_starts (name, at, task_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    for (const record of records) insert.run(record.name, now, record.id);
  }

  start(ids: readonly string[], worker: string, now: number, limits?: ReadonlyMap<string, RunLimits>): Promise<TaskRecord[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.write(() => {
      const candidates = this.cached(
        `SELECT ${ROW_COLUMNS.join(', ')}, rowid, last_event_seq FROM taskyard_tasks
         WHERE id IN (${ids.map(() => '?').join(', ')}) AND state IN ('PENDING', 'RETRY') AND run_at <= ?`,
      )
        .raw()
        .all(...ids, now) as unknown[][];
      if (!limits?.size) return this.startRows(candidates, worker, now);
      const started: TaskRecord[] = [];
      for (const [name, group] of groupBy(candidates, (t) => t[1] as string)) {
        const own = limits.get(name);
        if (!limited(own)) {
          started.push(...this.startRows(group, worker, now));
          continue;
        }
        const runs = this.startRows(this.limitRoom(own, [name], now).take(group, tupleTenant), worker, now);
        if (own.rate) this.recordStarts(runs, now);
        started.push(...runs);
      }
      return started;
    });
  }

  /** Moves picked waiting rows (whole rows, then rowid and last event seq) to STARTED for `worker`. */
  private startRows(candidates: unknown[][], worker: string, now: number): TaskRecord[] {
    if (this.claimed.size + candidates.length > MAX_CLAIMED) this.claimed.clear();
    return candidates.map((tuple) => {
      const row = tupleToRow(tuple);
      const [rowid, lastSeq] = tuple.slice(ROW_COLUMNS.length) as [number, number | null];
      const from = row.state;
      row.state = 'STARTED';
      row.attempt += 1;
      row.worker = worker;
      row.started_at = now;
      row.updated_at = now;
      row.progress = 0;
      row.progress_message = null;
      const seq = this.peekSeq();
      this.stmts.start.run(row.attempt, worker, now, now, seq, rowid);
      this.countDelta(row.tenant_id, row.name, row.category, from, -1);
      this.countDelta(row.tenant_id, row.name, row.category, 'STARTED', 1);
      const data = { attempt: row.attempt, worker };
      this.recordEvent(row.id, lastSeq, 'started', 'STARTED', row.name, row.category, row.tenant_id, now, data, JSON.stringify(data));
      this.claimed.set(row.id, { rowid, name: row.name, category: row.category, tenantId: row.tenant_id, lastSeq: seq, finishedAt: row.finished_at });
      return rowToRecord(row);
    });
  }

  prune(rule: PruneRule, limit: number): Promise<number> {
    const params: unknown[] = [];
    const where = pruneWhere(rule, {
      param: (value) => (params.push(value), '?'),
      nameSet: (names) => (params.push(JSON.stringify(names)), '(SELECT value FROM json_each(?))'),
    });
    return this.write(() => {
      const rows = this.cached(
        `DELETE FROM taskyard_tasks WHERE id IN (SELECT id FROM taskyard_tasks WHERE ${where} LIMIT ?)
           RETURNING name, category, state, tenant_id, finished_at, last_event_seq`,
      ).all(...params, limit) as Array<Pick<Row, 'name' | 'category' | 'state' | 'tenant_id' | 'finished_at'> & { last_event_seq: number | null }>;
      const deleteChain = this.cached(`DELETE FROM taskyard_events WHERE seq IN (${CHAIN}SELECT seq FROM chain)`);
      for (const row of rows) {
        deleteChain.run(row.last_event_seq, 0);
        this.countDelta(row.tenant_id, row.name, row.category, row.state, -1);
        this.finishedMoved(row.tenant_id, row.finished_at, null);
      }
      return rows.length;
    }, true);
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

  async findByIdempotencyKey(tenantId: string | null, key: string): Promise<TaskRecord | null> {
    const row = this.stmts.byKey.get(tenantId ?? NO_TENANT, key) as Row | undefined;
    return row ? rowToRecord(row) : null;
  }

  releaseIdempotencyKey(tenantId: string | null, key: string, before: number): Promise<boolean> {
    return this.write(
      () =>
        this.cached(`UPDATE taskyard_tasks SET idempotency_key = NULL
          WHERE coalesce(tenant_id, '${NO_TENANT}') = ? AND idempotency_key = ? AND created_at < ?`).run(tenantId ?? NO_TENANT, key, before).changes > 0,
    );
  }

  async findLive(uniqueKey: string): Promise<TaskRecord | null> {
    // The WHERE repeats the partial index's condition, so SQLite uses it.
    const row = this.cached(`SELECT * FROM taskyard_tasks WHERE unique_key = ? AND state IN (${LIVE_STATES.map((s) => `'${s}'`).join(', ')})
      AND unique_key IS NOT NULL`).get(uniqueKey) as Row | undefined;
    return row ? rowToRecord(row) : null;
  }

  async findCached(cacheKey: string, since: number): Promise<TaskRecord | null> {
    const row = this.cached(`SELECT * FROM taskyard_tasks WHERE cache_key = ? AND finished_at >= ? AND state = 'SUCCESS'
      ORDER BY finished_at DESC LIMIT 1`).get(cacheKey, since) as Row | undefined;
    return row ? rowToRecord(row) : null;
  }

  async pauses(): Promise<Pause[]> {
    return (this.cached('SELECT * FROM taskyard_pauses ORDER BY kind, name').all() as Parameters<typeof rowToPause>[0][]).map(rowToPause);
  }

  setPaused(pause: Pause, paused: boolean): Promise<boolean> {
    return this.write(() => {
      const statement = paused
        ? this.cached('INSERT INTO taskyard_pauses (kind, name, paused_at, paused_by) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING')
        : this.cached('DELETE FROM taskyard_pauses WHERE kind = ? AND name = ?');
      const values = paused ? [pause.kind, pause.name, pause.pausedAt, pause.pausedBy] : [pause.kind, pause.name];
      return statement.run(...values).changes > 0;
    });
  }

  async list(filter: ListFilter, scope: TenantScope): Promise<TaskPage> {
    const query = listQuery(this.kysely, filter, scope, 'LIKE');
    if (!query) return { tasks: [], nextCursor: null };
    return pageOf((await query.execute()) as Row[], filter.limit);
  }

  async stats(scope: TenantScope, now: number): Promise<LedgerStats> {
    if (scope !== '*' && scope.length === 0) return emptyStats();
    const tenantSql = scope === '*' ? sql`1 = 1` : sql`tenant_id IN (${sql.join([...scope])})`;
    // A few tenants' finished runs are a few ranges of their own index, not a walk through everyone's.
    const finishedIndex = sql.raw(scope === '*' ? 'taskyard_tasks_finished' : 'taskyard_tasks_tenant_finished');
    const counts = await sql<CountRow>`SELECT name, category, state, tenant_id <> ${NO_TENANT} AS tenanted, sum(count) AS count
      FROM taskyard_counts WHERE ${tenantSql} GROUP BY name, category, state, tenanted`.execute(this.kysely);
    const stats = foldCounts(counts.rows);

    const recent = await sql<{ d: number }>`SELECT finished_at - started_at AS d FROM taskyard_tasks
      INDEXED BY ${finishedIndex}
      WHERE finished_at IS NOT NULL AND finished_at >= ${now - 3_600_000} AND started_at IS NOT NULL AND ${tenantSql}
      ORDER BY finished_at DESC LIMIT 5000`.execute(this.kysely);

    // Runs finished since `since`: whole minutes from the rolling counts, the partial minute
    // before them from the finished index (a minute of runs at most).
    const finishedSince = (since: number) => {
      const firstWhole = Math.floor(since / FINISHED_BUCKET_MS) + 1;
      return sql`(SELECT coalesce(sum(count), 0) FROM taskyard_finished WHERE minute >= ${firstWhole} AND ${tenantSql})
        + (SELECT count(*) FROM taskyard_tasks INDEXED BY ${finishedIndex} WHERE finished_at IS NOT NULL
           AND finished_at >= ${since} AND finished_at < ${firstWhole * FINISHED_BUCKET_MS} AND ${tenantSql})`;
    };
    const finished = await sql<{ minute: number; hour: number }>`SELECT ${finishedSince(now - 60_000)} AS minute,
      ${finishedSince(now - 3_600_000)} AS hour`.execute(this.kysely);

    const waiting = await sql<{ queue: string; state: TaskState; due: number; n: number }>`SELECT queue, state,
        run_at <= ${now} AS due, count(*) AS n FROM taskyard_tasks INDEXED BY taskyard_tasks_waiting
      WHERE state IN ('PENDING', 'RETRY') AND ${tenantSql} GROUP BY queue, state, due`.execute(this.kysely);
    return addTimingsAndQueues(stats, recent.rows, finished.rows[0], waiting.rows);
  }

  // ---- peers, leadership, cursors ----------------------------------------------------------

  async lastSeq(): Promise<number> {
    return this.stmts.lastSeq.get() as number;
  }

  heartbeat(w: WorkerRow): Promise<void> {
    return this.write(() => {
      this.cached(`INSERT INTO taskyard_workers (id, host, pid, engine, concurrency, started_at, heartbeat_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency,
        heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`).run(
        w.id, w.host, w.pid, w.engine, w.concurrency, w.startedAt, w.heartbeatAt, w.expiresAt,
      );
    });
  }

  removeWorker(id: string): Promise<void> {
    return this.write(() => {
      this.cached('DELETE FROM taskyard_workers WHERE id = ?').run(id);
    });
  }

  async workers(): Promise<WorkerRow[]> {
    const rows = this.cached('SELECT * FROM taskyard_workers ORDER BY started_at').all() as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      id: r.id as string,
      host: r.host as string,
      pid: Number(r.pid),
      engine: r.engine as string,
      concurrency: Number(r.concurrency),
      startedAt: Number(r.started_at),
      heartbeatAt: Number(r.heartbeat_at),
      expiresAt: Number(r.expires_at),
    }));
  }

  lead(role: string, holder: string, ttlMs: number, now: number, deadHolders: readonly string[] = []): Promise<boolean> {
    return this.write(() => {
      const dead = deadHolders.length ? ` OR taskyard_leaders.holder IN (${deadHolders.map(() => '?').join(', ')})` : '';
      this.cached(`INSERT INTO taskyard_leaders (role, holder, expires_at) VALUES (?, ?, ?)
        ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE taskyard_leaders.holder = excluded.holder OR taskyard_leaders.expires_at < ?${dead}`).run(role, holder, now + ttlMs, now, ...deadHolders);
      return this.cached('SELECT holder FROM taskyard_leaders WHERE role = ?').pluck().get(role) === holder;
    });
  }

  resign(role: string, holder: string): Promise<void> {
    return this.write(() => {
      this.cached('DELETE FROM taskyard_leaders WHERE role = ? AND holder = ?').run(role, holder);
    });
  }

  async cursor(name: string): Promise<number | null> {
    const seq = this.cached('SELECT seq FROM taskyard_cursors WHERE name = ?').pluck().get(name) as number | undefined;
    return seq === undefined ? null : Number(seq);
  }

  saveCursor(name: string, seq: number): Promise<void> {
    return this.write(() => {
      this.cached(`INSERT INTO taskyard_cursors (name, seq, updated_at) VALUES (?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`).run(name, seq, Date.now());
    });
  }

  // ---- schedules ---------------------------------------------------------------------------

  async schedules(): Promise<ScheduleRow[]> {
    return (this.cached(SCHEDULE_SQL.list).all() as Array<Record<string, unknown>>).map(rowToSchedule);
  }

  async schedule(name: string): Promise<ScheduleRow | null> {
    const row = this.cached(SCHEDULE_SQL.get).get(name) as Record<string, unknown> | undefined;
    return row ? rowToSchedule(row) : null;
  }

  insertSchedule(row: ScheduleRow): Promise<boolean> {
    return this.write(() => this.cached(SCHEDULE_SQL.insert).run(...scheduleValues(row)).changes === 1);
  }

  updateSchedule(name: string, change: ScheduleChange): Promise<ScheduleRow | null> {
    const { text, values } = scheduleUpdate(name, change);
    return this.write(() => {
      this.cached(text).run(...values);
      const row = this.cached(SCHEDULE_SQL.get).get(name) as Record<string, unknown> | undefined;
      return row ? rowToSchedule(row) : null;
    });
  }

  deleteSchedule(name: string): Promise<boolean> {
    return this.write(() => this.cached(SCHEDULE_SQL.delete).run(name).changes === 1);
  }

  advanceSchedule(name: string, fromTick: number, advance: ScheduleAdvance): Promise<boolean> {
    return this.write(() => this.cached(SCHEDULE_SQL.advance).run(...scheduleAdvanceValues(name, fromTick, advance)).changes === 1);
  }

  async findStarted(worker?: string): Promise<TaskRecord[]> {
    const rows = this.stmts.started.all() as Row[];
    return rows.filter((r) => worker === undefined || r.worker === worker).map(rowToRecord);
  }

  async backlog(tenantIds: readonly string[]): Promise<Map<string, number>> {
    const rows = this.cached(`SELECT tenant_id, sum(count) FROM taskyard_counts WHERE state IN ('PENDING', 'RETRY')
      AND tenant_id IN (SELECT value FROM json_each(?)) GROUP BY tenant_id`).raw().all(JSON.stringify(tenantIds)) as Array<[string, number]>;
    return new Map(rows.map(([tenant, count]) => [tenant, Number(count)]));
  }

  async nextRunAt(): Promise<number | null> {
    const row = this.stmts.nextRunAt.get() as { t: number | null };
    return row.t === null ? null : Number(row.t);
  }

  async events(query: EventQuery, scope: TenantScope): Promise<TaskEvent[]> {
    if (scope !== '*' && scope.length === 0) return [];
    if (query.taskId) return this.taskEvents({ ...query, taskId: query.taskId }, scope);
    let q = this.kysely.selectFrom('taskyard_events').selectAll().where('seq', '>', query.afterSeq);
    if (scope !== '*') q = q.where('tenant_id', 'in', [...scope]);
    if (query.tenantId) q = q.where('tenant_id', '=', query.tenantId);
    if (query.name) q = q.where('name', '=', query.name);
    if (query.category) q = q.where('category', '=', query.category);
    const rows = (await q.orderBy('seq').limit(query.limit).execute()) as EventRow[];
    return rows.map(rowToEvent);
  }

  async eventsOfTypes(query: EventTypesQuery): Promise<EventTypesPage> {
    // One read transaction, so the newest seq and the page come from the same snapshot.
    return this.db.transaction(() => {
      const newest = this.cached('SELECT max(seq) FROM taskyard_events').pluck().get() as number | null;
      const rows = this.cached(`SELECT * FROM taskyard_events WHERE seq > ? AND type IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`)
        .all(query.afterSeq, JSON.stringify(query.types), query.limit) as EventRow[];
      return { events: rows.map(rowToEvent), through: Math.max(query.afterSeq, newest ?? 0) };
    })();
  }

  /** One task's events: the chain from the task's last event back to `afterSeq`, in seq order. */
  private taskEvents(query: EventQuery & { taskId: string }, scope: TenantScope): TaskEvent[] {
    const last = this.db.prepare('SELECT last_event_seq FROM taskyard_tasks WHERE id = ?').pluck().get(query.taskId) as number | null | undefined;
    if (last === undefined || last === null || last <= query.afterSeq) return [];
    const rows = this.db
      .prepare(`${CHAIN}SELECT e.* FROM taskyard_events e JOIN chain ON e.seq = chain.seq WHERE e.seq > ? ORDER BY e.seq LIMIT ?`)
      .all(last, query.afterSeq, query.afterSeq, query.limit) as EventRow[];
    // The other filters are the task's own fields: they keep all of its events or none.
    return rows
      .filter(
        (row) =>
          inScope(row.tenant_id, scope) &&
          (!query.tenantId || row.tenant_id === query.tenantId) &&
          (!query.name || row.name === query.name) &&
          (!query.category || row.category === query.category),
      )
      .map(rowToEvent);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.length) this.flush();
    this.closed = true;
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    // Writes still waiting for another process's lock will not be made.
    for (const item of this.pending.splice(0)) item.reject(new Error('Store is closed'));
    this.db.close();
  }
}

// Kept for existing importers; the codec lives in codec.ts.
export { inScope, rowToRecord } from './codec.js';
