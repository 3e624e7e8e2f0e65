import type { JobsOptions } from 'bullmq';
import type { TaskRecord } from '../../core/record.js';

/** What a job carries: the run's id, and its queue so a worker can hold a paused queue's jobs without a ledger read. Everything else is read from the ledger when it starts. */
export interface JobData {
  id: string;
  /** Absent on jobs dispatched before queues were carried. */
  queue?: string;
}

/**
 * One job per attempt: `<task id>.<attempt>`. Dispatch is idempotent (BullMQ ignores an add with
 * an existing job id), and a retry, being the next attempt, is a new job.
 */
export function jobIdOf(record: Pick<TaskRecord, 'id' | 'attempt'>): string {
  return `${record.id}.${record.attempt + 1}`;
}

/** The job of the attempt a STARTED run is in (its `attempt` already counts it). */
export function runningJobIdOf(record: Pick<TaskRecord, 'id' | 'attempt'>): string {
  return `${record.id}.${record.attempt}`;
}

/** The run a job id names, or null for a job Taskyard did not name. */
export function taskIdOfJob(jobId: string): string | null {
  const match = /^(.+)\.\d+$/.exec(jobId);
  return match ? match[1]! : null;
}

/**
 * BullMQ runs priority 1 first and 2,097,152 last (and jobs without one before all of them);
 * Taskyard runs the higher priority first, default 0. Every job gets a priority around the middle
 * of BullMQ's range, so the order of Taskyard's priorities holds whatever their sign.
 */
const PRIORITY_MIDDLE = 1_048_576;
const PRIORITY_MAX = 2_097_152;

export function bullPriorityOf(priority: number): number {
  return Math.max(1, Math.min(PRIORITY_MAX, PRIORITY_MIDDLE - Math.round(priority)));
}

/**
 * The job for a run's next attempt. Retries live in the ledger (the worker records RETRY with its
 * backoff and dispatches the next attempt as a delayed job), so BullMQ makes one attempt only.
 * Finished jobs are removed at once: Redis holds only work still to do.
 */
export function jobOf(record: TaskRecord, now: number): { name: string; data: JobData; opts: JobsOptions } {
  return {
    name: record.name,
    data: { id: record.id, queue: record.queue },
    opts: {
      jobId: jobIdOf(record),
      delay: Math.max(0, record.runAt - now),
      priority: bullPriorityOf(record.priority),
      attempts: 1,
      removeOnComplete: true,
      removeOnFail: true,
    },
  };
}
