import type { TaskState } from './states.js';

export type TaskEventType =
  | 'enqueued'
  | 'started'
  | 'progress'
  | 'log'
  | 'cancel_requested'
  | 'retry'
  | 'succeeded'
  | 'failed'
  | 'revoked';

/** A transition, progress report or log line. `seq` orders all events of a ledger. */
export interface TaskEvent {
  seq: number;
  taskId: string;
  type: TaskEventType;
  state: TaskState;
  name: string;
  category: string;
  tenantId: string | null;
  at: number;
  data: Record<string, unknown> | null;
}

export type TaskEventListener = (event: TaskEvent) => void;

/**
 * In-process fan-out of committed events, in commit order. A throwing listener is isolated
 * and reported, so one bad subscriber cannot stop the others or the engine.
 */
export class EventBus {
  private readonly listeners = new Set<TaskEventListener>();
  constructor(private readonly onListenerError: (error: unknown) => void = () => {}) {}

  subscribe(listener: TaskEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(event: TaskEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}
