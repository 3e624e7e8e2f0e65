import { z } from 'zod';
import { toMs, type Duration } from './duration.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';

export type Route = 'light' | 'heavy';
export type Isolation = 'none' | 'thread';

/** What a running task sees. The same object shape on every engine. */
export interface TaskContext {
  readonly taskId: string;
  readonly name: string;
  /** 1 for the first run, 2 for the first retry, ... */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly tenantId: string | null;
  /** Aborted on soft cancel, hard cancel and soft timeout. `signal.reason` says which. */
  readonly signal: AbortSignal;
  /** Report progress (0-100) and an optional message; visible in the ledger and event stream. */
  progress(percent: number, message?: string): Promise<void>;
  /** Append a line to the task's timeline. */
  log(message: string, data?: Record<string, unknown>): void;
}

export interface TaskOptions<S extends z.ZodType, R> {
  name: string;
  /** Explicit category; otherwise from the registry's prefix rules, else the name's first segment. */
  category?: string;
  displayName?: string;
  description?: string;
  params?: S;
  retry?: Partial<RetryPolicy> | false;
  timeout?: { soft?: Duration; hard?: Duration };
  /** Higher runs first. */
  priority?: number;
  queue?: string;
  /** Where the hybrid engine sends it: light runs in process, heavy on distributed workers. */
  route?: Route;
  /** 'thread' runs in a worker thread, so a hard cancel or hard timeout can kill it. */
  isolation?: Isolation;
  /** Most runs of this definition at once (per process). */
  concurrency?: number;
  /**
   * Most runs of this definition running at once per tenant, across every process sharing the
   * ledger (runs without a tenant are not limited by it).
   */
  tenantConcurrency?: number;
  /** Most starts of this definition per sliding window, across every process sharing the ledger. */
  rateLimit?: { max: number; duration: Duration };
  /** Who owns a run. Defaults to `params.company_id`. */
  tenant?: (params: z.output<S>) => string | number | null | undefined;
  /** Webhook URL notified (signed) when a run of this definition ends. */
  webhook?: string;
  /**
   * Taskyard's own machinery (e.g. webhook deliveries): runs like any task, but is never listed
   * by an API and cannot be launched through one; only the library submits it.
   */
  internal?: boolean;
  /**
   * How long an idempotency key stays bound to its run. Within the window the same key answers
   * with the first run; past it the key may launch a new one. Default: as long as the run is in
   * the ledger.
   */
  idempotency?: { window: Duration };
  /**
   * One live run (PENDING, STARTED or RETRY) per tenant and value of these params: a launch
   * while one is live answers with it. `by: []` means one live run per tenant.
   */
  unique?: { by: readonly string[] };
  /**
   * Reuse a SUCCESS run's result: a launch with the same params (or only those named in `by`)
   * for the same tenant within `ttl` of that run finishing answers with it.
   */
  cache?: { ttl: Duration; by?: readonly string[] };
  run(params: z.output<S>, ctx: TaskContext): Promise<R> | R;
}

/** A definition after defaults are applied. Everything the engines and store need. */
export interface TaskDefinition<S extends z.ZodType = z.ZodType, R = unknown> {
  readonly name: string;
  readonly category: string | null;
  readonly displayName: string;
  readonly description: string;
  readonly params: S;
  readonly retry: RetryPolicy;
  readonly softTimeoutMs: number | null;
  readonly hardTimeoutMs: number | null;
  readonly priority: number;
  readonly queue: string;
  readonly route: Route;
  readonly isolation: Isolation;
  readonly concurrency: number | null;
  readonly tenantConcurrency: number | null;
  readonly rateLimit: { readonly max: number; readonly durationMs: number } | null;
  readonly webhook: string | null;
  readonly internal: boolean;
  readonly idempotencyWindowMs: number | null;
  readonly unique: { readonly by: readonly string[] } | null;
  readonly cache: { readonly ttlMs: number; readonly by: readonly string[] | null } | null;
  tenantOf(params: z.output<S>): string | null;
  run(params: z.output<S>, ctx: TaskContext): Promise<R> | R;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskDefinition = TaskDefinition<any, any>;

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,199}$/;

