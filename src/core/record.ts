import type { Route } from './definition.js';
import type { TaskState } from './states.js';

/** One run of a task definition, as the ledger keeps it. Times are epoch milliseconds. */
export interface TaskRecord {
  id: string;
  name: string;
  category: string;
  displayName: string;
  state: TaskState;
  progress: number;
  progressMessage: string | null;
  tenantId: string | null;
  params: unknown;
  result: unknown;
  error: string | null;
  traceback: string | null;
  meta: Record<string, unknown> | null;
  attempt: number;
  maxAttempts: number;
  priority: number;
  queue: string;
  route: Route;
  engine: string;
  worker: string | null;
  idempotencyKey: string | null;
  /** Set for a definition declaring `unique`: the ledger keeps one live run per key. */
  uniqueKey?: string | null;
  /** Set for a definition declaring `cache`: a later launch with the same key may reuse this run's result. */
  cacheKey?: string | null;
  /** Not before this time (delayed launch or retry backoff). */
  runAt: number;
  /** Set when a cancel was asked for a run that is in flight on another process. */
  cancelRequested: 'soft' | 'hard' | null;
  revokeReason: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
}

export function durationSeconds(record: Pick<TaskRecord, 'startedAt' | 'finishedAt'>, now = Date.now()): number | null {
  if (record.startedAt === null) return null;
  return Math.round(((record.finishedAt ?? now) - record.startedAt) / 10) / 100;
}
