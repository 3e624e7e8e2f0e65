/**
 * A small HTTP client for the native API (src/http/routes/native.ts), as the CLI needs it.
 * Every failure becomes a CliError carrying the message to print and the exit code.
 */
import type { ParameterInfo } from '../core/schema.js';

/** Exit codes: 0 success, 1 the task failed or was revoked, 2 usage, HTTP or connection errors. */
export const EXIT_OK = 0;
export const EXIT_TASK_FAILED = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The native API's task shape (src/http/serialize.ts taskJson). */
export interface TaskJson {
  task_id: string;
  name: string;
  task_type: string;
  category: string;
  display_name: string | null;
  state: string;
  progress: number | null;
  progress_message: string | null;
  tenant_id: string | null;
  params: Record<string, unknown>;
  result: unknown;
  error: string | null;
  traceback: string | null;
  meta: unknown;
  attempt: number;
  max_attempts: number;
  priority: number | null;
  queue: string | null;
  route: string | null;
  engine: string | null;
  worker: string | null;
  eta: string | null;
  idempotency_key: string | null;
  cancel_requested: string | boolean | null;
  revoke_reason: string | null;
  created_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string | null;
  duration_seconds: number | null;
}

export interface TaskPage {
  tasks: TaskJson[];
  count: number;
  next_cursor: string | null;
}

export type { ParameterInfo };

export interface TaskTypeInfo {
  name: string;
  display_name: string | null;
  description: string | null;
  queue: string | null;
  isolation: string | null;
  priority: number | null;
  max_attempts: number;
  parameters: Record<string, ParameterInfo>;
}

export interface TypesResponse {
  categories: Array<{ category: string; count: number; tasks: TaskTypeInfo[] }>;
}

export interface StatsResponse {
  total: number;
  by_state: Record<string, number>;
  /** category (or name) → state → count */
  by_category: Record<string, Record<string, number>>;
  by_name: Record<string, Record<string, number>>;
  durations: { p50_seconds: number | null; p95_seconds: number | null; samples: number };
  throughput: { last_minute: number; last_hour: number; per_second: number };
  queue_depth: { pending: number; delayed: number; retry: number; by_queue: Record<string, number> };
  workers?: Array<{ name: string; engine: string; pid: number | null; concurrency: number; active: number; processed: number; started_at: string | null }>;
}

/** One entry of a task's timeline (GET /api/tasks/{id}/timeline), oldest first. */
export interface TimelineEvent {
  seq: number;
  /** enqueued, started, progress, log, cancel_requested, retry, succeeded, failed or revoked */
  type: string;
  state: string;
  at: string;
  data: Record<string, unknown> | null;
}

export interface TimelinePage {
  task_id: string;
  events: TimelineEvent[];
  /** Pass as `after` for the next page; null once the page reached the newest event. */
  next_after: number | null;
}

export interface LaunchRequest {
  task_type: string;
  params: Record<string, unknown>;
  countdown?: number;
  eta?: string;
  priority?: number;
}

export interface ListQuery {
  state?: string;
  task_type?: string;
  name?: string;
  company_id?: string;
  limit?: number;
  cursor?: string;
}

/** A schedule as GET /api/schedules shows it (the fields the CLI uses). */
export interface ScheduleJson {
  name: string;
  task: string;
  cron: string | null;
  every: string | null;
  timezone: string | null;
  enabled: boolean;
  source: 'code' | 'api';
  next_runs: string[];
  last_run: { task_id: string; at: string | null; state: string | null } | null;
  skipped: number;
  [key: string]: unknown;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Node's fetch hides the socket error in `cause` (sometimes nested in an AggregateError). */
function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const c = current as { code?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof c.code === 'string') return c.code;
    current = c.cause ?? c.errors?.[0];
  }
  return undefined;
}

export class TaskyardClient {
  readonly baseUrl: string;

  constructor(
    url: string,
    private readonly apiKey?: string,
  ) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new CliError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CliError(`--url must be an http(s) URL, got ${JSON.stringify(url)}`);
    }
    this.baseUrl = url.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw this.connectionError(error);
    }
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) throw httpError(res, parsed);
    return parsed as T;
  }

  private connectionError(error: unknown): CliError {
    const code = causeCode(error);
    if ((error as Error).name === 'TimeoutError') {
      return new CliError(`Taskyard at ${this.baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
    }
    if (code === 'ECONNREFUSED') {
      return new CliError(`Cannot reach Taskyard at ${this.baseUrl}: is the server running? (taskyard serve)`);
    }
    const cause = (error as { cause?: { message?: unknown } }).cause?.message;
    const reason = code ?? (typeof cause === 'string' && cause ? cause : (error as Error).message);
    return new CliError(`Cannot reach Taskyard at ${this.baseUrl}: ${reason}`);
  }

  launch(body: LaunchRequest): Promise<TaskJson> {
    return this.request('POST', '/api/tasks', body);
  }

  get(id: string): Promise<TaskJson> {
    return this.request('GET', `/api/tasks/${encodeURIComponent(id)}`);
  }

  list(query: ListQuery): Promise<TaskPage> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) search.set(key, String(value));
    const qs = search.toString();
    return this.request('GET', `/api/tasks${qs ? `?${qs}` : ''}`);
  }

  stop(id: string, hard: boolean, reason: string | null): Promise<TaskJson> {
    return this.request('POST', `/api/tasks/${encodeURIComponent(id)}/stop`, { hard, reason });
  }

  retry(id: string): Promise<TaskJson> {
    return this.request('POST', `/api/tasks/${encodeURIComponent(id)}/retry`, {});
  }

  timeline(id: string, after?: number, limit?: number): Promise<TimelinePage> {
    const search = new URLSearchParams();
    if (after !== undefined) search.set('after', String(after));
    if (limit !== undefined) search.set('limit', String(limit));
    const qs = search.toString();
    return this.request('GET', `/api/tasks/${encodeURIComponent(id)}/timeline${qs ? `?${qs}` : ''}`);
  }

  stats(): Promise<StatsResponse> {
    return this.request('GET', '/api/tasks/statistics');
  }

  types(): Promise<TypesResponse> {
    return this.request('GET', '/api/tasks/types');
  }

  schedules(): Promise<{ schedules: ScheduleJson[]; count: number }> {
    return this.request('GET', '/api/schedules');
  }

  setScheduleEnabled(name: string, enabled: boolean): Promise<ScheduleJson> {
    return this.request('PATCH', `/api/schedules/${encodeURIComponent(name)}`, { enabled });
  }
}

function httpError(res: Response, body: unknown): CliError {
  const detail =
    body && typeof body === 'object' && typeof (body as { detail?: unknown }).detail === 'string'
      ? (body as { detail: string }).detail
      : typeof body === 'string' && body.trim()
        ? body.trim().slice(0, 500)
        : res.statusText || 'request failed';
  let message = `${detail} (HTTP ${res.status})`;
  if (res.status === 401) message += '; pass --api-key or set TASKYARD_API_KEY';
  return new CliError(message, EXIT_USAGE, res.status);
}
