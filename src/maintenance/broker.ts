import type { TaskRecord } from '../core/record.js';
import type { Dispatcher } from './sweeper.js';

/** Where a broker keeps jobs that wait for a worker. */
export type WaitingKind = 'waiting' | 'prioritized' | 'delayed';
export const WAITING_KINDS: readonly WaitingKind[] = ['waiting', 'prioritized', 'delayed'];

/** A job as the broker holds it: its own id, and the run it names (null when it names none). */
export interface BrokerJob {
  jobId: string;
  taskId: string | null;
}

/**
 * An external broker holding jobs for runs (BullMQ), as maintenance sees it: enough to reconcile
 * the broker with the ledger, nothing of Redis. The engine implements it.
 */
export interface Broker extends Dispatcher {
  /** Of these STARTED runs, those whose current attempt's job the broker no longer holds. */
  withoutJob(records: TaskRecord[]): Promise<TaskRecord[]>;
  /** Up to `count` waiting jobs of one kind, from position `start` (oldest first). */
  waitingJobs(kind: WaitingKind, start: number, count: number): Promise<BrokerJob[]>;
  /** Removes these waiting jobs; returns how many went. */
  removeJobs(jobIds: readonly string[]): Promise<number>;
}
