import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Task, type TaskPage } from './api';
import type { TaskEvent } from './events';
import { applyEvent, throttle, useStream } from './live';

export interface LiveTasks {
  tasks: Task[];
  nextCursor: string | null;
  loading: boolean;
  error: string | null;
  reload(): void;
}

/**
 * A page of tasks kept current by the event stream: events update the rows they name, and a
 * new run that may belong in the page triggers one re-read (at most one a second), never a poll.
 */
export function useLiveTasks(
  fetchPage: (signal: AbortSignal) => Promise<TaskPage>,
  /** Changes when the query changes: the page is read again. */
  queryKey: string,
  /** Whether a new run named by this event could belong in the page. */
  acceptsNew: (event: TaskEvent) => boolean,
): LiveTasks {
  const [state, setState] = useState<Omit<LiveTasks, 'reload'>>({ tasks: [], nextCursor: null, loading: true, error: null });
  const fetchRef = useRef(fetchPage);
  fetchRef.current = fetchPage;
  const inFlight = useRef<{ controller: AbortController; events: TaskEvent[] } | null>(null);

  const load = useCallback(() => {
    inFlight.current?.controller.abort();
    const request = { controller: new AbortController(), events: [] as TaskEvent[] };
    inFlight.current = request;
    setState((s) => ({ ...s, loading: true }));
    fetchRef.current(request.controller.signal).then(
      (page) => {
        if (inFlight.current !== request) return;
        inFlight.current = null;
        // Events that arrived while the page was being read may be newer than the page.
        const tasks = page.tasks.map((task) => request.events.reduce((t, e) => (e.task_id === t.task_id ? applyEvent(t, e) : t), task));
        setState({ tasks, nextCursor: page.next_cursor, loading: false, error: null });
      },
      (error: unknown) => {
        if (inFlight.current !== request || request.controller.signal.aborted) return;
        inFlight.current = null;
        setState((s) => ({ ...s, loading: false, error: error instanceof ApiError ? error.detail : 'The server cannot be reached.' }));
      },
    );
  }, []);

  const reloadSoon = useRef(throttle(load, 1000));
  useEffect(() => () => reloadSoon.current.cancel(), []);
  useEffect(() => load(), [queryKey, load]);

  const current = useRef(state);
  current.current = state;

  useStream((message) => {
    if (message.kind === 'resync') return load();
    inFlight.current?.events.push(...message.events);
    const s = current.current;
    const index = new Map(s.tasks.map((t, i) => [t.task_id, i]));
    let tasks: Task[] | null = null;
    let sawNew = false;
    for (const event of message.events) {
      const i = index.get(event.task_id);
      if (i === undefined) {
        if (event.type === 'enqueued' && acceptsNew(event)) sawNew = true;
        continue;
      }
      tasks ??= [...s.tasks];
      tasks[i] = applyEvent(tasks[i]!, event);
    }
    if (tasks) {
      current.current = { ...s, tasks };
      setState(current.current);
    }
    if (sawNew) reloadSoon.current();
  });

  return { ...state, reload: load };
}
