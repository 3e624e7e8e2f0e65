import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, queryString, TASK_STATES, type Task, type TaskPage } from '../api';
import { ProgressBar } from '../components/ProgressBar';
import { StateBadge } from '../components/StateBadge';
import { useApp } from '../context';
import { activeFilterCount, filtersFromQuery, filtersToApi, filtersToQuery, mayMatch, PAGE_SIZES, RANGES, type TaskFilters } from '../filters';
import { formatDuration, formatTime, fromLocalInput, shortId, toLocalInput } from '../format';
import { durationOf } from '../live';
import { href, navigate } from '../route';
import { useLiveTasks } from '../useLiveTasks';
import { useNow } from '../useNow';

/** The live task table: filters and paging in the URL, rows kept current by the event stream. */
export function TasksView({ query }: { query: URLSearchParams }) {
  const filters = useMemo(() => filtersFromQuery(query), [query.toString()]);
  const apiQuery = queryString(filtersToApi(filters));
  // Older pages are a fixed window; only the newest page takes in new runs.
  const live = useLiveTasks(
    (signal) => api<TaskPage>(`/api/tasks${queryString(filtersToApi(filters))}`, { signal }),
    apiQuery,
    (event) => !filters.cursor && mayMatch(filters, event),
  );
  const now = useNow(live.tasks.some((t) => t.state === 'STARTED'));

  // Cursors of the pages before this one, to step back to newer runs.
  const previous = useRef<string[]>([]);
  const update = (change: Partial<TaskFilters>, options: { keepCursor?: boolean; replace?: boolean } = {}) => {
    if (!options.keepCursor) previous.current = [];
    const next = { ...filters, ...(options.keepCursor ? {} : { cursor: '' }), ...change };
    navigate(href(['tasks'], filtersToQuery(next)), { replace: options.replace });
  };

  const older = () => {
    previous.current.push(filters.cursor);
    update({ cursor: live.nextCursor ?? '' }, { keepCursor: true });
  };
  const newer = () => update({ cursor: previous.current.pop() ?? '' }, { keepCursor: true });

  return (
    <section aria-labelledby="tasks-title">
      <div class="view-head">
        <h1 id="tasks-title">Tasks</h1>
        <span class="muted" aria-live="polite">
          {live.loading ? 'Loading…' : `${live.tasks.length} shown, newest first`}
        </span>
      </div>
      <FilterBar filters={filters} onChange={update} />
      {live.error ? <p class="error-text" role="alert">{live.error}</p> : null}
      <div class="table-wrap">
        <table class="tasks">
          <caption class="visually-hidden">Tasks, newest first; states and progress update live</caption>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col">Progress</th>
              <th scope="col">Task</th>
              <th scope="col">Tenant</th>
              <th scope="col" class="num">Attempt</th>
              <th scope="col">Created</th>
              <th scope="col">Started</th>
              <th scope="col" class="num">Duration</th>
              <th scope="col">ID</th>
            </tr>
          </thead>
          <tbody>
            {live.tasks.map((task) => (
              <TaskRow key={task.task_id} task={task} now={now} />
            ))}
          </tbody>
        </table>
        {!live.loading && live.tasks.length === 0 ? <EmptyState filtered={activeFilterCount(filters) > 0 || !!filters.cursor} /> : null}
      </div>
      <div class="pager">
        <button type="button" onClick={newer} disabled={!filters.cursor}>← Newer</button>
        <button type="button" onClick={older} disabled={!live.nextCursor}>Older →</button>
        <label>
          Page size{' '}
          <select value={String(filters.limit)} onChange={(e) => update({ limit: Number(e.currentTarget.value) })}>
            {PAGE_SIZES.map((n) => (
              <option key={n} value={String(n)}>{n}</option>
            ))}
          </select>
        </label>
      </div>
    </section>
  );
}

function TaskRow({ task, now }: { task: Task; now: number }) {
  const link = href(['tasks', task.task_id]);
  return (
    <tr data-task-id={task.task_id} data-state={task.state}>
      <td><StateBadge state={task.state} /></td>
      <td class="progress-cell">
        <ProgressBar value={task.progress} message={task.progress_message} state={task.state} label={`Progress of ${task.display_name}`} />
      </td>
      <td>
        <a href={link} class="task-name">{task.display_name}</a>
        <div class="mono muted small">{task.name}</div>
      </td>
      <td class="tenant-cell">
        {task.tenant_id ? <a href={href(['tenants', task.tenant_id])} class="mono" title={task.tenant_id}>{task.tenant_id}</a> : <span class="muted">—</span>}
      </td>
      <td class="num">{task.attempt}/{task.max_attempts}</td>
      <td><time dateTime={task.created_at}>{formatTime(task.created_at, now)}</time></td>
      <td>{task.started_at ? <time dateTime={task.started_at}>{formatTime(task.started_at, now)}</time> : <span class="muted">—</span>}</td>
      <td class="num">{formatDuration(durationOf(task, now))}</td>
      <td><a href={link} class="mono small" title={task.task_id}>{shortId(task.task_id)}</a></td>
    </tr>
  );
}

