import { toMs, type Duration } from './duration.js';

export interface RetryPolicy {
  /** Total runs allowed, the first included. */
  attempts: number;
  backoff: 'exponential' | 'fixed';
  /** Delay before the first retry. */
  delay: Duration;
  /** Upper bound on any single delay. */
  maxDelay: Duration;
  /** Fraction of the delay that is randomised (0 = none, 1 = full jitter). */
  jitter: number;
  /** Error names (`err.name`) that fail at once. `NonRetryableError` always does. */
  nonRetryable: string[];
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  backoff: 'exponential',
  delay: '1s',
  maxDelay: '10m',
  jitter: 0.2,
  nonRetryable: [],
};

/**
 * Delay before the next run, after `attempt` runs have failed (attempt >= 1).
 * Exponential: delay * 2^(attempt-1), capped, then jittered downwards by up to `jitter`.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = toMs(policy.delay);
  const cap = toMs(policy.maxDelay);
  const raw = policy.backoff === 'fixed' ? base : base * 2 ** Math.max(0, attempt - 1);
  const capped = Math.min(raw, cap);
  return Math.round(capped * (1 - policy.jitter * random()));
}

export function isRetryable(policy: RetryPolicy, error: unknown): boolean {
  const name = error instanceof Error ? error.name : '';
  if (name === 'NonRetryableError') return false;
  return !policy.nonRetryable.includes(name);
}