export function defineTask<S extends z.ZodType = z.ZodObject<{}>, R = unknown>(
  options: TaskOptions<S, R>,
): TaskDefinition<S, R> {
  if (!NAME.test(options.name)) throw new Error(`Invalid task name: ${JSON.stringify(options.name)}`);
  const retry: RetryPolicy =
    options.retry === false ? { ...DEFAULT_RETRY, attempts: 1 } : { ...DEFAULT_RETRY, ...options.retry };
  if (!Number.isInteger(retry.attempts) || retry.attempts < 1) {
    throw new Error(`Task ${options.name}: retry.attempts must be an integer >= 1`);
  }
  const softTimeoutMs = options.timeout?.soft === undefined ? null : toMs(options.timeout.soft);
  const hardTimeoutMs = options.timeout?.hard === undefined ? null : toMs(options.timeout.hard);
  const tenant = options.tenant ?? defaultTenant;
  const concurrency = positiveInteger(options.name, 'concurrency', options.concurrency);
  const tenantConcurrency = positiveInteger(options.name, 'tenantConcurrency', options.tenantConcurrency);
  return {
    name: options.name,
    category: options.category ?? null,
    displayName: options.displayName ?? options.name,
    description: options.description ?? '',
    params: (options.params ?? z.object({})) as S,
    retry,
    softTimeoutMs,
    hardTimeoutMs,
    priority: options.priority ?? 0,
    queue: options.queue ?? 'default',
    route: options.route ?? 'light',
    isolation: options.isolation ?? 'none',
    concurrency,
    tenantConcurrency,
    rateLimit: rateLimitOf(options.name, options.rateLimit),
    webhook: options.webhook ?? null,
    internal: options.internal ?? false,
    idempotencyWindowMs: options.idempotency ? toMs(options.idempotency.window) : null,
    unique: options.unique ? { by: paramNames(options.name, 'unique.by', options.unique.by) } : null,
    cache: options.cache
      ? { ttlMs: toMs(options.cache.ttl), by: options.cache.by ? paramNames(options.name, 'cache.by', options.cache.by) : null }
      : null,
    tenantOf(params) {
      const value = tenant(params);
      return value === null || value === undefined || value === '' ? null : String(value);
    },
    run: options.run,
  };
}

function positiveInteger(task: string, option: string, value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`Task ${task}: ${option} must be an integer >= 1, got ${JSON.stringify(value)}`);
  }
  return value;
}

function rateLimitOf(task: string, limit: TaskOptions<z.ZodType, unknown>['rateLimit']): TaskDefinition['rateLimit'] {
  if (limit === undefined || limit === null) return null;
  if (typeof limit !== 'object') throw new Error(`Task ${task}: rateLimit must be { max, duration }`);
  const max = positiveInteger(task, 'rateLimit.max', limit.max);
  if (max === null) throw new Error(`Task ${task}: rateLimit.max is required`);
  let durationMs: number;
  try {
    durationMs = toMs(limit.duration);
  } catch (error) {
    throw new Error(`Task ${task}: rateLimit.duration: ${(error as Error).message}`);
  }
  if (durationMs < 1) throw new Error(`Task ${task}: rateLimit.duration must be at least 1ms`);
  return { max, durationMs };
}

function paramNames(task: string, option: string, names: unknown): string[] {
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new Error(`Task ${task}: ${option} must be a list of param names`);
  }
  return [...names];
}

function defaultTenant(params: unknown): string | number | null {
  if (params && typeof params === 'object' && 'company_id' in params) {
    const id = (params as { company_id: unknown }).company_id;
    if (typeof id === 'string' || typeof id === 'number') return id;
  }
  return null;
}
