import { TASK_STATES, type TaskState } from './api';

/** The tasks view's filters, as kept in the URL (`#/tasks?state=FAILURE&q=73`). */
export interface TaskFilters {
  states: TaskState[];
  category: string;
  name: string;
  tenant: string;
  /** A relative window ending now: one of RANGES. */
  range: string;
  /** An absolute window, as ISO times. */
  since: string;
  until: string;
  /** Free text: a task id, or text in the error or params. */
  q: string;
  limit: number;
  cursor: string;
}

export const RANGES: Record<string, { label: string; ms: number }> = {
  '15m': { label: 'Last 15 minutes', ms: 15 * 60_000 },
  '1h': { label: 'Last hour', ms: 3_600_000 },
  '24h': { label: 'Last 24 hours', ms: 86_400_000 },
  '7d': { label: 'Last 7 days', ms: 7 * 86_400_000 },
};

export const PAGE_SIZES = [25, 50, 100, 200];
const DEFAULT_LIMIT = 50;

export function filtersFromQuery(query: URLSearchParams): TaskFilters {
  const states = (query.get('state') ?? '')
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter((s): s is TaskState => (TASK_STATES as readonly string[]).includes(s));
  const limit = Number(query.get('limit'));
  const range = query.get('range') ?? '';
  return {
    states,
    category: query.get('category') ?? '',
    name: query.get('name') ?? '',
    tenant: query.get('tenant') ?? '',
    range: range in RANGES ? range : '',
    since: validTime(query.get('since')),
    until: validTime(query.get('until')),
    q: query.get('q') ?? '',
    limit: PAGE_SIZES.includes(limit) ? limit : DEFAULT_LIMIT,
    cursor: query.get('cursor') ?? '',
  };
}

const validTime = (value: string | null) => (value && Number.isFinite(Date.parse(value)) ? value : '');

export function filtersToQuery(f: TaskFilters): URLSearchParams {
  const query = new URLSearchParams();
  if (f.states.length) query.set('state', f.states.join(','));
  if (f.category) query.set('category', f.category);
  if (f.name) query.set('name', f.name);
  if (f.tenant) query.set('tenant', f.tenant);
  if (f.range) query.set('range', f.range);
  else {
    if (f.since) query.set('since', f.since);
    if (f.until) query.set('until', f.until);
  }
  if (f.q) query.set('q', f.q);
  if (f.limit !== DEFAULT_LIMIT) query.set('limit', String(f.limit));
  if (f.cursor) query.set('cursor', f.cursor);
  return query;
}

/** The `GET /api/tasks` query for these filters. */
export function filtersToApi(f: TaskFilters, now = Date.now()): Record<string, string | undefined> {
  const since = f.range ? new Date(now - RANGES[f.range]!.ms).toISOString() : f.since || undefined;
  return {
    state: f.states.join(',') || undefined,
    category: f.category || undefined,
    name: f.name || undefined,
    tenant_id: f.tenant || undefined,
    since,
    until: f.range ? undefined : f.until || undefined,
    q: f.q.trim() || undefined,
    limit: String(f.limit),
    cursor: f.cursor || undefined,
  };
}

/**
 * Whether a new run could belong in the filtered list, from what an event tells (name,
 * category, tenant, state). Free text needs the params, so with `q` set the answer is "maybe".
 */
export function mayMatch(
  f: TaskFilters,
  e: { name: string; task_type: string; tenant_id: string | null; state: TaskState },
  now = Date.now(),
): boolean {
  if (f.states.length && !f.states.includes(e.state)) return false;
  if (f.category && e.task_type !== f.category) return false;
  if (f.name && e.name !== f.name) return false;
  if (f.tenant && e.tenant_id !== f.tenant) return false;
  if (!f.range && f.until && Date.parse(f.until) <= now) return false; // a window that ended gains no runs
  return true;
}

export const activeFilterCount = (f: TaskFilters) =>
  [f.states.length > 0, f.category, f.name, f.tenant, f.range || f.since || f.until, f.q].filter(Boolean).length;
