import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, isTerminal, taskPath, type Task, type TaskType, type TimelineEvent, type TimelinePage } from '../api';
import { Dialog } from '../components/Dialog';
import { JsonBlock } from '../components/JsonBlock';
import { ParamsForm } from '../components/ParamsForm';
import { ProgressBar } from '../components/ProgressBar';
import { StateBadge } from '../components/StateBadge';
import { useApp } from '../context';
import type { TaskEvent } from '../events';
import { formatDateTime, formatDuration, formatPreciseTime } from '../format';
import { applyEvent, durationOf, throttle, useStream } from '../live';
import { href, navigate } from '../route';
import { formFields, initialValues, placeServerErrors, readForm, withoutError, type FormValues } from '../schemaForm';
import { useNow } from '../useNow';

const TIMELINE_PAGE = 500;
/** A run that logs or reports progress without end still shows its latest 10,000 steps. */
const TIMELINE_MAX = 10_000;

type Timeline = { available: true; events: TimelineEvent[]; truncated: boolean } | { available: false; events: TimelineEvent[] };

/** One run: params, result, error, the timeline of everything that happened, and the actions. */
export function TaskDetail({ id }: { id: string }) {
  const { canAct, types } = useApp();
  const [task, setTask] = useState<Task | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const [timeline, setTimeline] = useState<Timeline>({ available: false, events: [] });
  const [dialog, setDialog] = useState<'cancel' | 'retry' | 'relaunch' | null>(null);
  const now = useNow(task?.state === 'STARTED');

  const loadTask = useCallback(async () => {
    try {
      setTask(await api<Task>(taskPath(id)));
      setMissing(null);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) setMissing(error.detail);
      else setMissing(error instanceof ApiError ? error.detail : 'The server cannot be reached.');
    }
  }, [id]);

  const loadTimeline = useCallback(async () => {
    const events: TimelineEvent[] = [];
    let after = 0;
    try {
      while (events.length < TIMELINE_MAX) {
        const page = await api<TimelinePage>(`${taskPath(id)}/timeline?after=${after}&limit=${TIMELINE_PAGE}`);
        events.push(...page.events);
        if (page.next_after === null || page.events.length === 0) break;
        after = page.next_after;
      }
      setTimeline({ available: true, events, truncated: events.length >= TIMELINE_MAX });
    } catch {
      // No timeline endpoint on this server: show what the stream tells while the page is open.
      setTimeline((t) => ({ available: false, events: t.events }));
    }
  }, [id]);

  useEffect(() => {
    void loadTask();
    void loadTimeline();
  }, [loadTask, loadTimeline]);

  // Results, tracebacks and attempt counts are not in events: re-read the record when they change.
  const refresh = useRef(throttle(() => void loadTask(), 300));
  useEffect(() => () => refresh.current.cancel(), []);

  useStream((message) => {
    if (message.kind === 'resync') {
      void loadTask();
      void loadTimeline();
      return;
    }
    const mine = message.events.filter((e) => e.task_id === id);
    if (mine.length === 0) return;
    setTask((t) => (t ? mine.reduce(applyEvent, t) : t));
    setTimeline((t) => appendEvents(t, mine));
    if (mine.some((e) => e.type !== 'progress' && e.type !== 'log')) refresh.current();
  });

  if (missing) {
    return (
      <section>
        <h1>Task not found</h1>
        <p role="alert">{missing}</p>
        <p><a href={href(['tasks'])}>Back to the tasks</a></p>
      </section>
    );
  }
  if (!task) return <p class="muted">Loading…</p>;

  const definition = types?.categories.flatMap((c) => c.tasks).find((t) => t.name === task.name);
  const terminal = isTerminal(task.state);

  return (
    <section aria-labelledby="task-title" class="detail">
      <p class="crumbs"><a href={href(['tasks'])}>Tasks</a> / <span class="mono">{task.task_id}</span></p>
      <div class="view-head">
        <h1 id="task-title">{task.display_name}</h1>
        <StateBadge state={task.state} />
        {task.cancel_requested && !terminal ? <span class="badge badge-note">cancel requested ({task.cancel_requested})</span> : null}
        {canAct ? (
          <div class="actions" role="group" aria-label="Actions">
            {!terminal ? <button type="button" class="danger" onClick={() => setDialog('cancel')}>Cancel task…</button> : null}
            {task.state === 'FAILURE' || task.state === 'REVOKED' ? <button type="button" onClick={() => setDialog('retry')}>Retry…</button> : null}
            {definition ? <button type="button" onClick={() => setDialog('relaunch')}>Re-launch with edited params…</button> : null}
          </div>
        ) : null}
      </div>
      <p class="mono muted">{task.name}</p>
      <ProgressBar value={task.progress} message={task.progress_message} state={task.state} label="Progress" />

      <dl class="facts">
        <Fact label="Task id"><span class="mono">{task.task_id}</span></Fact>
        <Fact label="Tenant">{task.tenant_id ? <a href={href(['tenants', task.tenant_id])}>{task.tenant_id}</a> : '—'}</Fact>
        <Fact label="Category">{task.category}</Fact>
        <Fact label="Queue">{task.queue}</Fact>
        <Fact label="Attempt">{task.attempt} of {task.max_attempts}</Fact>
        <Fact label="Priority">{task.priority}</Fact>
        <Fact label="Created">{formatDateTime(task.created_at)}</Fact>
        <Fact label="Started">{formatDateTime(task.started_at)}</Fact>
        <Fact label="Finished">{formatDateTime(task.finished_at)}</Fact>
        <Fact label="Duration">{formatDuration(durationOf(task, now))}</Fact>
        {task.eta ? <Fact label="Runs at">{formatDateTime(task.eta)}</Fact> : null}
        <Fact label="Worker"><span class="mono">{task.worker ?? '—'}</span></Fact>
        {task.revoke_reason ? <Fact label="Cancel reason">{task.revoke_reason}</Fact> : null}
      </dl>

      <div class="panels">
        <section class="panel" aria-labelledby="params-title">
          <h2 id="params-title">Params</h2>
          <JsonBlock value={task.params} label="Params" />
        </section>
        <section class="panel" aria-labelledby="result-title">
          <h2 id="result-title">Result</h2>
          <JsonBlock value={task.result} label="Result" />
        </section>
      </div>

      {task.error || task.traceback ? (
        <section class="panel panel-error" aria-labelledby="error-title">
          <h2 id="error-title">Error</h2>
          {task.error ? <p class="error-text" data-testid="task-error">{task.error}</p> : null}
          {task.traceback ? <pre class="code" tabIndex={0} aria-label="Traceback">{task.traceback}</pre> : null}
        </section>
      ) : null}

      <TimelineTable timeline={timeline} />

      {dialog === 'cancel' ? <CancelDialog task={task} onDone={setTask} onClose={() => setDialog(null)} /> : null}
      {dialog === 'retry' ? <RetryDialog task={task} onDone={setTask} onClose={() => setDialog(null)} /> : null}
      {dialog === 'relaunch' && definition ? <RelaunchDialog task={task} definition={definition} onClose={() => setDialog(null)} /> : null}
    </section>
  );
}

