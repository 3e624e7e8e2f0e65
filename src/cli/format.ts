/** Output formatting for the CLI: tables, durations, progress bars and summaries. Pure functions. */
import type { ParameterInfo, ScheduleJson, StatsResponse, TaskJson, TimelineEvent, TypesResponse } from './client.js';

export const TERMINAL_STATES = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

export interface Style {
  color: boolean;
}

const ANSI: Record<string, string> = { red: '31', green: '32', yellow: '33', blue: '34', magenta: '35', cyan: '36', dim: '2', bold: '1' };

export function paint(style: Style, color: keyof typeof ANSI | string, text: string): string {
  const code = ANSI[color];
  return style.color && code ? `\x1b[${code}m${text}\x1b[0m` : text;
}

const STATE_COLOR: Record<string, string> = {
  PENDING: 'dim',
  STARTED: 'cyan',
  RETRY: 'yellow',
  SUCCESS: 'green',
  FAILURE: 'red',
  REVOKED: 'magenta',
};

export const paintState = (style: Style, state: string): string => paint(style, STATE_COLOR[state] ?? '', state);

/** 0.4 → "0.4s", 75 → "1m 15s", 3725 → "1h 02m". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** ISO → local "YYYY-MM-DD HH:MM:SS" (what a terminal reader wants). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export const formatPercent = (progress: number | null | undefined): string => `${Math.round(progress ?? 0)}%`;

const truncate = (text: string, width: number): string => (text.length <= width ? text : `${text.slice(0, width - 1)}…`);

/**
 * A plain-text table. Widths are measured before colouring, so ANSI codes never break alignment.
 * `colorize` gets (column index, padded cell) and may wrap it.
 */
export function table(headers: string[], rows: string[][], colorize?: (column: number, cell: string, raw: string) => string): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[], paintCell = false) =>
    cells
      .map((cell, i) => {
        const padded = i === cells.length - 1 ? cell : cell.padEnd(widths[i]!);
        return paintCell && colorize ? colorize(i, padded, cell) : padded;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map((r) => line(r, true))].join('\n');
}

export function taskTable(tasks: TaskJson[], style: Style): string {
  const headers = ['ID', 'NAME', 'STATE', 'PROGRESS', 'TENANT', 'CREATED', 'DURATION'];
  const rows = tasks.map((t) => [
    t.task_id,
    truncate(t.name, 48),
    t.state,
    formatPercent(t.progress),
    truncate(t.tenant_id ?? '-', 36),
    formatTime(t.created_at),
    formatDuration(t.duration_seconds),
  ]);
  return table(headers, rows, (column, cell, raw) => (column === 2 ? cell.replace(raw, paintState(style, raw)) : cell));
}

/** Schedules, one per row: when they fire, whether they are on, the next run and how the last went. */
export function scheduleTable(schedules: ScheduleJson[], style: Style): string {
  const headers = ['NAME', 'TASK', 'WHEN', 'ENABLED', 'NEXT RUN', 'LAST RUN', 'SKIPPED'];
  const rows = schedules.map((s) => [
    truncate(s.name, 40),
    truncate(s.task, 40),
    s.cron !== null ? `${s.cron}${s.timezone && s.timezone !== 'UTC' ? ` (${s.timezone})` : ''}` : `every ${s.every}`,
    s.enabled ? 'yes' : 'no',
    s.next_runs[0] ? formatTime(s.next_runs[0]) : '-',
    s.last_run ? `${formatTime(s.last_run.at)} ${s.last_run.state ?? 'pruned'}` : '-',
    String(s.skipped),
  ]);
  return table(headers, rows, (column, cell, raw) => (column === 5 ? cell.replace(/[A-Z]+$/, (state) => paintState(style, state)) : cell));
}

