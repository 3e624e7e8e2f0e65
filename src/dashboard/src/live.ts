import { useEffect, useRef } from 'preact/hooks';
import type { Task } from './api';
import { stream, type StreamMessage, type TaskEvent } from './events';

/** A task as one event leaves it. Events carry the state and what changed, not the whole record. */
export function applyEvent(task: Task, event: TaskEvent): Task {
  // The record was read after this event was written: it already says more.
  if (Date.parse(event.at) < Date.parse(task.updated_at)) return task;
  const data = event.data ?? {};
  const next: Task = { ...task, state: event.state, updated_at: event.at };
  switch (event.type) {
    case 'enqueued':
      if (data.retry) Object.assign(next, { progress: 0, progress_message: null, started_at: null, finished_at: null, result: null });
      break;
    case 'started':
      next.started_at = event.at;
      next.finished_at = null;
      next.progress = 0;
      next.progress_message = null;
      if (typeof data.attempt === 'number') next.attempt = data.attempt;
      if (typeof data.worker === 'string') next.worker = data.worker;
      break;
    case 'progress':
      if (typeof data.progress === 'number') next.progress = data.progress;
      next.progress_message = typeof data.message === 'string' ? data.message : null;
      break;
    case 'retry':
      if (typeof data.error === 'string') next.error = data.error;
      break;
    case 'succeeded':
      next.progress = 100;
      next.finished_at = event.at;
      next.error = null;
      break;
    case 'failed':
      next.finished_at = event.at;
      if (typeof data.error === 'string') next.error = data.error;
      break;
    case 'revoked':
      next.finished_at = event.at;
      if (typeof data.reason === 'string') next.revoke_reason = data.reason;
      break;
  }
  return next;
}

/** Seconds a run has taken so far (or took), from its timestamps. */
export function durationOf(task: Pick<Task, 'started_at' | 'finished_at'>, now = Date.now()): number | null {
  if (!task.started_at) return null;
  const end = task.finished_at ? Date.parse(task.finished_at) : now;
  return Math.max(0, (end - Date.parse(task.started_at)) / 1000);
}

/** Subscribes a component to the live stream; the latest handler is always the one called. */
export function useStream(handler: (message: StreamMessage) => void): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => stream.subscribe((message) => ref.current(message)), []);
}

/** Calls `fn` at most once per `ms`, trailing; for re-reads triggered by bursts of events. */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = 0;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const throttled = () => {
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  throttled.cancel = () => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return throttled;
}
