import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, isTerminal, queryString, type Task, type TaskPage, type TaskState } from '../api';
import { ProgressBar } from '../components/ProgressBar';
import { StateBadge } from '../components/StateBadge';
import { useApp } from '../context';
import { formatDuration, formatNumber, formatTime } from '../format';
import { durationOf } from '../live';
import { href } from '../route';
import { useLiveTasks } from '../useLiveTasks';
import { useNow } from '../useNow';

/** The window the company tracker (seed background-task-tracking) looks at: runs created in the last 24 h. */
const WINDOW_MS = 86_400_000;
const OVERVIEW_SAMPLE = 500;
const TENANT_SAMPLE = 200;

/** What an onboarding screen shows for a run (the tracker's words). */
const TRACKER_STATUS: Record<TaskState, string> = {
  PENDING: 'pending',
  RETRY: 'pending',
  STARTED: 'running',
  SUCCESS: 'success',
  FAILURE: 'failed',
  REVOKED: 'cancelled',
};

interface CompanyStatus {
  company_name: string;
  all_completed: boolean;
}

/** Company names come from the company tracker, where the server has one; asked once per tenant. */
const companyNames = new Map<string, Promise<string | null>>();
function companyName(tenant: string): Promise<string | null> {
  let name = companyNames.get(tenant);
  if (!name) {
    name = api<CompanyStatus>(`/api/v1/companies/${encodeURIComponent(tenant)}/task_status/`).then(
      (s) => s.company_name,
      () => null,
    );
    companyNames.set(tenant, name);
  }
  return name;
}

function useCompanyName(tenant: string): string | null {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    void companyName(tenant).then((n) => live && setName(n));
    return () => {
      live = false;
    };
  }, [tenant]);
  return name;
}

interface TenantSummary {
  tenant: string;
  total: number;
  active: Task[];
  done: number;
  failed: number;
}

function summarize(tasks: Task[], known: string[]): TenantSummary[] {
  const byTenant = new Map<string, TenantSummary>();
  for (const tenant of known) byTenant.set(tenant, { tenant, total: 0, active: [], done: 0, failed: 0 });
  for (const task of tasks) {
    if (task.tenant_id === null) continue;
    let s = byTenant.get(task.tenant_id);
    if (!s) byTenant.set(task.tenant_id, (s = { tenant: task.tenant_id, total: 0, active: [], done: 0, failed: 0 }));
    s.total += 1;
    if (isTerminal(task.state)) s.done += 1;
    else s.active.push(task);
    if (task.state === 'FAILURE') s.failed += 1;
  }
  return [...byTenant.values()].sort((a, b) => b.active.length - a.active.length || b.total - a.total || a.tenant.localeCompare(b.tenant));
}

/** Every tenant with runs in the last 24 h (or every tenant of a scoped key): live progress and failures. */
export function TenantsView() {
  const { principal } = useApp();
  const live = useLiveTasks(
    (signal) => api<TaskPage>(`/api/tasks${queryString({ since: new Date(Date.now() - WINDOW_MS).toISOString(), limit: OVERVIEW_SAMPLE })}`, { signal }),
    'tenants',
    () => true,
  );
  const tenants = useMemo(() => summarize(live.tasks, principal.tenants === '*' ? [] : principal.tenants), [live.tasks, principal]);

  return (
    <section aria-labelledby="tenants-title">
      <div class="view-head">
        <h1 id="tenants-title">Tenants</h1>
        <span class="muted small">From the latest {OVERVIEW_SAMPLE} runs of the last 24 hours</span>
      </div>
      {live.error ? <p class="error-text" role="alert">{live.error}</p> : null}
      {!live.loading && tenants.length === 0 ? <p class="empty">No tenant has runs in the last 24 hours.</p> : null}
      <ul class="tenant-cards">
        {tenants.map((t) => (
          <TenantCard key={t.tenant} summary={t} />
        ))}
      </ul>
    </section>
  );
}

function TenantCard({ summary }: { summary: TenantSummary }) {
  const name = useCompanyName(summary.tenant);
  const ratio = summary.total ? summary.done / summary.total : 0;
  return (
    <li class="card tenant-card" data-tenant={summary.tenant}>
      <h2>
        <a href={href(['tenants', summary.tenant])}>{name ?? `Tenant ${summary.tenant}`}</a>
        {name ? <span class="mono muted small"> {summary.tenant}</span> : null}
      </h2>
      <ProgressBar
        value={ratio * 100}
        message={summary.total ? `${summary.done} of ${summary.total} finished` : 'no runs'}
        state={summary.active.length ? 'STARTED' : 'SUCCESS'}
        label={`Runs finished for tenant ${summary.tenant}`}
      />
      <p class="small">
        <strong>{summary.active.length}</strong> active · <strong class={summary.failed ? 'bad' : ''}>{summary.failed}</strong> failed
      </p>
      {summary.active.slice(0, 3).map((task) => (
        <div class="mini-task" key={task.task_id}>
          <a href={href(['tasks', task.task_id])} class="small">{task.display_name}</a>
          <ProgressBar value={task.progress} message={task.progress_message} state={task.state} label={`Progress of ${task.display_name}`} />
        </div>
      ))}
      {summary.active.length > 3 ? <p class="muted small">and {summary.active.length - 3} more</p> : null}
    </li>
  );
}

