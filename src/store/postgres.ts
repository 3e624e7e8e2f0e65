import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Kysely, Migrator, PostgresDialect, sql, type MigrationProvider } from 'kysely';
import pg from 'pg';
import { backendUnavailable } from '../core/errors.js';
import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskState } from '../core/states.js';
import { LedgerSchemaDialect } from './migrations/postgres-dialect.js';
import { FINISHED_BUCKET_MS, LIVE_STATES, NO_TENANT } from './migrations/common.js';
import { postgresMigrations } from './migrations/postgres.js';
import { inScope, json, mayApply, rowToEvent, rowToPause, rowToRecord, type EventRow, type Row } from './codec.js';
import { addTimingsAndQueues, emptyStats, foldCounts, type CountRow } from './stats.js';
import { listQuery, pageOf } from './list-query.js';
import { pruneWhere } from './prune.js';
import { LimitRoom, limited, roundRobin, tenantKey, type WaitingHead } from './fair.js';
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

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database` */
  connectionString: string;
  /** Connections in the pool (default 10). Writes use one at a time; reads share the others. */
  poolSize?: number;
  /** Keep the ledger's tables in this schema (created if missing) instead of the search_path's first. */
  schema?: string;
  onCommit?: (events: TaskEvent[]) => void;
  /** Shown in pg_stat_activity, to tell this store's connections apart (default `taskyard`). */
  applicationName?: string;
  /** How long to wait for a connection before answering "unavailable" (default 5 s). */
  connectTimeoutMs?: number;
}




/** Record field -> column and its PostgreSQL type, for the fields a change may patch. */
const COLUMNS: Record<string, { column: string; type: 'text' | 'int' | 'bigint'; json?: boolean; notNull?: boolean }> = {
  progress: { column: 'progress', type: 'int', notNull: true },
  progressMessage: { column: 'progress_message', type: 'text' },
  result: { column: 'result', type: 'text', json: true },
  error: { column: 'error', type: 'text' },
  traceback: { column: 'traceback', type: 'text' },
  meta: { column: 'meta', type: 'text', json: true },
  attempt: { column: 'attempt', type: 'int', notNull: true },
  maxAttempts: { column: 'max_attempts', type: 'int', notNull: true },
  worker: { column: 'worker', type: 'text' },
  engine: { column: 'engine', type: 'text', notNull: true },
  runAt: { column: 'run_at', type: 'bigint', notNull: true },
  cancelRequested: { column: 'cancel_requested', type: 'text' },
  revokeReason: { column: 'revoke_reason', type: 'text' },
  startedAt: { column: 'started_at', type: 'bigint' },
  finishedAt: { column: 'finished_at', type: 'bigint' },
};

/** Every task column with its type, in insert order. */
const TASK_COLUMNS: Array<[column: keyof Row, type: 'text' | 'int' | 'bigint']> = [
  ['id', 'text'], ['name', 'text'], ['category', 'text'], ['display_name', 'text'], ['state', 'text'], ['progress', 'int'],
  ['progress_message', 'text'], ['tenant_id', 'text'], ['params', 'text'], ['result', 'text'], ['error', 'text'],
  ['traceback', 'text'], ['meta', 'text'], ['attempt', 'int'], ['max_attempts', 'int'], ['priority', 'int'], ['queue', 'text'],
  ['route', 'text'], ['engine', 'text'], ['worker', 'text'], ['idempotency_key', 'text'], ['run_at', 'bigint'],
  ['cancel_requested', 'text'], ['revoke_reason', 'text'], ['created_at', 'bigint'], ['started_at', 'bigint'],
  ['finished_at', 'bigint'], ['updated_at', 'bigint'], ['unique_key', 'text'], ['cache_key', 'text'],
];

/**
 * Integer columns hold whole numbers: a fractional one (a countdown of 0.3 ms makes a fractional
 * run_at) is rounded, where SQLite would have kept it as a float.
 */
const whole = (value: number | null): number | null => (value !== null && Number.isFinite(value) ? Math.round(value) : value);

function recordToValues(r: TaskRecord): unknown[] {
  return [
    r.id, r.name, r.category, r.displayName, r.state, whole(r.progress), r.progressMessage, r.tenantId,
    JSON.stringify(r.params ?? {}), json(r.result), r.error, r.traceback, json(r.meta), whole(r.attempt), whole(r.maxAttempts),
    whole(r.priority), r.queue, r.route, r.engine, r.worker, r.idempotencyKey, whole(r.runAt), r.cancelRequested, r.revokeReason,
    whole(r.createdAt), whole(r.startedAt), whole(r.finishedAt), whole(r.updatedAt), r.uniqueKey ?? null, r.cacheKey ?? null,
  ];
}

/** A change with its values checked and serialized, so applying it cannot fail halfway. */
interface PreparedChange {
  change: TaskChange;
  fields: string[];
  values: unknown[];
  dataText: string | null;
}

function prepareChange(change: TaskChange): PreparedChange {
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
    if (column.type === 'text' ? typeof value !== 'string' : typeof value !== 'number' || !Number.isFinite(value)) {
      throw new Error(`Field ${field} must be ${column.type === 'text' ? 'a string' : 'a number'}`);
    }
    return column.type === 'text' ? value : whole(value as number);
  });
  return { change, fields, values, dataText: json(change.data) };
}

/** What a change needs to know about its task, kept up to date as the batch's changes apply. */
interface Head {
  state: TaskState;
  name: string;
  category: string;
  tenantId: string | null;
  cancelRequested: string | null;
  worker: string | null;
  finishedAt: number | null;
}

/** PostgreSQL text cannot hold NUL; the ledger keeps U+FFFD in its place, on writes and lookups alike. */
function bindable(value: unknown): unknown {
  if (typeof value === 'string') return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
  if (Array.isArray(value)) return value.map(bindable);
  return value;
}

/** node-postgres's own text form of a bound value (arrays become array literals). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (value: unknown) => string | null };

/** `text` with each `$n` replaced by its value as a quoted literal, exactly as it would have been bound. */
function inline(text: string, values: unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = prepareValue(bindable(values[Number(n) - 1]));
    return value === null ? 'NULL' : pg.escapeLiteral(value);
  });
}

// ---- errors ---------------------------------------------------------------------------------

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
]);
const DRIVER_DOWN = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection ended|Client was closed/i;

/**
 * Whether an error means "PostgreSQL cannot be reached", not "this statement is wrong":
 * network errors, SQLSTATE classes 08 (connection), 53 (out of resources) and 57P0x (server
 * shutting down, database dropped).
 */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && (NETWORK_ERRORS.has(code) || /^(08|53|57P0)/.test(code))) return true;
  return error instanceof Error && DRIVER_DOWN.test(error.message);
}

/**
 * A pooled connection the server had dropped while it sat idle (a restart, pg_terminate_backend):
 * nothing was done on it, so the statement may be tried once more on a fresh connection.
 */
function isDropped(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (code === 'ECONNRESET' || code === 'EPIPE' || (typeof code === 'string' && /^57P0[125]$/.test(code))) return true;
  return error instanceof Error && /Connection terminated|not queryable/i.test(error.message);
}

/** Deadlocks and serialization failures: the transaction did nothing, and may simply run again. */
const isTransient = (error: unknown): boolean => ['40P01', '40001'].includes((error as { code?: string })?.code ?? '');

function translate(error: unknown): unknown {
  if (!isUnavailable(error)) return error;
  return backendUnavailable(`PostgreSQL is unavailable: ${(error as Error).message || String(error)}`);
}

// ---- group commit ---------------------------------------------------------------------------

type WriteOp =
  | { kind: 'insert'; records: TaskRecord[]; values: unknown[][] }
  | { kind: 'apply'; changes: PreparedChange[] }
  | { kind: 'claim'; options: ClaimOptions }
  | { kind: 'start'; ids: readonly string[]; worker: string; now: number; limits?: ReadonlyMap<string, RunLimits> }
  | { kind: 'prune'; rule: PruneRule; limit: number };

interface Pending {
  op: WriteOp;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** An event of the open transaction. Its seq is known only at commit. */
interface Draft {
  event: TaskEvent;
  /** 1-based position in the transaction; the seq is the allocated block's base plus this. */
  ord: number;
  dataText: string | null;
}

/** What one write transaction accumulates: its events, the tasks they belong to, and count deltas. */
class WriteTx {
  readonly drafts: Draft[] = [];
  readonly touched = new Set<string>();
  readonly counts = new Map<string, { tenant: string; name: string; category: string; state: TaskState; delta: number }>();

  /** Whether BEGIN has gone out (with the transaction's first statement). */
  begun = false;

  constructor(readonly client: pg.PoolClient) {}

  record(taskId: string, type: TaskEventType, state: TaskState, head: Pick<Head, 'name' | 'category' | 'tenantId'>, at: number, data: Record<string, unknown> | null | undefined, dataText: string | null): TaskEvent {
    const event: TaskEvent = { seq: 0, taskId, type, state, name: head.name, category: head.category, tenantId: head.tenantId, at, data: data ?? null };
    this.drafts.push({ event, ord: this.drafts.length + 1, dataText });
    this.touched.add(taskId);
    return event;
  }

  count(tenantId: string | null, name: string, category: string, state: TaskState, delta: number): void {
    // Keyed like the table's primary key, so one upsert never meets the same row twice.
    const tenant = tenantId ?? NO_TENANT;
    const key = `${tenant}\u0000${name}\u0000${state}`;
    const entry = this.counts.get(key);
    if (entry) entry.delta += delta;
    else this.counts.set(key, { tenant, name, category, state, delta });
  }

  /** Runs finished per (minute, tenant), keyed like the table's primary key. */
  readonly finished = new Map<string, { minute: number; tenant: string; delta: number }>();

  /** A run's finish time moved from `before` to `after` (null: not finished): the rolling counts follow. */
  finishedMoved(tenantId: string | null, before: number | null, after: number | null): void {
    if (before === after) return;
    const tenant = tenantId ?? NO_TENANT;
    const add = (at: number, delta: number) => {
      const minute = Math.floor(at / FINISHED_BUCKET_MS);
      const key = `${minute}\u0000${tenant}`;
      const entry = this.finished.get(key);
      if (entry) entry.delta += delta;
      else this.finished.set(key, { minute, tenant, delta });
    };
    if (before !== null) add(before, -1);
    if (after !== null) add(after, 1);
  }
}

/** Classid of the advisory lock that orders event seqs; the objid is the events table's oid. */
const EVENT_LOCK_CLASS = 0x7479_0001;
/** Classid of the advisory locks that serialize claims of a limited definition; the objid hashes its name. */
const LIMIT_LOCK_CLASS = 0x7479_0002;
/** The tenant a waiting run takes turns as, written as the fair index has it. */
const TENANT = `coalesce(tenant_id, '${NO_TENANT}')`;

/**
 * The shared ledger, on PostgreSQL: the same contract as the SQLite store, for many processes.
 *
 * Writes are group-committed: every write made while the previous transaction was in flight
 * shares the next one, and writes of a kind are merged into one statement (a multi-row INSERT
 * from unnest arrays; an UPDATE ... FROM unnest), so a transaction costs a handful of round
 * trips however many runs it moves.
 *
 * Transitions are compare-and-set: the rows are locked (`FOR UPDATE`) and checked against
 * core/states before they change, so a late or duplicate write never moves a finished run back.
 * Claims take due runs with `FOR UPDATE SKIP LOCKED`, so processes never wait on, or take, each
 * other's runs.
 *
 * Event seqs follow commit order. Sequences do not (a transaction that drew a smaller number can
 * commit later, and a reader's cursor would already have passed it), so each transaction writes
 * its events last, under a transaction-scoped advisory lock, and draws their seqs as one block
 * while holding it: a later commit always gets larger seqs. The same final statement updates the
 * counts, so count rows only ever change under that lock and cannot deadlock.
 */
export class PostgresStore implements TaskStore {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  private readonly kysely: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  private readonly schema: string | undefined;
  onCommit: (events: TaskEvent[]) => void;
  private pending: Pending[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Read at migrate(): the events table's oid (the lock's objid) and its identity sequence. */
  private eventLock = 0;
  private eventSequence = '';
  /** NOTIFY channel of this ledger (one per schema): each commit with events wakes the listeners. */
  private channel = '';
  /** Sent with each notification, so a store is not woken by its own commits (onCommit has them). */
  private readonly notifier = randomUUID();
  private readonly connectionString: string;
  private readonly listeners = new Set<pg.Client>();
  private readonly statementNames = new Map<string, string>();
  /**
   * The tenant fair claims served last: the next claim starts after it. Kept per process; each
   * process sharing the ledger takes turns on its own.
   */
  private lastServed: string | null = null;

  constructor(options: PostgresStoreOptions) {
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1) throw new Error('poolSize must be an integer >= 1');
    if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`schema must be a lower-case identifier, got ${JSON.stringify(options.schema)}`);
    }
    this.schema = options.schema;
    this.connectionString = options.connectionString;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: options.applicationName ?? 'taskyard',
      ...(options.schema && { options: `-c search_path=${options.schema}` }),
      // Epoch milliseconds and seqs are bigint columns, well inside Number's exact range.
      types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
    });
    // A connection that drops while idle (server restart, pg_terminate_backend) is an 'error' on
    // the pool, and on the client while checked out: without listeners Node would crash the
    // process. The pool replaces the connection; the caller of a failed query gets the error.
    this.pool.on('error', () => {});
    this.pool.on('connect', (client) => client.on('error', () => {}));
    this.kysely = new Kysely({ dialect: new PostgresDialect({ pool: this.pool }) });
    this.onCommit = options.onCommit ?? (() => {});
  }

  async migrate(): Promise<void> {
    try {
      if (this.schema) {
        // Two processes creating it at once: one of them is told it exists, which is fine.
        await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(this.schema)}`.execute(this.kysely).catch((error: { code?: string }) => {
          if (error.code !== '23505' && error.code !== '42P06') throw error;
        });
      }
      // Named explicitly: otherwise the migrator takes another schema's migration table for ours.
      const schema = this.schema ?? (await this.pool.query<{ schema: string | null }>('SELECT current_schema() AS schema')).rows[0]!.schema;
      if (!schema) throw new Error('The search_path of the PostgreSQL connection names no existing schema');
      const provider: MigrationProvider = { getMigrations: async () => postgresMigrations };
      const migrator = new Migrator({
        // Shares the pool; never destroyed, so the pool's life stays the store's.
        db: new Kysely({ dialect: new LedgerSchemaDialect({ pool: this.pool }, schema) }),
        provider,
        migrationTableSchema: schema,
        migrationTableName: 'taskyard_migrations',
        migrationLockTableName: 'taskyard_migrations_lock',
      });
      const { error } = await migrator.migrateToLatest();
      if (error) throw error;
      const { rows } = await this.pool.query<{ oid: number; seq: string }>(
        `SELECT 'taskyard_events'::regclass::oid::bigint AS oid, pg_get_serial_sequence('taskyard_events', 'seq') AS seq`,
      );
      this.eventLock = rows[0]!.oid | 0; // an oid is unsigned 32-bit; the lock key is a signed int4
      this.eventSequence = rows[0]!.seq;
      this.channel = `taskyard:${schema}`.slice(0, 63); // as LISTEN would cut it
    } catch (error) {
      throw translate(error);
    }
  }

  // ---- plumbing -------------------------------------------------------------------------------

  /** Fixed statements get a name, so each connection parses and plans them once. */
  private named(text: string): string {
    let name = this.statementNames.get(text);
    if (!name) {
      name = `taskyard_${this.statementNames.size + 1}`;
      this.statementNames.set(text, name);
    }
    return name;
  }

  /**
   * A read (or a single-statement write), tried again when its pooled connection had been dropped.
   * After a restart every idle connection may be dead, so it may take one try per pooled connection.
   */
  private async query<R>(text: string, values: unknown[] = [], prepared = true): Promise<R[]> {
    const config = { text, values: values.map(bindable), ...(prepared && { name: this.named(text) }) };
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new Error('Store is closed');
      try {
        return (await this.pool.query(config)).rows as R[];
      } catch (error) {
        if (attempt <= this.pool.options.max && isDropped(error)) continue;
        throw translate(error);
      }
    }
  }

  /** Runs a query built with Kysely (dynamic filters) through the same path as the rest. */
  private async built<R>(query: { compile(): { sql: string; parameters: readonly unknown[] } }): Promise<R[]> {
    const compiled = query.compile();
    return this.query<R>(compiled.sql, [...compiled.parameters], false);
  }

  /**
   * A statement of the open transaction. The first one takes BEGIN along in the same round trip;
   * two statements in one message need the simple protocol, so its values are inlined.
   */
  private async txQuery<R>(tx: WriteTx, text: string, values: unknown[]): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    if (tx.begun) return tx.client.query<R & pg.QueryResultRow>({ name: this.named(text), text, values: values.map(bindable) });
    const results = (await tx.client.query(`BEGIN;\n${inline(text, values)}`)) as unknown as Array<pg.QueryResult<R & pg.QueryResultRow>>;
    tx.begun = true;
    return results[1]!;
  }

  private write<T>(op: WriteOp): Promise<T> {
    if (this.closed) return Promise.reject(new Error('Store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ op, resolve: resolve as (value: unknown) => void, reject });
      this.scheduleFlush();
    });
  }

  /** One transaction at a time: writes made meanwhile wait and share the next one. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.pending;
      this.pending = [];
      if (batch.length === 0) return;
      this.flushing = this.commitBatch(batch).finally(() => {
        this.flushing = null;
        if (this.pending.length > 0) this.scheduleFlush();
      });
    });
  }

  /**
   * Commits a batch as one transaction. A deadlock with another process runs it again; an op
   * that makes the transaction fail (a bad value) is found by running each op alone, so it
   * fails by itself; when PostgreSQL is down, every op is told so and nothing is retried.
   */
  private async commitBatch(batch: Pending[], attempt = 1): Promise<void> {
    let committed: { results: unknown[]; events: TaskEvent[] };
    try {
      committed = await this.transact(batch.map((item) => item.op));
    } catch (error) {
      if (isUnavailable(error)) {
        const unavailable = translate(error);
        for (const item of batch) item.reject(unavailable);
      } else if (isTransient(error) && attempt < 5) {
        await this.commitBatch(batch, attempt + 1);
      } else if (batch.length > 1) {
        for (const item of batch) await this.commitBatch([item]);
      } else {
        batch[0]!.reject(error);
      }
      return;
    }
    batch.forEach((item, i) => item.resolve(committed.results[i]));
    if (committed.events.length > 0) this.onCommit(committed.events);
  }

  /**
   * Runs the ops as one transaction. A pooled connection the server had dropped fails the first
   * message, before anything was done: the transaction runs again on another (at most once per
   * pooled connection).
   */
  private async transact(ops: WriteOp[], attempt = 1): Promise<{ results: unknown[]; events: TaskEvent[] }> {
    const client = await this.pool.connect();
    const tx = new WriteTx(client);
    let broken: Error | undefined;
    try {
      const results = await this.runOps(tx, ops);
      await this.finishAndCommit(tx);
      return { results, events: tx.drafts.map((d) => d.event) };
    } catch (error) {
      if (isUnavailable(error)) broken = error as Error;
      else await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      if (tx.begun || !isDropped(error) || attempt > this.pool.options.max) throw error;
    } finally {
      client.release(broken); // a broken connection is dropped from the pool, not reused
    }
    return this.transact(ops, attempt + 1);
  }

  /** Runs the ops in order; neighbouring inserts, and neighbouring applies, share one statement. */
  private async runOps(tx: WriteTx, ops: WriteOp[]): Promise<unknown[]> {
    const results: unknown[] = [];
    for (let i = 0; i < ops.length; ) {
      const op = ops[i]!;
      let end = i + 1;
      while (end < ops.length && (op.kind === 'insert' || op.kind === 'apply') && ops[end]!.kind === op.kind) end++;
      const group = ops.slice(i, end);
      if (op.kind === 'insert') {
        const inserts = group as Array<Extract<WriteOp, { kind: 'insert' }>>;
        const events = await this.insertRecords(tx, inserts.flatMap((o) => o.records), inserts.flatMap((o) => o.values));
        let at = 0;
        for (const o of inserts) {
          results.push(events.slice(at, at + o.records.length).filter((e): e is TaskEvent => e !== null));
          at += o.records.length;
        }
      } else if (op.kind === 'apply') {
        const applies = group as Array<Extract<WriteOp, { kind: 'apply' }>>;
        const events = await this.applyChanges(tx, applies.flatMap((o) => o.changes));
        let at = 0;
        for (const o of applies) {
          results.push(events.slice(at, at + o.changes.length));
          at += o.changes.length;
        }
      } else if (op.kind === 'claim') {
        results.push(await this.claimRuns(tx, op.options));
      } else if (op.kind === 'start') {
        results.push(await this.startRuns(tx, op.ids, op.worker, op.now, op.limits));
      } else {
        results.push(await this.pruneRuns(tx, op.rule, op.limit));
      }
      i = end;
    }
    return results;
  }

  /**
   * The transaction's last statement and its COMMIT, in one round trip: under the advisory lock,
   * draw a block of seqs, write the events and apply the count deltas. Everything is computed
   * before, so the lock is held for two inserts and the commit.
   */
  private async finishAndCommit(tx: WriteTx): Promise<void> {
    const { drafts } = tx;
    if (drafts.length === 0 && tx.counts.size === 0 && tx.finished.size === 0) {
      if (tx.begun) await tx.client.query('COMMIT');
      return;
    }
    const columns = <T>(pick: (d: Draft) => T) => drafts.map(pick);
    const counts = [...tx.counts.values()].filter((c) => c.delta !== 0);
    const finished = [...tx.finished.values()].filter((f) => f.delta !== 0);
    // Two statements in one message need the simple protocol, which takes no parameters.
    const results = (await tx.client.query((tx.begun ? '' : 'BEGIN;\n') + inline(FINISH, [
      EVENT_LOCK_CLASS, this.eventLock, this.eventSequence, drafts.length,
      columns((d) => d.ord),
      columns((d) => d.event.taskId), columns((d) => d.event.type), columns((d) => d.event.state),
      columns((d) => d.event.name), columns((d) => d.event.category), columns((d) => d.event.tenantId),
      columns((d) => d.event.at), columns((d) => d.dataText),
      counts.map((c) => c.tenant), counts.map((c) => c.name), counts.map((c) => c.category), counts.map((c) => c.state),
      counts.map((c) => c.delta),
      drafts.length > 0 ? this.channel : null,
      this.notifier,
      finished.map((f) => f.minute), finished.map((f) => f.tenant), finished.map((f) => f.delta),
    ]) + ';\nCOMMIT')) as unknown as Array<pg.QueryResult<{ base: number }>>;
    tx.begun = true;
    const base = Number(results[results.length - 2]!.rows[0]!.base);
    for (const draft of drafts) draft.event.seq = base + draft.ord;
  }

  // ---- writes ---------------------------------------------------------------------------------

  insert(records: TaskRecord[]): Promise<TaskEvent[]> {
    let values: unknown[][];
    try {
      values = records.map(recordToValues); // params that JSON cannot hold fail here, before any write
    } catch (error) {
      return Promise.reject(error);
    }
    if (records.length === 0) return Promise.resolve([]);
    return this.write({ kind: 'insert', records, values });
  }

  /** One INSERT for every record; a taken id or idempotency key skips its record (no event). */
  private async insertRecords(tx: WriteTx, records: TaskRecord[], values: unknown[][]): Promise<Array<TaskEvent | null>> {
    const { rows } = await this.txQuery<{ id: string }>(tx, INSERT_TASKS, TASK_COLUMNS.map((_, c) => values.map((v) => v[c])));
    const inserted = new Set(rows.map((r) => r.id));
    return records.map((r) => {
      if (!inserted.delete(r.id)) return null; // the first record with an id is the one written
      tx.count(r.tenantId, r.name, r.category, r.state, 1);
      tx.finishedMoved(r.tenantId, null, r.finishedAt);
      const data = r.runAt > r.createdAt ? { eta: new Date(r.runAt).toISOString() } : null;
      return tx.record(r.id, 'enqueued', r.state, r, r.createdAt, data, json(data));
    });
  }

  apply(changes: TaskChange[]): Promise<Array<TaskEvent | null>> {
    // Everything that can throw is checked before the first write, so a batch applies whole.
    let prepared: PreparedChange[];
    try {
      prepared = changes.map(prepareChange);
    } catch (error) {
      return Promise.reject(error);
    }
    if (prepared.length === 0) return Promise.resolve([]);
    return this.write({ kind: 'apply', changes: prepared });
  }

  /**
   * Locks the tasks (in id order, so two processes cannot deadlock here), decides each change in
   * order against its task's state as the batch leaves it, then writes every touched row with
   * one UPDATE.
   */
  private async applyChanges(tx: WriteTx, changes: PreparedChange[]): Promise<Array<TaskEvent | null>> {
    const ids = [...new Set(changes.map((c) => c.change.id))];
    const { rows } = await this.txQuery<Row>(tx, LOCK_HEADS, [ids]);
    const heads = new Map<string, Head>(
      rows.map((r) => [r.id, {
        state: r.state, name: r.name, category: r.category, tenantId: r.tenant_id, cancelRequested: r.cancel_requested, worker: r.worker,
        finishedAt: r.finished_at === null ? null : Number(r.finished_at),
      }]),
    );
    const now = Date.now();
    const writes = new Map<string, { state: TaskState; values: Map<string, unknown> }>();
    const events = changes.map(({ change, fields, values, dataText }) => {
      const head = heads.get(change.id);
      if (!head || !mayApply(change, head)) return null;
      const from = head.state;
      const write = writes.get(change.id) ?? { state: from, values: new Map<string, unknown>() };
      write.state = change.to;
      fields.forEach((field, i) => write.values.set(field, values[i]));
      writes.set(change.id, write);
      if ('cancelRequested' in change.patch) head.cancelRequested = change.patch.cancelRequested ?? null;
      if ('worker' in change.patch) head.worker = change.patch.worker ?? null;
      if ('finishedAt' in change.patch) {
        const finishedAt = change.patch.finishedAt ?? null;
        tx.finishedMoved(head.tenantId, head.finishedAt, finishedAt);
        head.finishedAt = finishedAt;
      }
      head.state = change.to;
      if (change.to !== from) {
        tx.count(head.tenantId, head.name, head.category, from, -1);
        tx.count(head.tenantId, head.name, head.category, change.to, 1);
      }
      return tx.record(change.id, change.event, change.to, head, now, change.data, dataText);
    });
    if (writes.size > 0) await this.updateRows(tx, writes, now);
    return events;
  }

  /**
   * One UPDATE ... FROM unnest for rows that each set their own fields: a field some rows leave
   * alone comes with a mask array saying which rows set it.
   */
  private async updateRows(tx: WriteTx, writes: Map<string, { state: TaskState; values: Map<string, unknown> }>, now: number): Promise<void> {
    const rows = [...writes];
    const fields = [...new Set(rows.flatMap(([, w]) => [...w.values.keys()]))].sort();
    const sets = ['state = u.state', 'updated_at = $3'];
    const inputs = ['$1::text[]', '$2::text[]'];
    const names = ['id', 'state'];
    const values: unknown[] = [rows.map(([id]) => id), rows.map(([, w]) => w.state), now];
    for (const field of fields) {
      const { column, type } = COLUMNS[field]!;
      const everyRow = rows.every(([, w]) => w.values.has(field));
      values.push(rows.map(([, w]) => (w.values.has(field) ? w.values.get(field) : null)));
      inputs.push(`$${values.length}::${type}[]`);
      names.push(column);
      if (everyRow) {
        sets.push(`${column} = u.${column}`);
      } else {
        values.push(rows.map(([, w]) => w.values.has(field)));
        inputs.push(`$${values.length}::bool[]`);
        names.push(`set_${column}`);
        sets.push(`${column} = CASE WHEN u.set_${column} THEN u.${column} ELSE t.${column} END`);
      }
    }
    await this.txQuery(
      tx,
      `UPDATE taskyard_tasks t SET ${sets.join(', ')} FROM unnest(${inputs.join(', ')}) AS u(${names.join(', ')}) WHERE t.id = u.id`,
      values,
    );
  }

  claim(options: ClaimOptions): Promise<TaskRecord[]> {
    return this.write({ kind: 'claim', options });
  }

  /** Picks due runs (skipping rows other transactions hold) and starts them, within the definition's limits. */
  private async claimRuns(tx: WriteTx, options: ClaimOptions): Promise<TaskRecord[]> {
    const room = limited(options.limits) ? await this.limitRoom(tx, options.limits, options.names ?? [], options.now) : null;
    const limit = Math.min(options.limit, room?.total ?? Infinity);
    if (limit <= 0) return [];
    const where = [`state IN ('PENDING', 'RETRY')`, 'run_at <= $1'];
    const values: unknown[] = [options.now];
    const filter = (condition: string, list: string[] | undefined) => {
      if (!list?.length) return;
      values.push(list);
      where.push(condition.replace('?', `$${values.length}::text[]`));
    };
    filter('queue = ANY(?)', options.queues);
    filter('name = ANY(?)', options.names);
    filter('queue <> ALL(?)', options.excludeQueues);
    filter('name <> ALL(?)', options.excludeNames);
    filter('engine = ANY(?)', options.engines);
    filter(`${TENANT} <> ALL(?)`, room?.full());
    const started = options.fair
      ? await this.claimFair(tx, where.join(' AND '), values, limit, room, options.worker, options.now)
      : await this.claimInOrder(tx, where.join(' AND '), values, limit, room, options.worker, options.now);
    if (options.limits?.rate) await this.recordStarts(tx, started, options.now);
    return started;
  }

  /** Due runs in strict priority, run_at, id order. */
  private async claimInOrder(tx: WriteTx, where: string, values: unknown[], limit: number, room: LimitRoom | null, worker: string, now: number): Promise<TaskRecord[]> {
    if (room) {
      const { rows } = await this.txQuery<{ id: string; tenant: string }>(
        tx, `SELECT id, ${TENANT} AS tenant FROM taskyard_tasks WHERE ${where} ORDER BY priority DESC, run_at, id LIMIT $${values.length + 1}`, [...values, limit],
      );
      return this.startPicked(tx, room.take(rows, (r) => r.tenant).map((r) => r.id), worker, now);
    }
    // One statement. The state is checked again on the row itself: should the pick ever see a
    // stale row, the UPDATE still cannot start a run twice.
    const n = values.length;
    const { rows } = await this.txQuery<Row & { claimed_from: TaskState }>(
      tx,
      `WITH picked AS (SELECT id, state FROM taskyard_tasks WHERE ${where}
         ORDER BY priority DESC, run_at, id LIMIT $${n + 1} FOR UPDATE SKIP LOCKED)
       UPDATE taskyard_tasks t SET state = 'STARTED', attempt = t.attempt + 1, worker = $${n + 2}, started_at = $1, updated_at = $1,
         progress = 0, progress_message = NULL
       FROM picked WHERE t.id = picked.id AND t.state IN ('PENDING', 'RETRY')
       RETURNING t.*, picked.state AS claimed_from`,
      [...values, limit, worker],
    );
    rows.sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return this.started(tx, rows, worker, now);
  }

  /**
   * Due runs round-robin across tenants, highest priority first (as in the SQLite store). One
   * statement per round: the top priority with a due run; the tenants waiting there, walked in
   * turn through the fair index (one probe each) from after the tenant served last, wrapping
   * around, `need` of them at most; and each one's oldest due runs, one each,
   * or its share of the slots when there are fewer tenants than slots.
   */
  private async claimFair(tx: WriteTx, where: string, values: unknown[], limit: number, room: LimitRoom | null, worker: string, now: number): Promise<TaskRecord[]> {
    const n = values.length;
    const [below, need, after] = [`$${n + 1}::bigint`, `$${n + 2}::int`, `$${n + 3}::text`];
    const waitingAt = `state IN ('PENDING', 'RETRY') AND priority = (SELECT priority FROM top)`;
    const next = (condition: string) => `(SELECT ${TENANT} FROM taskyard_tasks WHERE ${waitingAt} AND ${condition} ORDER BY priority DESC, ${TENANT} LIMIT 1)`;
    const text = (fromStart: boolean) => `WITH RECURSIVE top AS (
        SELECT priority FROM taskyard_tasks WHERE ${where} AND priority < ${below} ORDER BY priority DESC, run_at, id LIMIT 1),
      later(t, pos) AS (
        SELECT ${next(`${TENANT} ${fromStart ? '>=' : '>'} ${after}`)}, 1
        UNION ALL SELECT ${next(`${TENANT} > later.t`)}, pos + 1 FROM later WHERE later.t IS NOT NULL AND pos < ${need}),
      earlier(t, pos) AS (
        SELECT ${next(`${TENANT} <= ${after}`)}, ${need} + 1 WHERE ${!fromStart}
        UNION ALL SELECT ${next(`${TENANT} > earlier.t AND ${TENANT} <= ${after}`)}, pos + 1 FROM earlier
          WHERE earlier.t IS NOT NULL AND pos < 2 * ${need}),
      tenants AS (SELECT t, pos FROM later WHERE t IS NOT NULL UNION ALL SELECT t, pos FROM earlier WHERE t IS NOT NULL
        ORDER BY pos LIMIT ${need}),
      walk AS (SELECT count(*) AS visited, (SELECT t FROM tenants ORDER BY pos DESC LIMIT 1) AS last FROM tenants)
      SELECT walk.visited, walk.last, h.id, h.tenant, h.run_at, h.pos, (SELECT priority FROM top) AS priority FROM walk
      LEFT JOIN (SELECT tenants.pos, heads.* FROM tenants CROSS JOIN LATERAL (
        SELECT id, ${TENANT} AS tenant, run_at FROM taskyard_tasks
        WHERE ${where} AND priority = (SELECT priority FROM top) AND ${TENANT} = tenants.t
        ORDER BY run_at, id
        LIMIT greatest(1, ceil(${need}::numeric / nullif((SELECT count(*) FROM tenants), 0)))::int) heads) h ON true
      ORDER BY h.pos, h.run_at, h.id`;
    type Found = { visited: number; last: string | null; id: string | null; tenant: string; run_at: number; priority: number | null };
    const started: TaskRecord[] = [];
    let floor = Number.MAX_SAFE_INTEGER;
    // Walks past tenants with nothing to start, at most a few per claim (they cost a statement each).
    let walks = 0;
    while (started.length < limit) {
      const count = limit - started.length;
      const cursor = this.lastServed;
      const { rows } = await this.txQuery<Found>(tx, text(cursor === null), [...values, floor, count, cursor ?? NO_TENANT]);
      const priority = rows[0]?.priority;
      if (priority === null || priority === undefined) break;
      const byTenant = new Map<string, WaitingHead[]>();
      for (const row of rows) {
        if (row.id === null) continue;
        const heads = byTenant.get(row.tenant) ?? [];
        heads.push({ key: row.id, tenant: row.tenant, runAt: Number(row.run_at), id: row.id });
        byTenant.set(row.tenant, heads);
      }
      const picked = roundRobin(byTenant.values(), count);
      const kept = room ? room.take(picked, (h) => h.tenant) : picked;
      if (kept.length === 0) {
        // The tenants walked had nothing to start: walk on from the last of them, unless that was
        // every tenant; then nothing here fits this claim (e.g. all at their limit): a level down.
        if (Number(rows[0]!.visited) >= count && rows[0]!.last !== null && ++walks <= 8) this.lastServed = rows[0]!.last;
        else floor = Number(priority);
        continue;
      }
      const got = await this.startPicked(tx, kept.map((h) => h.id), worker, now);
      // All held by another process's claim: the next claim looks again.
      if (got.length === 0) break;
      this.lastServed = tenantKey(got.at(-1)!.tenantId);
      started.push(...got);
    }
    return started;
  }

  /** Starts the picked runs, in the order given, skipping rows another transaction holds. */
  private async startPicked(tx: WriteTx, ids: readonly string[], worker: string, now: number): Promise<TaskRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.txQuery<Row & { claimed_from: TaskState }>(
      tx,
      `WITH picked AS (SELECT id, state FROM taskyard_tasks WHERE id = ANY($3::text[]) AND state IN ('PENDING', 'RETRY')
         ORDER BY id FOR UPDATE SKIP LOCKED)
       UPDATE taskyard_tasks t SET state = 'STARTED', attempt = t.attempt + 1, worker = $2, started_at = $1, updated_at = $1,
         progress = 0, progress_message = NULL
       FROM picked WHERE t.id = picked.id AND t.state IN ('PENDING', 'RETRY')
       RETURNING t.*, picked.state AS claimed_from`,
      [now, worker, ids],
    );
    const order = new Map(ids.map((id, i) => [id, i]));
    rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    return this.started(tx, rows, worker, now);
  }

  /**
   * Room under a definition's limits. Claims and starts of a limited definition take a lock on
   * its name for the rest of the transaction, so two processes never both see the same room.
   */
  private async limitRoom(tx: WriteTx, limits: RunLimits, names: readonly string[], now: number): Promise<LimitRoom> {
    await this.txQuery(tx, 'SELECT pg_advisory_xact_lock($1, hashtext($2))', [LIMIT_LOCK_CLASS, [...names].sort().join('\u0000')]);
    const running =
      limits.tenantConcurrency === null
        ? []
        : (
            await this.txQuery<{ tenant: string; n: number }>(
              tx, `SELECT ${TENANT} AS tenant, count(*)::int AS n FROM taskyard_tasks WHERE state = 'STARTED' AND name = ANY($1::text[]) GROUP BY 1`, [names],
            )
          ).rows.map((r): [string, number] => [r.tenant, Number(r.n)]);
    let recent = 0;
    if (limits.rate) {
      // Starts older than the window no longer count: the table keeps only the window.
      const { rows } = await this.txQuery<{ n: number }>(
        tx,
        `WITH gone AS (DELETE FROM taskyard_starts WHERE name = ANY($1::text[]) AND at <= $2)
         SELECT count(*)::int AS n FROM taskyard_starts WHERE name = ANY($1::text[]) AND at > $2`,
        [names, now - limits.rate.windowMs],
      );
      recent = Number(rows[0]!.n);
    }
    return new LimitRoom(limits, running, recent);
  }

  /** Counts starts of a rate-limited definition in its window. */
  private async recordStarts(tx: WriteTx, records: readonly TaskRecord[], now: number): Promise<void> {
    if (records.length === 0) return;
    await this.txQuery(
      tx, 'INSERT INTO taskyard_starts (name, at, task_id) SELECT unnest($1::text[]), $2, unnest($3::text[]) ON CONFLICT DO NOTHING',
      [records.map((r) => r.name), now, records.map((r) => r.id)],
    );
  }

  start(ids: readonly string[], worker: string, now: number, limits?: ReadonlyMap<string, RunLimits>): Promise<TaskRecord[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.write({ kind: 'start', ids, worker, now, limits });
  }

  /**
   * Starts the given runs that are still waiting and due. The rows are locked in id order (no
   * deadlock between two workers) and waited for, not skipped: a row held by another transaction
   * is decided once it commits.
   */
  private async startRuns(tx: WriteTx, ids: readonly string[], worker: string, now: number, limits?: ReadonlyMap<string, RunLimits>): Promise<TaskRecord[]> {
    let rateLimited: Set<string> | null = null;
    if (limits?.size) {
      ({ ids, rateLimited } = await this.withinLimits(tx, ids, now, limits));
      if (ids.length === 0) return [];
    }
    const { rows } = await this.txQuery<Row & { claimed_from: TaskState }>(
      tx,
      `WITH picked AS (SELECT id, state FROM taskyard_tasks WHERE id = ANY($3::text[])
         AND state IN ('PENDING', 'RETRY') AND run_at <= $1 ORDER BY id FOR UPDATE)
       UPDATE taskyard_tasks t SET state = 'STARTED', attempt = t.attempt + 1, worker = $2, started_at = $1, updated_at = $1,
         progress = 0, progress_message = NULL
       FROM picked WHERE t.id = picked.id AND t.state IN ('PENDING', 'RETRY') AND t.run_at <= $1
       RETURNING t.*, picked.state AS claimed_from`,
      [now, worker, [...new Set(ids)]],
    );
    const started = this.started(tx, rows, worker, now);
    if (rateLimited?.size) await this.recordStarts(tx, started.filter((r) => rateLimited.has(r.name)), now);
    return started;
  }

  /** Of the runs to start, those their definitions' limits leave room for (names locked in order). */
  private async withinLimits(tx: WriteTx, ids: readonly string[], now: number, limits: ReadonlyMap<string, RunLimits>) {
    const { rows } = await this.txQuery<{ id: string; name: string; tenant: string }>(
      tx,
      `SELECT id, name, ${TENANT} AS tenant FROM taskyard_tasks WHERE id = ANY($1::text[]) AND state IN ('PENDING', 'RETRY') AND run_at <= $2 ORDER BY id`,
      [[...new Set(ids)], now],
    );
    const kept: string[] = [];
    const rateLimited = new Set<string>();
    const names = [...new Set(rows.map((r) => r.name))].sort();
    for (const name of names) {
      const group = rows.filter((r) => r.name === name);
      const own = limits.get(name);
      if (!limited(own)) {
        kept.push(...group.map((r) => r.id));
        continue;
      }
      if (own.rate) rateLimited.add(name);
      const room = await this.limitRoom(tx, own, [name], now);
      kept.push(...room.take(group, (r) => r.tenant).map((r) => r.id));
    }
    return { ids: kept, rateLimited };
  }

  /** Bookkeeping for rows just moved to STARTED: counts and their `started` events. */
  private started(tx: WriteTx, rows: Array<Row & { claimed_from: TaskState }>, worker: string, now: number): TaskRecord[] {
    return rows.map((row) => {
      tx.count(row.tenant_id, row.name, row.category, row.claimed_from, -1);
      tx.count(row.tenant_id, row.name, row.category, 'STARTED', 1);
      const data = { attempt: row.attempt, worker };
      const head = { name: row.name, category: row.category, tenantId: row.tenant_id };
      tx.record(row.id, 'started', 'STARTED', head, now, data, JSON.stringify(data));
      return rowToRecord(row);
    });
  }

  prune(rule: PruneRule, limit: number): Promise<number> {
    return this.write({ kind: 'prune', rule, limit });
  }

  /** Runs this transaction touched are left alone: their events are still to be written. */
  private async pruneRuns(tx: WriteTx, rule: PruneRule, limit: number): Promise<number> {
    const params: unknown[] = [limit, [...tx.touched]];
    const where = pruneWhere(rule, {
      param: (value) => `$${params.push(value)}`,
      nameSet: (names) => `(SELECT unnest($${params.push([...names])}::text[]))`,
    });
    const { rows } = await this.txQuery<{ name: string; category: string; state: TaskState; tenant_id: string | null; finished_at: string | null }>(
      tx, PRUNE.replace('$WHERE', where), params,
    );
    for (const row of rows) {
      tx.count(row.tenant_id, row.name, row.category, row.state, -1);
      tx.finishedMoved(row.tenant_id, row.finished_at === null ? null : Number(row.finished_at), null);
    }
    return rows.length;
  }

  // ---- reads ----------------------------------------------------------------------------------

  async get(id: string, scope: TenantScope): Promise<TaskRecord | null> {
    const [row] = await this.query<Row>('SELECT * FROM taskyard_tasks WHERE id = $1', [id]);
    if (!row || !inScope(row.tenant_id, scope)) return null;
    return rowToRecord(row);
  }

  async getMany(ids: string[]): Promise<TaskRecord[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<Row>('SELECT * FROM taskyard_tasks WHERE id = ANY($1::text[])', [ids]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => byId.get(bindable(id) as string)).filter((r): r is Row => !!r).map(rowToRecord);
  }

  async findByIdempotencyKey(tenantId: string | null, key: string): Promise<TaskRecord | null> {
    // The expression matches the unique index, so this is one index lookup.
    const [row] = await this.query<Row>(
      `SELECT * FROM taskyard_tasks WHERE coalesce(tenant_id, '${NO_TENANT}') = $1 AND idempotency_key = $2`,
      [tenantId ?? NO_TENANT, key],
    );
    return row ? rowToRecord(row) : null;
  }

  async releaseIdempotencyKey(tenantId: string | null, key: string, before: number): Promise<boolean> {
    const rows = await this.query(
      `UPDATE taskyard_tasks SET idempotency_key = NULL
       WHERE coalesce(tenant_id, '${NO_TENANT}') = $1 AND idempotency_key = $2 AND created_at < $3 RETURNING id`,
      [tenantId ?? NO_TENANT, key, before],
    );
    return rows.length > 0;
  }

  async findLive(uniqueKey: string): Promise<TaskRecord | null> {
    const [row] = await this.query<Row>(
      `SELECT * FROM taskyard_tasks WHERE unique_key = $1 AND state IN (${LIVE_STATES.map((s) => `'${s}'`).join(', ')}) AND unique_key IS NOT NULL`,
      [uniqueKey],
    );
    return row ? rowToRecord(row) : null;
  }

  async findCached(cacheKey: string, since: number): Promise<TaskRecord | null> {
    const [row] = await this.query<Row>(
      `SELECT * FROM taskyard_tasks WHERE cache_key = $1 AND finished_at >= $2 AND state = 'SUCCESS' ORDER BY finished_at DESC LIMIT 1`,
      [cacheKey, since],
    );
    return row ? rowToRecord(row) : null;
  }

  async pauses(): Promise<Pause[]> {
    return (await this.query<Parameters<typeof rowToPause>[0]>('SELECT * FROM taskyard_pauses ORDER BY kind, name')).map(rowToPause);
  }

  async setPaused(pause: Pause, paused: boolean): Promise<boolean> {
    const rows = paused
      ? await this.query(
          'INSERT INTO taskyard_pauses (kind, name, paused_at, paused_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING name',
          [pause.kind, pause.name, pause.pausedAt, pause.pausedBy],
        )
      : await this.query('DELETE FROM taskyard_pauses WHERE kind = $1 AND name = $2 RETURNING name', [pause.kind, pause.name]);
    return rows.length > 0;
  }

  async list(filter: ListFilter, scope: TenantScope): Promise<TaskPage> {
    const query = listQuery(this.kysely, filter, scope, 'ILIKE');
    if (!query) return { tasks: [], nextCursor: null };
    return pageOf(await this.built<Row>(query), filter.limit);
  }

  async stats(scope: TenantScope, now: number): Promise<LedgerStats> {
    if (scope !== '*' && scope.length === 0) return emptyStats();
    const tenants = scope === '*' ? null : [...scope];
    const tenantFilter = '($1::text[] IS NULL OR tenant_id = ANY($1::text[]))';
    const [counts, recent, finished, waiting] = await Promise.all([
      this.query<CountRow>(
        `SELECT name, category, state, tenant_id <> $2 AS tenanted, sum(count) AS count FROM taskyard_counts
         WHERE ${tenantFilter} GROUP BY name, category, state, tenanted`,
        [tenants, NO_TENANT],
      ),
      this.query<{ d: number }>(
        `SELECT finished_at - started_at AS d FROM taskyard_tasks
         WHERE finished_at IS NOT NULL AND finished_at >= $2 AND started_at IS NOT NULL AND ${tenantFilter}
         ORDER BY finished_at DESC LIMIT 5000`,
        [tenants, now - 3_600_000],
      ),
      // Whole minutes from the rolling counts, the partial minute before them from the finished index.
      this.query<{ minute: number; hour: number }>(
        `SELECT ${finishedSince('$2', '$3')} AS minute, ${finishedSince('$4', '$5')} AS hour`,
        [tenants, ...finishedWindow(now - 60_000), ...finishedWindow(now - 3_600_000)],
      ),
      this.query<{ queue: string; state: TaskState; due: boolean; n: number }>(
        `SELECT queue, state, run_at <= $2 AS due, count(*) AS n FROM taskyard_tasks
         WHERE state IN ('PENDING', 'RETRY') AND ${tenantFilter} GROUP BY queue, state, due`,
        [tenants, now],
      ),
    ]);
    return addTimingsAndQueues(foldCounts(counts), recent, finished[0], waiting);
  }

  /**
   * The newest committed seq. Taken under the shared form of the event lock, so no transaction
   * is between drawing seqs and committing them: a cursor set from this never skips an event.
   */
  async lastSeq(): Promise<number> {
    const [row] = await this.query<{ seq: number | null }>(
      `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($1::int, $2::int))
       SELECT pg_sequence_last_value($3::regclass) AS seq FROM lock`,
      [EVENT_LOCK_CLASS, this.eventLock, this.eventSequence],
    );
    return row?.seq ?? 0;
  }

  /**
   * Wakes `wake` whenever another store commits events to this ledger (LISTEN/NOTIFY), on a
   * connection of its own that comes back by itself after PostgreSQL does. A notification is only
   * a wake-up (readers go by cursor), so `wake` is also called after each reconnection.
   */
  async listen(wake: () => void): Promise<() => Promise<void>> {
    let client: pg.Client | null = null;
    let stopped = false;
    let retry: NodeJS.Timeout | null = null;
    const connect = async (): Promise<void> => {
      const next = new pg.Client({ connectionString: this.connectionString, application_name: 'taskyard-listener', keepAlive: true });
      const reconnect = () => {
        this.listeners.delete(next);
        next.end().catch(() => {});
        if (stopped || client !== next) return;
        client = null;
        retry = setTimeout(() => void connect().catch(reconnect), 1000);
        retry.unref();
      };
      next.on('error', reconnect);
      next.on('end', reconnect);
      next.on('notification', (message) => message.payload !== this.notifier && wake());
      this.listeners.add(next);
      client = next;
      await next.connect();
      await next.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
      wake();
    };
    try {
      await connect();
    } catch (error) {
      stopped = true;
      if (client) await (client as pg.Client).end().catch(() => {});
      throw translate(error);
    }
    return async () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      const current = client;
      client = null;
      if (current) {
        this.listeners.delete(current);
        await current.end().catch(() => {});
      }
    };
  }

  // ---- peers, leadership, cursors ---------------------------------------------------------------
  // Small, rare writes: each is one autocommitted statement, outside the group commit.

  async heartbeat(w: WorkerRow): Promise<void> {
    await this.query(
      `INSERT INTO taskyard_workers (id, host, pid, engine, concurrency, started_at, heartbeat_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET concurrency = excluded.concurrency,
       heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`,
      [w.id, w.host, w.pid, w.engine, w.concurrency, w.startedAt, w.heartbeatAt, w.expiresAt],
    );
  }

  async removeWorker(id: string): Promise<void> {
    await this.query('DELETE FROM taskyard_workers WHERE id = $1', [id]);
  }

  async workers(): Promise<WorkerRow[]> {
    const rows = await this.query<{ id: string; host: string; pid: number; engine: string; concurrency: number; started_at: number; heartbeat_at: number; expires_at: number }>(
      'SELECT * FROM taskyard_workers ORDER BY started_at, id',
    );
    return rows.map((r) => ({
      id: r.id, host: r.host, pid: r.pid, engine: r.engine, concurrency: r.concurrency,
      startedAt: r.started_at, heartbeatAt: r.heartbeat_at, expiresAt: r.expires_at,
    }));
  }

  /** One upsert: it writes (and returns a row) only when the role is free, expired, ours, or held by the dead. */
  async lead(role: string, holder: string, ttlMs: number, now: number, deadHolders: readonly string[] = []): Promise<boolean> {
    const rows = await this.query(
      `INSERT INTO taskyard_leaders (role, holder, expires_at) VALUES ($1, $2, $3)
       ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE taskyard_leaders.holder = excluded.holder OR taskyard_leaders.expires_at < $4 OR taskyard_leaders.holder = ANY($5::text[])
       RETURNING holder`,
      [role, holder, now + ttlMs, now, [...deadHolders]],
    );
    return rows.length === 1;
  }

  async resign(role: string, holder: string): Promise<void> {
    await this.query('DELETE FROM taskyard_leaders WHERE role = $1 AND holder = $2', [role, holder]);
  }

  async cursor(name: string): Promise<number | null> {
    const [row] = await this.query<{ seq: number }>('SELECT seq FROM taskyard_cursors WHERE name = $1', [name]);
    return row ? row.seq : null;
  }

  async saveCursor(name: string, seq: number): Promise<void> {
    await this.query(
      `INSERT INTO taskyard_cursors (name, seq, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
      [name, seq, Date.now()],
    );
  }

  // ---- schedules: small, rare writes, each one autocommitted statement ----------------------------

  async schedules(): Promise<ScheduleRow[]> {
    return (await this.query<Record<string, unknown>>(SCHEDULE_SQL.list)).map(rowToSchedule);
  }

  async schedule(name: string): Promise<ScheduleRow | null> {
    const [row] = await this.query<Record<string, unknown>>(numbered(SCHEDULE_SQL.get), [name]);
    return row ? rowToSchedule(row) : null;
  }

  async insertSchedule(row: ScheduleRow): Promise<boolean> {
    return (await this.query(`${numbered(SCHEDULE_SQL.insert)} RETURNING name`, scheduleValues(row))).length === 1;
  }

  async updateSchedule(name: string, change: ScheduleChange): Promise<ScheduleRow | null> {
    const { text, values } = scheduleUpdate(name, change);
    const [row] = await this.query<Record<string, unknown>>(`${numbered(text)} RETURNING *`, values, false);
    return row ? rowToSchedule(row) : null;
  }

  async deleteSchedule(name: string): Promise<boolean> {
    return (await this.query(`${numbered(SCHEDULE_SQL.delete)} RETURNING name`, [name])).length === 1;
  }

  async advanceSchedule(name: string, fromTick: number, advance: ScheduleAdvance): Promise<boolean> {
    const rows = await this.query(`${numbered(SCHEDULE_SQL.advance)} RETURNING name`, scheduleAdvanceValues(name, fromTick, advance));
    return rows.length === 1;
  }

  async findStarted(worker?: string): Promise<TaskRecord[]> {
    const rows = await this.query<Row>(`SELECT * FROM taskyard_tasks WHERE state = 'STARTED' AND ($1::text IS NULL OR worker = $1)`, [worker ?? null]);
    return rows.map(rowToRecord);
  }

  async backlog(tenantIds: readonly string[]): Promise<Map<string, number>> {
    const rows = await this.query<{ tenant_id: string; n: number }>(
      `SELECT tenant_id, sum(count)::bigint AS n FROM taskyard_counts WHERE state IN ('PENDING', 'RETRY') AND tenant_id = ANY($1::text[]) GROUP BY tenant_id`,
      [[...tenantIds]],
    );
    return new Map(rows.map((r) => [r.tenant_id, Number(r.n)]));
  }

  async nextRunAt(): Promise<number | null> {
    const [row] = await this.query<{ t: number | null }>(`SELECT min(run_at) AS t FROM taskyard_tasks WHERE state IN ('PENDING', 'RETRY')`);
    return row?.t ?? null;
  }

  async events(query: EventQuery, scope: TenantScope): Promise<TaskEvent[]> {
    if (scope !== '*' && scope.length === 0) return [];
    if (query.taskId) return this.taskEvents({ ...query, taskId: query.taskId }, scope);
    let q = this.kysely.selectFrom('taskyard_events').selectAll().where('seq', '>', query.afterSeq);
    if (scope !== '*') q = q.where('tenant_id', 'in', [...scope]);
    if (query.tenantId) q = q.where('tenant_id', '=', query.tenantId);
    if (query.name) q = q.where('name', '=', query.name);
    if (query.category) q = q.where('category', '=', query.category);
    const rows = await this.built<EventRow>(q.orderBy('seq').limit(query.limit));
    return rows.map(rowToEvent);
  }

  async eventsOfTypes(query: EventTypesQuery): Promise<EventTypesPage> {
    const rows = await this.query<EventRow & { newest: number | null }>(EVENTS_OF_TYPES, [query.afterSeq, [...query.types], query.limit]);
    return {
      events: rows.filter((row) => row.seq !== null).map(rowToEvent),
      through: Math.max(query.afterSeq, Number(rows[0]?.newest ?? 0)),
    };
  }

  /** One task's events after `afterSeq`, in seq order, through the (task_id, seq) index. */
  private async taskEvents(query: EventQuery & { taskId: string }, scope: TenantScope): Promise<TaskEvent[]> {
    const rows = await this.query<EventRow>(TASK_EVENTS, [query.taskId, query.afterSeq, query.limit]);
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

  /** Commits what is queued, waits for the transaction in flight, then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing || this.pending.length > 0 || this.flushScheduled) {
      await (this.flushing ?? new Promise((resolve) => setImmediate(resolve)));
    }
    this.closed = true;
    await Promise.all([...this.listeners].map((client) => client.end().catch(() => {})));
    await this.pool.end();
  }
}

const INSERT_TASKS = `INSERT INTO taskyard_tasks (${TASK_COLUMNS.map(([c]) => c).join(', ')})
  SELECT * FROM unnest(${TASK_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
  ON CONFLICT DO NOTHING RETURNING id`;

const LOCK_HEADS = `SELECT id, state, name, category, tenant_id, cancel_requested, worker, finished_at FROM taskyard_tasks
  WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/**
 * $1/$2 the advisory lock, $3 the identity sequence, $4 how many events, $5-$13 the events,
 * $14-$18 the count deltas, $19 the channel to notify (delivered at commit), $20 this store's id
 * as the payload, $21-$23 the finished-per-minute deltas. `lock` and `block` are
 * materialized and every write reads `block`, so nothing is written before the lock is held.
 */
const FINISH = `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($1::int, $2::int)),
  block AS MATERIALIZED (
    SELECT CASE WHEN $4::bigint = 0 THEN 0 ELSE setval($3::regclass, nextval($3::regclass) + $4::bigint - 1) - $4::bigint END AS base
    FROM lock),
  events AS (
    INSERT INTO taskyard_events (seq, task_id, type, state, name, category, tenant_id, at, data) OVERRIDING SYSTEM VALUE
    SELECT b.base + e.ord, e.task_id, e.type, e.state, e.name, e.category, e.tenant_id, e.at, e.data
    FROM block b, unnest($5::int[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::text[])
      AS e(ord, task_id, type, state, name, category, tenant_id, at, data)),
  counts AS (
    INSERT INTO taskyard_counts AS c (tenant_id, name, category, state, count)
    SELECT n.tenant_id, n.name, n.category, n.state, n.delta
    FROM block, unnest($14::text[], $15::text[], $16::text[], $17::text[], $18::bigint[]) AS n(tenant_id, name, category, state, delta)
    ON CONFLICT (tenant_id, name, state) DO UPDATE SET count = c.count + excluded.count),
  finished AS (
    INSERT INTO taskyard_finished AS f (minute, tenant_id, count)
    SELECT n.minute, n.tenant_id, n.delta
    FROM block, unnest($21::bigint[], $22::text[], $23::bigint[]) AS n(minute, tenant_id, delta)
    ON CONFLICT (minute, tenant_id) DO UPDATE SET count = f.count + excluded.count)
  SELECT base, CASE WHEN $19::text IS NOT NULL THEN pg_notify($19::text, $20::text) END AS notified FROM block`;

/** Finished runs (skipping rows other transactions hold, and runs this one wrote events for), and their events. */
/** $1 at most this many, $2 ids to leave alone; `$WHERE` is the rule (see store/prune.ts). */
const PRUNE = `WITH gone AS (
    DELETE FROM taskyard_tasks WHERE id IN (
      SELECT id FROM taskyard_tasks WHERE $WHERE AND id <> ALL($2::text[])
      LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, name, category, state, tenant_id, finished_at),
  dropped AS (DELETE FROM taskyard_events WHERE task_id IN (SELECT id FROM gone))
  SELECT name, category, state, tenant_id, finished_at FROM gone`;

/** The parameters of `finishedSince` for a window starting at `since`: that time, and the first whole minute after it. */
const finishedWindow = (since: number): [number, number] => {
  const firstWhole = Math.floor(since / FINISHED_BUCKET_MS) + 1;
  return [since, firstWhole];
};

/** Runs finished since `$since` (tenant scope in $1): rolling counts from minute `$first` on, plus the runs before it. */
const finishedSince = (since: string, first: string) => `((SELECT coalesce(sum(count), 0) FROM taskyard_finished
    WHERE minute >= ${first}::bigint AND ($1::text[] IS NULL OR tenant_id = ANY($1::text[])))
  + (SELECT count(*) FROM taskyard_tasks WHERE finished_at IS NOT NULL AND finished_at >= ${since}::bigint
    AND finished_at < ${first}::bigint * ${FINISHED_BUCKET_MS} AND ($1::text[] IS NULL OR tenant_id = ANY($1::text[]))))`;

/** $1 the task, $2 after this seq, $3 at most this many. */
/** `?` placeholders as PostgreSQL's `$1, $2, ...` (for statements shared with the SQLite store). */
function numbered(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

/**
 * $1 after this seq, $2 of these types, $3 at most this many; one statement, so `newest` is from
 * the page's own snapshot (seqs commit in order under the event lock, so all below it are seen).
 * Always one row: a row of nulls but `newest` when no event matches.
 */
const EVENTS_OF_TYPES = `SELECT (SELECT max(seq) FROM taskyard_events) AS newest, e.*
  FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT * FROM taskyard_events WHERE seq > $1 AND type = ANY($2::text[]) ORDER BY seq LIMIT $3) AS e ON true
  ORDER BY e.seq`;

const TASK_EVENTS = `SELECT * FROM taskyard_events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`;
