export { defineTask } from './core/definition.js';
export type { TaskContext, TaskDefinition, TaskOptions, AnyTaskDefinition, Route, Isolation } from './core/definition.js';
export { TaskRegistry, type CategoryRule } from './core/registry.js';
export {
  TaskyardError,
  NonRetryableError,
  SoftTimeoutError,
  HardTimeoutError,
  CancelledError,
} from './core/errors.js';
export { TASK_STATES, LIVE_STATES, TERMINAL_STATES, isTerminal, type TaskState } from './core/states.js';
export type { TaskRecord } from './core/record.js';
export type { TaskEvent, TaskEventType } from './core/events.js';
export type { RetryPolicy } from './core/retry.js';
export { SqliteStore } from './store/sqlite.js';
export { PostgresStore, type PostgresStoreOptions } from './store/postgres.js';
export { createStore } from './store/index.js';
export type { TaskStore, TenantScope, ListFilter, LedgerStats, Pause, PauseKind } from './store/types.js';
export { LocalEngine, type LocalEngineOptions } from './engines/local/engine.js';
export { BullMQEngine, type BullMQEngineOptions } from './engines/bullmq/engine.js';
export { createWorker, type WorkerOptions } from './engines/bullmq/worker.js';
export { HybridEngine, type HybridEngineOptions, type RedisFallback } from './engines/hybrid.js';
export type { Engine, EngineInfo, WorkerInfo } from './engines/types.js';
export { Taskyard, createTaskyard } from './taskyard.js';
export type { TaskyardOptions, SubmitOptions, SubmitRequest, Hooks, CancelOptions, Stats } from './taskyard.js';
export type { MaintenanceOptions } from './maintenance/duties.js';
export type { PrunerOptions, PruneReport } from './maintenance/pruner.js';
export type { Retention, RetentionByState, RetentionPolicy } from './maintenance/retention.js';
export type { StatusSyncOptions, StatusSyncReport } from './maintenance/status-sync.js';
export type { OrphanCleanerOptions, OrphanReport } from './maintenance/orphans.js';
export type { PruneRule, FinishedState } from './store/types.js';
export type { ScheduleDefinition } from './schedules/definition.js';
export type { CatchUp } from './schedules/catch-up.js';
export type { ScheduleView, ScheduleUpdate } from './schedules/schedules.js';
export type { SchedulerOptions } from './maintenance/scheduler.js';
export type { Launched, LaunchOutcome, BulkFilter, BulkOptions, BulkReport, QueueInfo } from './taskyard.js';