/** `[########------------]  40% STARTED  compras 202401` */
export function progressLine(task: Pick<TaskJson, 'state' | 'progress' | 'progress_message'>, width = 24): string {
  const percent = Math.max(0, Math.min(100, task.progress ?? 0));
  const filled = Math.round((percent / 100) * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const message = task.progress_message ? `  ${task.progress_message}` : '';
  return `${bar} ${formatPercent(percent).padStart(4)} ${task.state}${message}`;
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2);

/** Multi-line values (params, result) indented under their label. */
function block(label: string, value: unknown): string[] {
  const text = typeof value === 'string' ? value : json(value);
  const lines = text.split('\n');
  if (lines.length === 1) return [`${label.padEnd(12)}${lines[0]}`];
  return [`${label}`, ...lines.map((l) => `  ${l}`)];
}

export function taskSummary(t: TaskJson, style: Style): string {
  const out: string[] = [];
  const row = (label: string, value: string | null | undefined) => {
    if (value !== null && value !== undefined && value !== '') out.push(`${label.padEnd(12)}${value}`);
  };
  row('Task', paint(style, 'bold', t.task_id));
  row('Name', t.display_name && t.display_name !== t.name ? `${t.name} (${t.display_name})` : t.name);
  row('Category', t.category);
  row('State', paintState(style, t.state) + (t.cancel_requested && !TERMINAL_STATES.has(t.state) ? ` (cancel requested: ${t.cancel_requested})` : ''));
  row('Progress', `${formatPercent(t.progress)}${t.progress_message ? `  ${t.progress_message}` : ''}`);
  row('Tenant', t.tenant_id ?? '-');
  row('Attempt', `${t.attempt} of ${t.max_attempts}`);
  row('Queue', [t.queue, t.engine, t.worker].filter(Boolean).join(' / ') || null);
  if (t.priority) row('Priority', String(t.priority));
  row('Created', formatTime(t.created_at));
  if (t.eta) row('ETA', formatTime(t.eta));
  row('Started', t.started_at ? formatTime(t.started_at) : null);
  row('Finished', t.finished_at ? formatTime(t.finished_at) : null);
  row('Duration', t.duration_seconds === null ? null : formatDuration(t.duration_seconds));
  if (t.revoke_reason) row('Reason', t.revoke_reason);
  out.push(...block('Params', t.params ?? {}));
  if (t.result !== null && t.result !== undefined) out.push(...block('Result', t.result));
  if (t.error) row('Error', paint(style, 'red', t.error));
  if (t.traceback) out.push(...block('Traceback', t.traceback));
  return out.join('\n');
}

const countLines = (counts: Record<string, number>, style: Style, colorKey = false): string[] => {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return ['  (none)'];
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `  ${colorKey ? paintState(style, k.padEnd(width)) : k.padEnd(width)}  ${v}`);
};

/** `sii  12  (3 STARTED, 9 SUCCESS)`: a total per key with its non-zero states. */
const breakdownLines = (counts: Record<string, Record<string, number>>, style: Style): string[] => {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return ['  (none)'];
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([key, byState]) => {
    const states = Object.entries(byState).filter(([, n]) => n > 0);
    const total = states.reduce((sum, [, n]) => sum + n, 0);
    const detail = states.map(([state, n]) => `${n} ${paintState(style, state)}`).join(', ');
    return `  ${key.padEnd(width)}  ${total}${detail ? `  (${detail})` : ''}`;
  });
};

export function statsSummary(s: StatsResponse, style: Style): string {
  const out: string[] = [];
  out.push(`Tasks: ${s.total}`);
  out.push('By state:', ...countLines(s.by_state, style, true));
  out.push('By category:', ...breakdownLines(s.by_category, style));
  const q = s.queue_depth;
  out.push(`Queue depth: ${q.pending} pending, ${q.delayed} delayed, ${q.retry} retrying`);
  const queues = Object.entries(q.by_queue ?? {});
  if (queues.length > 0) out.push(...countLines(q.by_queue, style));
  out.push(`Durations: p50 ${formatDuration(s.durations.p50_seconds)}, p95 ${formatDuration(s.durations.p95_seconds)} (${s.durations.samples} samples)`);
  out.push(`Throughput: ${s.throughput.last_minute} last minute, ${s.throughput.last_hour} last hour, ${s.throughput.per_second.toFixed(2)}/s`);
  if (s.workers === undefined) {
    out.push('Workers: (visible to admin keys only)');
  } else if (s.workers.length === 0) {
    out.push('Workers: none');
  } else {
    out.push('Workers:');
    out.push(
      table(
        ['  NAME', 'ENGINE', 'PID', 'CONCURRENCY', 'ACTIVE', 'PROCESSED', 'STARTED'],
        s.workers.map((w) => [`  ${w.name}`, w.engine, w.pid === null ? '-' : String(w.pid), String(w.concurrency), String(w.active), String(w.processed), formatTime(w.started_at)]),
      ),
    );
  }
  return out.join('\n');
}

