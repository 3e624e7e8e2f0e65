import type { TaskEvent } from './events.js';

/** One attempt of a run, as its timeline tells it. */
export interface Attempt {
  attempt: number;
  worker: string | null;
  startedAt: number;
  finishedAt: number | null;
  /** How it ended: `running` while it has not. `requeued` = put back by a graceful shutdown. */
  outcome: 'running' | 'succeeded' | 'retry' | 'failed' | 'revoked' | 'requeued';
  error: string | null;
  traceback: string | null;
}

const ENDINGS: Partial<Record<TaskEvent['type'], Attempt['outcome']>> = {
  succeeded: 'succeeded',
  retry: 'retry',
  failed: 'failed',
  revoked: 'revoked',
};

/**
 * Folds a run's events (oldest first) into its attempts. Attempts are derived from the timeline
 * rather than kept in a table of their own, so the hot path writes nothing extra for them.
 */
export function attemptsOf(events: readonly TaskEvent[]): Attempt[] {
  const attempts: Attempt[] = [];
  let open: Attempt | null = null;
  for (const event of events) {
    const data = event.data ?? {};
    if (event.type === 'started') {
      open = {
        attempt: typeof data.attempt === 'number' ? data.attempt : attempts.length + 1,
        worker: typeof data.worker === 'string' ? data.worker : null,
        startedAt: event.at,
        finishedAt: null,
        outcome: 'running',
        error: null,
        traceback: null,
      };
      attempts.push(open);
      continue;
    }
    if (!open) continue;
    const ending = ENDINGS[event.type] ?? (event.type === 'enqueued' && data.requeued ? 'requeued' : undefined);
    if (!ending) continue;
    open.outcome = ending;
    open.finishedAt = event.at;
    const error = event.type === 'revoked' ? (data.reason ?? null) : (data.error ?? null);
    open.error = error === null ? null : String(error);
    open.traceback = typeof data.traceback === 'string' ? data.traceback : null;
    open = null;
  }
  return attempts;
}
