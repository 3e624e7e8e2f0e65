import type { AnyTaskDefinition, TaskContext } from '../core/definition.js';
import { isRetryable, retryDelayMs } from '../core/retry.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskChange } from '../store/types.js';

/**
 * What every engine shares about a run: the context a task sees, and how an outcome becomes
 * a ledger transition (success, retry with backoff, or failure). Engines differ only in
 * where the code runs and how it is stopped.
 */
export type RunOutcome = { ok: true; result: unknown } | { ok: false; error: unknown };

export interface ContextSink {
  progress(percent: number, message: string | undefined): Promise<void>;
  log(message: string, data: Record<string, unknown> | undefined): void;
}

/** `signal` is read through a getter, so an engine can make the AbortController only when a task asks. */
export function createContext(record: TaskRecord, signal: AbortSignal | (() => AbortSignal), sink: ContextSink): TaskContext {
  const signalOf = typeof signal === 'function' ? signal : () => signal;
  return {
    taskId: record.id,
    name: record.name,
    attempt: record.attempt,
    maxAttempts: record.maxAttempts,
    tenantId: record.tenantId,
    get signal() {
      return signalOf();
    },
    progress(percent, message) {
      if (!Number.isFinite(percent)) return Promise.reject(new TypeError('progress must be a number'));
      return sink.progress(Math.max(0, Math.min(100, Math.round(percent))), message);
    },
    log(message, data) {
      sink.log(String(message), data);
    },
  };
}

export function progressChange(record: TaskRecord, percent: number, message: string | undefined): TaskChange {
  return {
    id: record.id,
    to: 'STARTED',
    from: ['STARTED'],
    patch: { progress: percent, progressMessage: message ?? null },
    event: 'progress',
    data: { progress: percent, message: message ?? null },
  };
}

export function logChange(record: TaskRecord, message: string, data?: Record<string, unknown>): TaskChange {
  return { id: record.id, to: 'STARTED', from: ['STARTED'], patch: {}, event: 'log', data: { message, ...data } };
}

export function errorText(error: unknown): { message: string; traceback: string | null } {
  if (error instanceof Error) return { message: error.message || error.name, traceback: error.stack ?? null };
  return { message: String(error), traceback: null };
}

/** The transition that ends (or re-queues) a run, from its outcome. */
export function outcomeChange(
  record: TaskRecord,
  definition: AnyTaskDefinition | undefined,
  outcome: RunOutcome,
  now = Date.now(),
): TaskChange {
  if (outcome.ok) {
    return {
      id: record.id,
      to: 'SUCCESS',
      from: ['STARTED'],
      patch: { result: outcome.result ?? null, finishedAt: now, progress: 100, error: null, traceback: null },
      event: 'succeeded',
    };
  }
  const { message, traceback } = errorText(outcome.error);
  const canRetry = definition !== undefined && record.attempt < record.maxAttempts && isRetryable(definition.retry, outcome.error);
  if (canRetry) {
    const delay = retryDelayMs(definition.retry, record.attempt);
    return {
      id: record.id,
      to: 'RETRY',
      from: ['STARTED'],
      patch: { error: message, traceback, runAt: now + delay },
      event: 'retry',
      data: { attempt: record.attempt, delay_ms: delay, error: message },
    };
  }
  return {
    id: record.id,
    to: 'FAILURE',
    from: ['STARTED'],
    patch: { error: message, traceback, finishedAt: now, result: null },
    event: 'failed',
    data: { error: message, attempt: record.attempt },
  };
}

export function revokedChange(record: TaskRecord, reason: string | null, hard: boolean, now = Date.now()): TaskChange {
  return {
    id: record.id,
    to: 'REVOKED',
    patch: { finishedAt: now, revokeReason: reason, error: reason ? `Revoked: ${reason}` : 'Revoked', cancelRequested: hard ? 'hard' : 'soft' },
    event: 'revoked',
    data: { reason, hard },
  };
}
