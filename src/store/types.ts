import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskState } from '../core/states.js';

/**
 * Which tenants a caller may see. Every store query takes one, so tenant isolation is
 * enforced in one place (the query), never route by route.
 */
export type TenantScope = '*' | readonly string[];

export interface ListFilter {
  names?: string[];
  categories?: string[];
  tenantId?: string;
  states?: TaskState[];
  queues?: string[];
  since?: number;
  until?: number;
  /** Free text: an exact task id, or a substring of the error or the params' JSON. */
  search?: string;
  limit: number;
  /** Opaque; the last id of the previous page. */
  cursor?: string;
}

export interface TaskPage {
  tasks: TaskRecord[];
  nextCursor: string | null;
}

/**
 * One compare-and-set transition. It applies only if the task is in a state that may go to
 * `to` (per core/states) and, when given, in one of `from`. `to` equal to the current state
 * with `event: 'progress'` updates fields without a transition.
 */
export interface TaskChange {
  id: string;
  to: TaskState;
  from?: readonly TaskState[];
  patch: Partial<Omit<TaskRecord, 'id' | 'state'>>;
  event: TaskEventType;
  data?: Record<string, unknown> | null;
  /** Applies only while the run is owned by this worker (a rescuer must not touch a reclaimed run). */
  worker?: string;
}

/** A live process, as its heartbeat row says. */
export interface WorkerRow {
  id: string;
  host: string;
  pid: number;
  engine: string;
  concurrency: number;
  startedAt: number;
  heartbeatAt: number;
  /** Past this time without a heartbeat, the process is taken for dead and its runs are rescued. */
  expiresAt: number;
}

export interface ClaimOptions {
  limit: number;
  now: number;
  worker: string;
  /** Only these queues / definitions; all when absent. */
  queues?: string[];
  names?: string[];
  /** Queues and definitions that have their own concurrency limit and are claimed apart. */
  excludeQueues?: string[];
  excludeNames?: string[];
  /** Only runs recorded for these engines (a hybrid's local half leaves its workers' runs alone). */
  engines?: string[];
  /**
   * Round-robin across tenants: within the top priority, every tenant's first due run before any
   * tenant's second (runs without a tenant take turns as one tenant). Otherwise strict
   * priority, run_at, id order.
   */
  fair?: boolean;
  /** Limits of the one definition this claim is for (`names` holds its name alone). */
  limits?: RunLimits;
}

/**
 * A definition's ledger-wide limits, checked inside the transaction that starts runs, so they
 * hold across every process sharing the ledger.
 */
export interface RunLimits {
  /** Most STARTED runs per tenant (tenant-less runs are not limited). */
  tenantConcurrency: number | null;
  /** Most starts per sliding window of `windowMs`. */
  rate: { max: number; windowMs: number } | null;
}

/** Whether runs belong to a tenant: a label of bounded cardinality, unlike the tenant id. */
export type TenantClass = 'tenant' | 'none';

export interface LedgerStats {
  byState: Record<TaskState, number>;
  byCategory: Record<string, Record<TaskState, number>>;
  byName: Record<string, Record<TaskState, number>>;
  /** The same counts by name, apart for runs that have a tenant and runs that have none. */
  byTenantClass: Record<TenantClass, Record<string, Record<TaskState, number>>>;
  durations: { p50: number | null; p95: number | null; samples: number };
  /** Runs finished in the last minute and last hour. */
  throughput: { lastMinute: number; lastHour: number; perSecond: number };
  queueDepth: { pending: number; delayed: number; retry: number; byQueue: Record<string, number> };
}

export interface EventQuery {
  afterSeq: number;
  limit: number;
  taskId?: string;
  tenantId?: string;
  name?: string;
  category?: string;
}

export interface EventTypesQuery {
  afterSeq: number;
  types: readonly TaskEventType[];
  limit: number;
}

export interface EventTypesPage {
  events: TaskEvent[];
  /** The newest seq visible to the read (`afterSeq` when there is none newer). */
  through: number;
}