function appendEvents(timeline: Timeline, events: TaskEvent[]): Timeline {
  const last = timeline.events[timeline.events.length - 1]?.seq ?? 0;
  const fresh = events.filter((e) => e.seq > last).map(({ seq, type, state, at, data }) => ({ seq, type, state, at, data }));
  return fresh.length ? { ...timeline, events: [...timeline.events, ...fresh] } : timeline;
}

function Fact({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function describeEvent(event: TimelineEvent): string {
  const d = event.data ?? {};
  switch (event.type) {
    case 'progress':
      return `${d.progress ?? ''}%${d.message ? ` · ${String(d.message)}` : ''}`;
    case 'log': {
      const { message, ...rest } = d;
      return `${String(message ?? '')}${Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : ''}`;
    }
    case 'started':
      return `attempt ${d.attempt ?? '?'}${d.worker ? ` on ${String(d.worker)}` : ''}`;
    case 'retry':
      return `${String(d.error ?? '')}${typeof d.delay_ms === 'number' ? ` · next try in ${formatDuration(d.delay_ms / 1000)}` : ''}`;
    case 'failed':
      return String(d.error ?? '');
    case 'revoked':
      return `${d.hard ? 'hard' : 'soft'} cancel${d.reason ? `: ${String(d.reason)}` : ''}`;
    case 'enqueued':
      return d.retry ? `retried by hand (was ${String(d.previous_state ?? '')})` : 'queued';
    default:
      return Object.keys(d).length ? JSON.stringify(d) : '';
  }
}

function TimelineTable({ timeline }: { timeline: Timeline }) {
  const rows = useMemo(() => [...timeline.events].reverse(), [timeline.events]);
  return (
    <section class="panel" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Timeline</h2>
      {!timeline.available ? <p class="muted small">This server has no timeline endpoint; showing the events seen since this page opened.</p> : null}
      {timeline.available && timeline.truncated ? <p class="muted small">Only the first {TIMELINE_MAX.toLocaleString()} events are shown.</p> : null}
      {rows.length === 0 ? (
        <p class="muted">No events yet.</p>
      ) : (
        <div class="table-wrap timeline-wrap" tabIndex={0} aria-label="Timeline events">
          <table class="timeline">
            <caption class="visually-hidden">Transitions, progress steps and log lines, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">State</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.seq} data-event={e.type}>
                  <td class="mono small"><time dateTime={e.at}>{formatPreciseTime(e.at)}</time></td>
                  <td>{e.type}</td>
                  <td><StateBadge state={e.state} /></td>
                  <td class="wrap">{describeEvent(e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

interface ActionProps {
  task: Task;
  onDone(task: Task): void;
  onClose(): void;
}

function CancelDialog({ task, onDone, onClose }: ActionProps) {
  const { toast } = useApp();
  const [hard, setHard] = useState(false);
  const [reason, setReason] = useState('');
  return (
    <Dialog
      title={`Cancel “${task.display_name}”?`}
      confirmLabel={hard ? 'Stop it now' : 'Ask it to stop'}
      danger
      onClose={onClose}
      onConfirm={async () => {
        const updated = await api<Task>(`${taskPath(task.task_id)}/stop`, { body: { hard, reason: reason.trim() || null } });
        onDone(updated);
        toast(hard ? 'Task stopped.' : 'Cancel requested.');
      }}
    >
      <fieldset class="choices">
        <legend>How</legend>
        <label>
          <input type="radio" name="cancel-mode" checked={!hard} onChange={() => setHard(false)} />
          Soft: the task's signal is aborted and it ends REVOKED when it returns.
        </label>
        <label>
          <input type="radio" name="cancel-mode" checked={hard} onChange={() => setHard(true)} />
          Hard: stop it now (a thread-isolated task is killed; others are abandoned).
        </label>
      </fieldset>
      <div class="field">
        <label for="cancel-reason">Reason (optional)</label>
        <textarea id="cancel-reason" rows={2} maxLength={1000} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </div>
    </Dialog>
  );
}

function RetryDialog({ task, onDone, onClose }: ActionProps) {
  const { toast } = useApp();
  return (
    <Dialog
      title={`Retry “${task.display_name}”?`}
      confirmLabel="Retry"
      onClose={onClose}
      onConfirm={async () => {
        onDone(await api<Task>(`${taskPath(task.task_id)}/retry`, { method: 'POST' }));
        toast('Retry queued.');
      }}
    >
      <p>The same run goes back to the queue ({task.state} now, attempt {task.attempt}) with a fresh set of attempts.</p>
    </Dialog>
  );
}

function RelaunchDialog({ task, definition, onClose }: { task: Task; definition: TaskType; onClose(): void }) {
  const { toast } = useApp();
  const fields = useMemo(() => formFields(definition.params_schema), [definition]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields, task.params));
  const [errors, setErrors] = useState<Record<string, string>>({});
  return (
    <Dialog
      title={`Re-launch “${task.display_name}”`}
      confirmLabel="Launch new run"
      onClose={onClose}
      onConfirm={async () => {
        const { params, errors: found } = readForm(fields, values);
        setErrors(found);
        if (Object.keys(found).length) throw new Error('Fix the fields marked above.');
        try {
          const created = await api<Task>('/api/tasks', { body: { task_type: task.name, params } });
          toast('New run launched.');
          navigate(href(['tasks', created.task_id]));
        } catch (error) {
          if (error instanceof ApiError && error.status === 422) {
            const placed = placeServerErrors(fields, error.errors);
            setErrors(placed.byField);
            throw new Error(placed.general.join('; ') || 'The server rejected some fields.');
          }
          throw error;
        }
      }}
    >
      <p class="muted small">A new run with these params; this one stays as it is.</p>
      <ParamsForm
        fields={fields}
        values={values}
        errors={errors}
        onChange={(next, field) => {
          setValues(next);
          setErrors((e) => withoutError(e, field));
        }}
      />
    </Dialog>
  );
}
