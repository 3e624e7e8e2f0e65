import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, queryString, TASK_STATES, type Statistics, type TaskPage } from '../api';
import { BarTable } from '../components/BarTable';
import { StateBadge } from '../components/StateBadge';
import { ThroughputChart } from '../components/ThroughputChart';
import { useApp } from '../context';
import { formatDateTime, formatDuration, formatNumber, formatPercent } from '../format';
import { durationOf, throttle, useStream } from '../live';
import { href } from '../route';

/** How many recent successes the per-type duration percentiles are computed from. */
const DURATION_SAMPLE = 500;

interface TypeDurations {
  name: string;
  p50: number;
  p95: number;
  count: number;
}

/** Counts, charts, queue depth and workers; re-read when events say something changed. */
export function OverviewView() {
  const { principal } = useApp();
  const [stats, setStats] = useState<Statistics | null>(null);
  const [durations, setDurations] = useState<TypeDurations[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const loadStats = useCallback(() => {
    api<Statistics>('/api/tasks/statistics').then(
      (s) => {
        setStats(s);
        setError(null);
      },
      (e: unknown) => setError(e instanceof ApiError ? e.detail : 'The server cannot be reached.'),
    );
  }, []);

  const loadDurations = useCallback(() => {
    api<TaskPage>(`/api/tasks${queryString({ state: 'SUCCESS', limit: DURATION_SAMPLE })}`).then(
      (page) => setDurations(durationsByType(page)),
      () => setDurations([]),
    );
  }, []);

  const statsSoon = useRef(throttle(loadStats, 2000));
  const durationsSoon = useRef(throttle(loadDurations, 10_000));
  useEffect(() => {
    loadStats();
    loadDurations();
    return () => {
      statsSoon.current.cancel();
      durationsSoon.current.cancel();
    };
  }, [loadStats, loadDurations]);

  useStream((message) => {
    if (message.kind === 'resync') {
      loadStats();
      loadDurations();
      return;
    }
    if (message.events.some((e) => e.type !== 'progress' && e.type !== 'log')) statsSoon.current();
    if (message.events.some((e) => e.type === 'succeeded')) durationsSoon.current();
  });

  const failureRates = stats
    ? Object.entries(stats.by_name)
        .map(([name, counts]) => ({ name, failed: counts.FAILURE, finished: counts.SUCCESS + counts.FAILURE }))
        .filter((r) => r.finished > 0)
        .sort((a, b) => b.failed / b.finished - a.failed / a.finished || b.finished - a.finished)
    : [];

  return (
    <section aria-labelledby="overview-title" class="overview">
      <div class="view-head">
        <h1 id="overview-title">Overview</h1>
        {principal.tenants !== '*' ? <span class="muted">Your tenants only</span> : null}
      </div>
      {error ? <p class="error-text" role="alert">{error}</p> : null}

      <ul class="state-cards" aria-label="Tasks by state">
        {TASK_STATES.map((state) => (
          <li key={state}>
            <a href={href(['tasks'], { state })} class="state-card" data-state={state}>
              <StateBadge state={state} />
              <span class="count">{stats ? formatNumber(stats.by_state[state]) : '…'}</span>
            </a>
          </li>
        ))}
        <li>
          <a href={href(['tasks'])} class="state-card">
            <span class="badge">TOTAL</span>
            <span class="count">{stats ? formatNumber(stats.total) : '…'}</span>
          </a>
        </li>
      </ul>

      <div class="panels">
        <section class="panel wide" aria-labelledby="throughput-title">
          <h2 id="throughput-title">Throughput</h2>
          <p class="muted small">
            Finished in the last minute: <strong>{stats ? formatNumber(stats.throughput.last_minute) : '…'}</strong>; last hour:{' '}
            <strong>{stats ? formatNumber(stats.throughput.last_hour) : '…'}</strong>. The chart counts runs as they finish, from the
            live stream while this page is open; the minutes before come from the ledger's latest finished runs.
          </p>
          <ThroughputChart />
        </section>

        <section class="panel" aria-labelledby="durations-title">
          <h2 id="durations-title">Duration by task type</h2>
          <p class="muted small">
            p50 and p95 of the last {DURATION_SAMPLE} successful runs.
            {stats?.durations.p50_seconds != null
              ? ` All types, last hour: p50 ${formatDuration(stats.durations.p50_seconds)}, p95 ${formatDuration(stats.durations.p95_seconds)}.`
              : ''}
          </p>
          <BarTable
            caption="Duration percentiles by task type"
            empty="No successful runs yet."
            columns={['Task type', 'p50', 'p95', 'Runs']}
            rows={(durations ?? []).map((d) => ({
              key: d.name,
              label: d.name,
              href: href(['tasks'], { name: d.name }),
              ratio: d.p95 / Math.max(...(durations ?? []).map((x) => x.p95), 0.001),
              cells: [formatDuration(d.p50), formatDuration(d.p95), formatNumber(d.count)],
            }))}
          />
        </section>

        <section class="panel" aria-labelledby="failures-title">
          <h2 id="failures-title">Failure rate by task type</h2>
          <p class="muted small">Failed runs among finished ones (SUCCESS or FAILURE), over the whole ledger.</p>
          <BarTable
            caption="Failure rate by task type"
            empty="Nothing has finished yet."
            tone="bad"
            columns={['Task type', 'Rate', 'Failed / finished']}
            rows={failureRates.map((r) => ({
              key: r.name,
              label: r.name,
              href: href(['tasks'], { name: r.name, state: 'FAILURE' }),
              ratio: r.failed / r.finished,
              cells: [formatPercent(r.failed / r.finished), `${formatNumber(r.failed)} / ${formatNumber(r.finished)}`],
            }))}
          />
        </section>

        <section class="panel" aria-labelledby="queue-title">
          <h2 id="queue-title">Queue depth</h2>
          {stats ? (
            <>
              <dl class="facts compact">
                <div><dt>Due now</dt><dd>{formatNumber(stats.queue_depth.pending)}</dd></div>
                <div><dt>Delayed</dt><dd>{formatNumber(stats.queue_depth.delayed)}</dd></div>
                <div><dt>Waiting to retry</dt><dd>{formatNumber(stats.queue_depth.retry)}</dd></div>
                <div><dt>Running</dt><dd>{formatNumber(stats.by_state.STARTED)}</dd></div>
              </dl>
              <BarTable
                caption="Waiting runs by queue"
                empty="No queue has waiting runs."
                columns={['Queue', 'Waiting']}
                rows={Object.entries(stats.queue_depth.by_queue).map(([queue, n]) => ({
                  key: queue,
                  label: queue,
                  ratio: n / Math.max(...Object.values(stats.queue_depth.by_queue), 1),
                  cells: [formatNumber(n)],
                }))}
              />
            </>
          ) : (
            <p class="muted">Loading…</p>
          )}
        </section>

        <section class="panel" aria-labelledby="workers-title">
          <h2 id="workers-title">Workers</h2>
          {stats?.workers ? (
            stats.workers.length === 0 ? (
              <p class="muted">No workers are running.</p>
            ) : (
              <div class="table-wrap">
                <table>
                  <caption class="visually-hidden">Workers with their concurrency and active runs</caption>
                  <thead>
                    <tr>
                      <th scope="col">Worker</th>
                      <th scope="col">Engine</th>
                      <th scope="col" class="num">Active / concurrency</th>
                      <th scope="col" class="num">Processed</th>
                      <th scope="col">Since</th>
                    </tr>
                  </thead>
                  <tbody>
                    {stats.workers.map((w) => (
                      <tr key={w.name}>
                        <td class="mono">{w.name} <span class="muted">(pid {w.pid})</span></td>
                        <td>{w.engine}</td>
                        <td class="num">{w.active} / {w.concurrency}</td>
                        <td class="num">{formatNumber(w.processed)}</td>
                        <td>{formatDateTime(w.started_at)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          ) : (
            <p class="muted">Worker details are shown to admin keys.</p>
          )}
        </section>
      </div>
    </section>
  );
}

function durationsByType(page: TaskPage): TypeDurations[] {
  const byName = new Map<string, number[]>();
  for (const task of page.tasks) {
    const seconds = durationOf(task);
    if (seconds === null) continue;
    const list = byName.get(task.name) ?? [];
    list.push(seconds);
    byName.set(task.name, list);
  }
  return [...byName.entries()]
    .map(([name, list]) => {
      list.sort((a, b) => a - b);
      const at = (p: number) => list[Math.min(list.length - 1, Math.floor(p * list.length))]!;
      return { name, p50: at(0.5), p95: at(0.95), count: list.length };
    })
    .sort((a, b) => b.p95 - a.p95);
}