export type FinishedState = 'SUCCESS' | 'FAILURE' | 'REVOKED';

/**
 * One line of a retention policy, as the store applies it: runs in `state` that finished before
 * `before`, of the definitions in `names` (every definition when absent) except `exceptNames`.
 */
export interface PruneRule {
  state: FinishedState;
  before: number;
  names?: readonly string[];
  exceptNames?: readonly string[];
}

/** A schedule (see src/schedules): what it launches, when, and where it has got to. */
export interface ScheduleRow {
  name: string;
  task: string;
  params: unknown;
  /** The tenant of the runs it launches (from the params), for tenant-scoped reads. */
  tenantId: string | null;
  cron: string | null;
  /** An interval as written (`'2m'`, `'90000ms'`); exactly one of cron and every is set. */
  every: string | null;
  timezone: string | null;
  overlap: boolean;
  catchUp: 'latest' | 'none' | 'all';
  enabled: boolean;
  /** `code`: from createTaskyard's options, upserted at start; `api`: made through the API. */
  source: 'code' | 'api';
  createdAt: number;
  updatedAt: number;
  /** Every tick at or before this time has been handled (launched or skipped). */
  lastTick: number;
  lastTaskId: string | null;
  lastRunAt: number | null;
  /** Ticks skipped so far (missed while down, or while the previous run was live), and why the last one was. */
  skipped: number;
  lastSkipReason: string | null;
  lastSkipAt: number | null;
}

/** Definition fields a schedule update may set. */
export type ScheduleChange = Partial<
  Pick<ScheduleRow, 'task' | 'params' | 'tenantId' | 'cron' | 'every' | 'timezone' | 'overlap' | 'catchUp' | 'enabled' | 'source' | 'lastTick'>
> & { updatedAt: number };

/** A schedule moving past one tick: the run it launched, or the ticks it skipped on the way. */
export interface ScheduleAdvance {
  tick: number;
  at: number;
  taskId: string | null;
  skipped: number;
  skipReason: string | null;
}

/** What can be paused: a whole queue, or one task type (definition name). */
export type PauseKind = 'queue' | 'task_type';

export interface Pause {
  kind: PauseKind;
  name: string;
  pausedAt: number;
  /** Who paused it (an API key's id), when known. */
  pausedBy: string | null;
}

