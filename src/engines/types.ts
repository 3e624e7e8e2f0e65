import type { AnyTaskDefinition } from '../core/definition.js';
import type { TaskEvent, TaskEventType } from '../core/events.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskRegistry } from '../core/registry.js';
import type { Broker } from '../maintenance/broker.js';
import type { MaintenanceService } from '../maintenance/service.js';
import type { TaskStore } from '../store/types.js';
import type { RecordLimits } from './execution.js';

export interface Logger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
}

/** What an engine is given when it starts: the ledger, the definitions and a logger. */
export interface EngineContext {
  store: TaskStore;
  registry: TaskRegistry;
  logger: Logger;
  /** Module that exports the task definitions, for runs outside this thread or process. */
  tasksModule?: string;
  /** Size limits on results and messages (defaults: DEFAULT_LIMITS). */
  limits?: RecordLimits;
  /** This process's id among the peers sharing the ledger: the owner recorded on every run it claims. */
  workerId?: string;
}

export interface CancelRequest {
  hard: boolean;
  reason: string | null;
}

export interface ActiveRun {
  id: string;
  name: string;
  /** Whose run it is, so a tenant-limited caller sees only its own. */
  tenantId: string | null;
  params: unknown;
  startedAt: number;
}

export interface WorkerInfo {
  /** Celery-style worker name, e.g. `local@hostname`. */
  name: string;
  engine: string;
  /** The machine it runs on (set for workers of other processes). */
  host?: string;
  pid: number;
  concurrency: number;
  active: ActiveRun[];
  /** Runs this worker has finished since it started. */
  processed: number;
  /** The same count for each tenant (tenant-less runs are left out). */
  processedByTenant: Record<string, number>;
  startedAt: number;
}

export interface EngineInfo {
  workers: WorkerInfo[];
}

/**
 * How tasks are executed. The ledger insert happens before `enqueue`; the engine then owns
 * delivery. Modelled on Oban's engine behaviour: insert, fetch, complete/error, cancel.
 */
export interface Engine {
  readonly name: string;
  /** Most runs at once in this process, if the engine runs any here. */
  readonly concurrency?: number;
  start(context: EngineContext): Promise<void>;
  /** New runs are in the ledger; deliver them. */
  enqueue(records: TaskRecord[]): Promise<void>;
  /** Cancel a run that is STARTED. Returns false if this engine does not hold the run. */
  cancelRunning(record: TaskRecord, request: CancelRequest): Promise<boolean>;
  /** A waiting run was revoked in the ledger; forget it. */
  forget(record: TaskRecord): Promise<void>;
  info(): Promise<EngineInfo>;
  /** Stop taking work; let running work finish for up to `graceMs`, then requeue the rest. */
  stop(graceMs: number): Promise<void>;
  /** A queue or task type was paused or resumed through this process: honour it now (others see it within their refresh). */
  pausesChanged?(): Promise<void>;
  /** Engines may react to committed events (e.g. a cancel requested by another process). */
  onEvents?(events: TaskEvent[]): void;
  /** The event types `onEvents` acts on (absent: all), so a process that needs no others reads no others. */
  readonly eventTypes?: readonly TaskEventType[];
  /**
   * The engine that will run a new run of this definition, recorded on the run (the hybrid
   * engine routes each definition). Throws a `backend_unavailable` error when it cannot take the
   * run now, so the launch is refused before anything is written.
   */
  engineFor?(definition: AnyTaskDefinition): string;
  /** Checks what the engine depends on beyond the ledger (Redis answers PING); rejects, saying what is down. */
  ping?(): Promise<void>;
  /** Maintenance duties the engine needs, run by the runtime (e.g. the leader's dispatch sweeper). */
  services?(context: Pick<EngineContext, 'store' | 'logger'>): MaintenanceService[];
  /** The external broker holding this engine's jobs (BullMQ), for the status sync and orphan cleaner. */
  broker?(): Broker | undefined;
}
