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
  since?: number;
  until?: number;
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
}

export interface LedgerStats {
  byState: Record<TaskState, number>;
  byCategory: Record<string, Record<TaskState, number>>;
  byName: Record<string, Record<TaskState, number>>;
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
  findByIdempotencyKey(key: string): Promise<TaskRecord | null>;
  list(filter: ListFilter, scope: TenantScope): Promise<TaskPage>;
  stats(scope: TenantScope, now: number): Promise<LedgerStats>;
  /** Moves due PENDING/RETRY runs to STARTED, highest priority first. Used by the local engine. */
  claim(options: ClaimOptions): Promise<TaskRecord[]>;
  /** Runs left STARTED by a process that is gone. */
  findStarted(worker?: string): Promise<TaskRecord[]>;
  /** Earliest `runAt` of a waiting run, to know when to wake up. */
  nextRunAt(): Promise<number | null>;
  events(query: EventQuery, scope: TenantScope): Promise<TaskEvent[]>;
  /** Deletes finished runs (and their events) that ended before `before`. Returns how many. */
  prune(before: number, limit: number): Promise<number>;
  close(): Promise<void>;
}