export interface TaskStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Receives every committed event, in sequence order, once; the runtime fans them out. */
  onCommit: (events: TaskEvent[]) => void;
  migrate(): Promise<void>;
  /** Writes new PENDING records and their `enqueued` events, group-committed. */
  insert(records: TaskRecord[]): Promise<TaskEvent[]>;
  /** Applies transitions, group-committed; returns the events of those that applied, in order. */
  apply(changes: TaskChange[]): Promise<Array<TaskEvent | null>>;
  get(id: string, scope: TenantScope): Promise<TaskRecord | null>;
  getMany(ids: string[]): Promise<TaskRecord[]>;
  /** The run launched for `tenantId` (null: tenant-less) with this idempotency key. */
  findByIdempotencyKey(tenantId: string | null, key: string): Promise<TaskRecord | null>;
  /**
   * Frees an idempotency key whose run was launched before `before` (its window is over), so a new
   * launch may take it. Returns whether a run gave it up.
   */
  releaseIdempotencyKey(tenantId: string | null, key: string, before: number): Promise<boolean>;
  /** The live (PENDING, STARTED or RETRY) run holding this unique key. */
  findLive(uniqueKey: string): Promise<TaskRecord | null>;
  /** The newest SUCCESS run with this cache key that finished at or after `since`. */
  findCached(cacheKey: string, since: number): Promise<TaskRecord | null>;
  /** Every paused queue and task type. */
  pauses(): Promise<Pause[]>;
  /** Pauses (or, with `paused` false, resumes) a queue or task type. Returns whether anything changed. */
  setPaused(pause: Pause, paused: boolean): Promise<boolean>;
  list(filter: ListFilter, scope: TenantScope): Promise<TaskPage>;
  stats(scope: TenantScope, now: number): Promise<LedgerStats>;
  /** Moves due PENDING/RETRY runs to STARTED, highest priority first. Used by the local engine. */
  claim(options: ClaimOptions): Promise<TaskRecord[]>;
  /**
   * Starts these runs for `worker` if each is still waiting and due (PENDING or RETRY, `runAt` at
   * or before `now`): a compare-and-set, so a run is started once however many deliveries of it
   * arrive, and a revoked or finished run never starts. A run whose definition (by name) has
   * `limits` that are full stays waiting. Returns the runs it started. Used by engines that
   * deliver runs themselves (BullMQ).
   */
  start(ids: readonly string[], worker: string, now: number, limits?: ReadonlyMap<string, RunLimits>): Promise<TaskRecord[]>;
  /** Runs left STARTED by a process that is gone. */
  findStarted(worker?: string): Promise<TaskRecord[]>;
  /** Waiting (PENDING or RETRY) runs of each of these tenants, from the ledger's counts. */
  backlog(tenantIds: readonly string[]): Promise<Map<string, number>>;
  /** Earliest `runAt` of a waiting run, to know when to wake up. */
  nextRunAt(): Promise<number | null>;
  events(query: EventQuery, scope: TenantScope): Promise<TaskEvent[]>;
  /**
   * The event feed's read when a process needs only some event types: the first `limit` events
   * after `afterSeq` of these types, and `through`, the newest seq the same statement saw (every
   * event up to it is committed and was considered), so the reader's cursor moves past the rest.
   */
  eventsOfTypes(query: EventTypesQuery): Promise<EventTypesPage>;
  /** The newest event seq committed so far (0 for an empty log). */
  lastSeq(): Promise<number>;
  /** Writes (or renews) a process's row. */
  heartbeat(worker: WorkerRow): Promise<void>;
  removeWorker(id: string): Promise<void>;
  /** Every worker row, live or expired. */
  workers(): Promise<WorkerRow[]>;
  /**
   * Takes or renews leadership of `role` for `ttlMs`. It is granted when the role is free, its
   * lease has expired, it is already ours, or its holder is one of `deadHolders`.
   */
  lead(role: string, holder: string, ttlMs: number, now: number, deadHolders?: readonly string[]): Promise<boolean>;
  resign(role: string, holder: string): Promise<void>;
  /**
   * Optional push of "something was committed" from other processes (PostgreSQL LISTEN/NOTIFY).
   * Only a wake-up: listeners read events by cursor. Returns a function that stops listening.
   */
  listen?(wake: () => void): Promise<() => Promise<void>>;
  /** A durable consumer's position in the event log (null before its first save). */
  cursor(name: string): Promise<number | null>;
  saveCursor(name: string, seq: number): Promise<void>;
  /**
   * Deletes up to `limit` finished runs (with their events) that the rule selects, in one commit.
   * Returns how many. The pruner calls it batch after batch, one rule of its policy at a time.
   */
  prune(rule: PruneRule, limit: number): Promise<number>;
  // ---- schedules ----
  /** Every schedule, by name. */
  schedules(): Promise<ScheduleRow[]>;
  schedule(name: string): Promise<ScheduleRow | null>;
  /** Adds a schedule; false when the name is taken. */
  insertSchedule(row: ScheduleRow): Promise<boolean>;
  /** Changes a schedule; the row as changed, or null when there is none of that name. */
  updateSchedule(name: string, change: ScheduleChange): Promise<ScheduleRow | null>;
  deleteSchedule(name: string): Promise<boolean>;
  /**
   * Moves a schedule past a tick if its last tick is still `fromTick` (a compare-and-set, so two
   * schedulers cannot both handle a tick). Returns whether it moved.
   */
  advanceSchedule(name: string, fromTick: number, advance: ScheduleAdvance): Promise<boolean>;
  close(): Promise<void>;
}
