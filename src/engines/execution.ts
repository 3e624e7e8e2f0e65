import type { AnyTaskDefinition, TaskContext } from '../core/definition.js';
import { NonRetryableError } from '../core/errors.js';
import { isRetryable, retryDelayMs } from '../core/retry.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskChange } from '../store/types.js';

/** Size limits on what a run writes to the ledger, so no record can grow without bound. */
export interface RecordLimits {
  /** Serialized params, checked at launch (413 over HTTP). */
  maxParamsBytes: number;
  /** Serialized result; a larger one ends the run in FAILURE. */
  maxResultBytes: number;
  /** Progress messages and log lines are cut to this many characters. */
  maxMessageChars: number;
}

export const DEFAULT_LIMITS: RecordLimits = { maxParamsBytes: 64 * 1024, maxResultBytes: 1024 * 1024, maxMessageChars: 1024 };

/** Cuts a message to `max` characters, saying so, so a chatty task cannot bloat the timeline. */
export function clip(message: string, max = DEFAULT_LIMITS.maxMessageChars): string {
  return message.length <= max ? message : `${message.slice(0, max - 1)}…`;
}

/** Bytes of `value` as JSON; cheap for the scalars most tasks return. */
export function jsonBytes(value: unknown): number {
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return 0;
  if (typeof value === 'string') return Buffer.byteLength(value) + 2;
  const text = JSON.stringify(value);
  return text === undefined ? 0 : Buffer.byteLength(text);
}

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
/**
 * The context a task sees, built here and only here: in the engine's thread and in an isolated
 * run's worker thread alike, so both check `progress()` the same way.
 */
export function createContext(
  record: Pick<TaskRecord, 'id' | 'name' | 'attempt' | 'maxAttempts' | 'tenantId'>,
  signal: AbortSignal | (() => AbortSignal),
  sink: ContextSink,
): TaskContext {
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

export function progressChange(record: TaskRecord, percent: number, message: string | undefined, maxChars?: number): TaskChange {
  message = message === undefined || message === null ? undefined : clip(String(message), maxChars);
  return {
    id: record.id,
    to: 'STARTED',
    from: ['STARTED'],
    patch: { progress: percent, progressMessage: message ?? null },
    event: 'progress',
    data: { progress: percent, message: message ?? null },
  };
}

export function logChange(record: TaskRecord, message: string, data?: Record<string, unknown>, maxChars?: number): TaskChange {
  return { id: record.id, to: 'STARTED', from: ['STARTED'], patch: {}, event: 'log', data: { ...data, message: clip(message, maxChars) } };
}

export function errorText(error: unknown): { message: string; traceback: string | null } {
  if (error instanceof Error) return { message: error.message || error.name, traceback: error.stack ?? null };
  return { message: String(error), traceback: null };
}

/**
 * The transition that ends (or re-queues) a run, from its outcome. A run with a cancel request
 * ends REVOKED whatever it returned, and is never retried; what it returned is kept.
 */
export function outcomeChange(
  record: TaskRecord,
  definition: AnyTaskDefinition | undefined,
  outcome: RunOutcome,
  now = Date.now(),
  maxResultBytes = DEFAULT_LIMITS.maxResultBytes,
): TaskChange {
  if (outcome.ok) {
    const bytes = jsonBytes(outcome.result);
    if (bytes > maxResultBytes) {
      outcome = {
        ok: false,
        error: new NonRetryableError(`The result is ${bytes} bytes, over the ${maxResultBytes}-byte limit; store large results elsewhere and return a reference`),
      };
    }
  }
  if (record.cancelRequested) return revokedChange(record, record.revokeReason, record.cancelRequested === 'hard', now, outcome);
  const duration = record.startedAt === null ? null : now - record.startedAt;
  if (outcome.ok) {
    return {
      id: record.id,
      to: 'SUCCESS',
      from: ['STARTED'],
      patch: { result: outcome.result ?? null, finishedAt: now, progress: 100, error: null, traceback: null },
      event: 'succeeded',
      data: { attempt: record.attempt, duration_ms: duration },
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
      data: { attempt: record.attempt, delay_ms: delay, error: message, traceback, duration_ms: duration },
    };
  }
  return {
    id: record.id,
    to: 'FAILURE',
    from: ['STARTED'],
    patch: { error: message, traceback, finishedAt: now, result: null },
    event: 'failed',
    data: { error: message, traceback, attempt: record.attempt, duration_ms: duration },
  };
}

/**
 * The transition to REVOKED. `outcome` is what the run returned after a cancel it did not
 * honour: kept for inspection, but it changes nothing.
 */
export function revokedChange(record: TaskRecord, reason: string | null, hard: boolean, now = Date.now(), outcome?: RunOutcome): TaskChange {
  const patch: TaskChange['patch'] = {
    finishedAt: now,
    revokeReason: reason,
    error: reason ? `Revoked: ${reason}` : 'Revoked',
    cancelRequested: hard ? 'hard' : 'soft',
  };
  const data: Record<string, unknown> = { reason, hard, attempt: record.attempt };
  if (outcome?.ok) patch.result = outcome.result ?? null;
  else if (outcome) {
    const { message, traceback } = errorText(outcome.error);
    patch.traceback = traceback;
    data.run_error = message;
  }
  if (record.startedAt !== null) data.duration_ms = now - record.startedAt;
  return { id: record.id, to: 'REVOKED', patch, event: 'revoked', data };
}

/** Asks the owner of a running run to stop: recorded at once, so it survives any crash. */
export function cancelRequestChange(record: TaskRecord, reason: string | null, hard: boolean): TaskChange {
  return {
    id: record.id,
    to: 'STARTED',
    from: ['STARTED'],
    patch: { cancelRequested: hard ? 'hard' : 'soft', revokeReason: reason },
    event: 'cancel_requested',
    data: { reason, hard },
  };
}