function EmptyState({ filtered }: { filtered: boolean }) {
  const { canAct } = useApp();
  if (filtered) return <p class="empty">No tasks match these filters.</p>;
  return (
    <p class="empty">
      No tasks yet.{canAct ? <> <a href={href(['launch'])}>Launch one</a> and watch it run here.</> : null}
    </p>
  );
}

function FilterBar({ filters, onChange }: { filters: TaskFilters; onChange(change: Partial<TaskFilters>, options?: { replace?: boolean }): void }) {
  const { types, principal } = useApp();
  const [q, setQ] = useState(filters.q);
  const [tenant, setTenant] = useState(filters.tenant);
  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => setTenant(filters.tenant), [filters.tenant]);

  // Typing updates the URL after a pause, replacing the entry, so Back skips keystrokes.
  useEffect(() => {
    if (q === filters.q && tenant === filters.tenant) return;
    const timer = setTimeout(() => onChange({ q: q.trim(), tenant: tenant.trim() }, { replace: true }), 400);
    return () => clearTimeout(timer);
  }, [q, tenant, filters]);

  const categories = types?.categories ?? [];
  const names = categories.filter((c) => !filters.category || c.category === filters.category).flatMap((c) => c.tasks);
  const custom = !filters.range && (filters.since || filters.until);
  const [showCustom, setShowCustom] = useState(Boolean(custom));

  const toggleState = (state: (typeof TASK_STATES)[number], on: boolean) =>
    onChange({ states: on ? [...filters.states, state] : filters.states.filter((s) => s !== state) });

  return (
    <form class="filters" role="search" aria-label="Filter tasks" onSubmit={(e) => { e.preventDefault(); onChange({ q: q.trim(), tenant: tenant.trim() }); }}>
      <div class="field grow">
        <label for="filter-q">Search</label>
        <input id="filter-q" type="search" placeholder="Task id, or text in the error or params" value={q} onInput={(e) => setQ(e.currentTarget.value)} />
      </div>
      <fieldset class="states">
        <legend>State</legend>
        {TASK_STATES.map((state) => (
          <label key={state} class={`chip chip-${state.toLowerCase()}`}>
            <input type="checkbox" checked={filters.states.includes(state)} onChange={(e) => toggleState(state, e.currentTarget.checked)} />
            {state}
          </label>
        ))}
      </fieldset>
      <div class="field">
        <label for="filter-category">Category</label>
        <select id="filter-category" value={filters.category} onChange={(e) => onChange({ category: e.currentTarget.value, name: '' })}>
          <option value="">All</option>
          {categories.map((c) => (
            <option key={c.category} value={c.category}>{c.category}</option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="filter-name">Name</label>
        <select id="filter-name" value={filters.name} onChange={(e) => onChange({ name: e.currentTarget.value })}>
          <option value="">All</option>
          {names.map((t) => (
            <option key={t.name} value={t.name}>{t.name}</option>
          ))}
          {filters.name && !names.some((t) => t.name === filters.name) ? <option value={filters.name}>{filters.name}</option> : null}
        </select>
      </div>
      <div class="field">
        <label for="filter-tenant">Tenant</label>
        {principal.tenants !== '*' ? (
          <select id="filter-tenant" value={filters.tenant} onChange={(e) => onChange({ tenant: e.currentTarget.value })}>
            <option value="">All of mine</option>
            {principal.tenants.map((t) => (
              <option key={t} value={t}>{t}</option>
            ))}
          </select>
        ) : (
          <input id="filter-tenant" type="text" size={10} placeholder="Any" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
        )}
      </div>
      <div class="field">
        <label for="filter-range">Created</label>
        <select
          id="filter-range"
          value={filters.range || (showCustom ? 'custom' : '')}
          onChange={(e) => {
            const value = e.currentTarget.value;
            setShowCustom(value === 'custom');
            onChange(value === 'custom' ? { range: '' } : { range: value, since: '', until: '' });
          }}
        >
          <option value="">Any time</option>
          {Object.entries(RANGES).map(([key, r]) => (
            <option key={key} value={key}>{r.label}</option>
          ))}
          <option value="custom">Between…</option>
        </select>
      </div>
      {showCustom || custom ? (
        <>
          <div class="field">
            <label for="filter-since">From</label>
            <input id="filter-since" type="datetime-local" value={toLocalInput(filters.since)} onChange={(e) => onChange({ since: fromLocalInput(e.currentTarget.value), range: '' })} />
          </div>
          <div class="field">
            <label for="filter-until">To</label>
            <input id="filter-until" type="datetime-local" value={toLocalInput(filters.until)} onChange={(e) => onChange({ until: fromLocalInput(e.currentTarget.value), range: '' })} />
          </div>
        </>
      ) : null}
      {activeFilterCount(filters) > 0 ? (
        <button type="button" class="link" onClick={() => onChange({ states: [], category: '', name: '', tenant: '', range: '', since: '', until: '', q: '' })}>
          Clear filters
        </button>
      ) : null}
    </form>
  );
}