function parameterLine(name: string, p: ParameterInfo): string {
  const bits = [p.type, p.required ? 'required' : 'optional'];
  if (p.default !== undefined) bits.push(`default ${JSON.stringify(p.default)}`);
  if (p.min !== undefined) bits.push(`min ${p.min}`);
  if (p.max !== undefined) bits.push(`max ${p.max}`);
  if (p.enum) bits.push(`one of ${p.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  return `      ${name}: ${bits.join(', ')}${p.description ? `  (${p.description})` : ''}`;
}

export function typesSummary(types: TypesResponse, style: Style): string {
  const out: string[] = [];
  for (const category of types.categories) {
    out.push(`${paint(style, 'bold', category.category)} (${category.count})`);
    for (const task of category.tasks) {
      const label = task.display_name && task.display_name !== task.name ? `  ${paint(style, 'dim', task.display_name)}` : '';
      out.push(`  ${paint(style, 'cyan', task.name)}${label}`);
      if (task.description) out.push(`      ${task.description}`);
      const params = Object.entries(task.parameters ?? {});
      if (params.length === 0) out.push('      (no parameters)');
      for (const [name, p] of params) out.push(parameterLine(name, p));
    }
  }
  return out.join('\n');
}

const EVENT_COLOR: Record<string, string> = {
  enqueued: 'dim',
  started: 'cyan',
  progress: 'blue',
  cancel_requested: 'magenta',
  retry: 'yellow',
  succeeded: 'green',
  failed: 'red',
  revoked: 'magenta',
};

const text = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
const seconds = (ms: unknown): string | null => (typeof ms === 'number' ? formatDuration(ms / 1000) : null);

/**
 * The readable part of an event's data: the fields each type is known to carry, then any others
 * as key=value. Tracebacks are left to `--json`, they do not fit a line.
 */
export function eventDetail(event: Pick<TimelineEvent, 'type' | 'data'>): string {
  const { progress, message, error, attempt, delay_ms, duration_ms, reason, hard, traceback: _traceback, ...rest } = event.data ?? {};
  const parts: string[] = [];
  const after = seconds(duration_ms);
  if (event.type === 'progress' && typeof progress === 'number') parts.push(formatPercent(progress));
  if (message !== undefined && message !== null && message !== '') parts.push(text(message));
  if (event.type === 'retry') {
    parts.push(`attempt ${attempt ?? '?'} failed${error ? `: ${text(error)}` : ''}${seconds(delay_ms) ? `; next try in ${seconds(delay_ms)}` : ''}`);
  } else if (event.type === 'failed') {
    parts.push(`${error ? text(error) : 'failed'}${attempt !== undefined ? ` (attempt ${attempt}${after ? `, ${after}` : ''})` : ''}`);
  } else if (event.type === 'succeeded') {
    if (attempt !== undefined) parts.push(`attempt ${attempt}${after ? ` in ${after}` : ''}`);
  } else if (event.type === 'revoked' || event.type === 'cancel_requested') {
    if (reason) parts.push(text(reason));
    if (typeof hard === 'boolean') parts.push(hard ? 'hard' : 'soft');
  } else {
    if (error !== undefined && error !== null) parts.push(`error=${text(error)}`);
    if (attempt !== undefined) parts.push(`attempt=${text(attempt)}`);
  }
  for (const [key, value] of Object.entries(rest)) if (value !== undefined && value !== null) parts.push(`${key}=${text(value)}`);
  return parts.join('  ');
}

/** `2026-11-23 15:40:01  progress          STARTED  40%  Compras` */
export function timelineLine(event: TimelineEvent, style: Style): string {
  const type = paint(style, EVENT_COLOR[event.type] ?? '', event.type.padEnd(16));
  const state = paintState(style, event.state) + ' '.repeat(Math.max(0, 7 - event.state.length));
  return `${formatTime(event.at)}  ${type}  ${state}  ${eventDetail(event)}`.trimEnd();
}