/** One tenant: what its onboarding screen shows (active runs with progress, all completed or not), and its failures. */
export function TenantDetail({ tenant }: { tenant: string }) {
  const { principal } = useApp();
  const outOfScope = principal.tenants !== '*' && !principal.tenants.includes(tenant);
  const name = useCompanyName(tenant);
  const live = useLiveTasks(
    (signal) =>
      api<TaskPage>(`/api/tasks${queryString({ tenant_id: tenant, since: new Date(Date.now() - WINDOW_MS).toISOString(), limit: TENANT_SAMPLE })}`, { signal }),
    tenant,
    (event) => event.tenant_id === tenant,
  );
  const now = useNow(live.tasks.some((t) => t.state === 'STARTED'));

  if (outOfScope) {
    return (
      <section>
        <h1>Tenant not found</h1>
        <p role="alert">Tenant {tenant} is not one of yours.</p>
      </section>
    );
  }

  // Launch order, oldest first, as an onboarding screen lists its steps.
  const runs = [...live.tasks].reverse();
  const active = runs.filter((t) => !isTerminal(t.state));
  const finished = runs.filter((t) => isTerminal(t.state));
  const failures = live.tasks.filter((t) => t.state === 'FAILURE');
  const allCompleted = runs.length > 0 && active.length === 0;

  return (
    <section aria-labelledby="tenant-title" class="tenant">
      <p class="crumbs"><a href={href(['tenants'])}>Tenants</a> / <span class="mono">{tenant}</span></p>
      <div class="view-head">
        <h1 id="tenant-title">{name ?? `Tenant ${tenant}`}</h1>
        <a href={href(['tasks'], { tenant })}>All tasks of this tenant →</a>
      </div>

      <section class="panel" aria-labelledby="onboarding-title">
        <h2 id="onboarding-title">Background work, last 24 hours</h2>
        <ProgressBar
          value={runs.length ? (finished.length / runs.length) * 100 : 0}
          message={runs.length ? `${finished.length} of ${runs.length} finished` : 'nothing launched'}
          state={allCompleted ? 'SUCCESS' : 'STARTED'}
          label="Onboarding completion"
        />
        <p data-testid="all-completed" class={allCompleted ? 'ok' : 'muted'}>
          {allCompleted ? '✓ All completed' : runs.length ? `${active.length} still running or waiting` : 'No runs yet'}
        </p>
        {active.length ? (
          <ul class="steps" aria-label="Active runs">
            {active.map((task) => (
              <li key={task.task_id}>
                <div class="step-head">
                  <a href={href(['tasks', task.task_id])}>{task.display_name}</a>
                  <span class={`tracker tracker-${TRACKER_STATUS[task.state]}`}>{TRACKER_STATUS[task.state]}</span>
                  <span class="muted small">{formatDuration(durationOf(task, now))}</span>
                </div>
                <ProgressBar value={task.progress} message={task.progress_message} state={task.state} label={`Progress of ${task.display_name}`} />
              </li>
            ))}
          </ul>
        ) : null}
      </section>

      <div class="panels">
        <section class="panel" aria-labelledby="failures-title">
          <h2 id="failures-title">Failures</h2>
          {failures.length === 0 ? (
            <p class="muted">No failures in the last 24 hours.</p>
          ) : (
            <ul class="failures">
              {failures.map((task) => (
                <li key={task.task_id}>
                  <a href={href(['tasks', task.task_id])}>{task.display_name}</a>{' '}
                  <span class="muted small">{formatTime(task.finished_at, now)}</span>
                  <div class="error-text small">{task.error}</div>
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="panel" aria-labelledby="finished-title">
          <h2 id="finished-title">Finished</h2>
          {finished.length === 0 ? (
            <p class="muted">Nothing has finished yet.</p>
          ) : (
            <ul class="finished">
              {[...finished].reverse().slice(0, 20).map((task) => (
                <li key={task.task_id}>
                  <StateBadge state={task.state} /> <a href={href(['tasks', task.task_id])}>{task.display_name}</a>{' '}
                  <span class="muted small">{formatDuration(durationOf(task, now))}</span>
                </li>
              ))}
            </ul>
          )}
          {finished.length > 20 ? <p class="muted small">{formatNumber(finished.length - 20)} more</p> : null}
        </section>
      </div>
    </section>
  );
}
