/**
 * The dashboard's only way to the server: the public HTTP API, with the signed-in key sent as
 * `Authorization: Bearer`. The key lives in sessionStorage: it is gone when the tab closes and
 * is never in a URL or a cookie.
 */

export const TASK_STATES = ['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: readonly TaskState[] = ['SUCCESS', 'FAILURE', 'REVOKED'];
export const isTerminal = (state: TaskState) => TERMINAL_STATES.includes(state);

export interface Task {
  task_id: string;
  name: string;
  category: string;
  display_name: string;
  state: TaskState;
  progress: number;
  progress_message: string | null;
  tenant_id: string | null;
  params: Record<string, unknown>;
  result: unknown;
  error: string | null;
  traceback: string | null;
  meta: unknown;
  attempt: number;
  max_attempts: number;
  priority: number;
  queue: string;
  engine: string;
  worker: string | null;
  eta: string | null;
  cancel_requested: string | null;
  revoke_reason: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  duration_seconds: number | null;
}

export interface TaskPage {
  tasks: Task[];
  count: number;
  next_cursor: string | null;
}

export type Role = 'viewer' | 'operator' | 'admin';

export interface Principal {
  role: Role;
  tenants: '*' | string[];
  anonymous: boolean;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
}

export interface TaskType {
  name: string;
  display_name: string;
  description?: string | null;
  queue: string;
  max_attempts: number;
  params_schema: JsonSchema;
}

export interface TaskTypes {
  categories: Array<{ category: string; count: number; tasks: TaskType[] }>;
}

type StateCounts = Record<TaskState, number>;

export interface Statistics {
  total: number;
  by_state: StateCounts;
  by_category: Record<string, StateCounts>;
  by_name: Record<string, StateCounts>;
  durations: { p50_seconds: number | null; p95_seconds: number | null; samples: number };
  throughput: { last_minute: number; last_hour: number; per_second: number };
  queue_depth: { pending: number; delayed: number; retry: number; by_queue: Record<string, number> };
  workers?: Array<{ name: string; engine: string; pid: number; concurrency: number; active: number; processed: number; started_at: string | null }>;
}

export interface TimelineEvent {
  seq: number;
  type: string;
  state: TaskState;
  at: string;
  data: Record<string, unknown> | null;
}

export interface TimelinePage {
  task_id: string;
  events: TimelineEvent[];
  next_after: number | null;
}

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail);
  }
}

const KEY_STORAGE = 'taskyard.apiKey';

export const session = {
  get key(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  set key(value: string | null) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  },
};

/** Called when the server answers 401 to a signed-in request: the key was revoked or is wrong. */
let onUnauthorized: () => void = () => {};
export const setUnauthorizedHandler = (handler: () => void) => {
  onUnauthorized = handler;
};
export const notifyUnauthorized = () => onUnauthorized();

export function authHeaders(key = session.key): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; key?: string | null; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authHeaders(init.key === undefined ? session.key : init.key) };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: init.signal,
    credentials: 'omit',
  });
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text };
  }
  if (!response.ok) {
    const { detail, errors } = (body ?? {}) as { detail?: string; errors?: FieldError[] };
    if (response.status === 401 && init.key === undefined) notifyUnauthorized();
    throw new ApiError(response.status, detail ?? `HTTP ${response.status}`, Array.isArray(errors) ? errors : []);
  }
  return body as T;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function queryString(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const text = params.toString();
  return text ? `?${text}` : '';
}

export const taskPath = (id: string) => `/api/tasks/${encodeURIComponent(id)}`;
