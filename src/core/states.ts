/**
 * Task states are Celery's, because the seeds' clients poll for exactly these strings.
 * Every transition in the system is checked here and nowhere else.
 */
export const TASK_STATES = ['PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const LIVE_STATES: readonly TaskState[] = ['PENDING', 'STARTED', 'RETRY'];
export const TERMINAL_STATES: readonly TaskState[] = ['SUCCESS', 'FAILURE', 'REVOKED'];

const ALLOWED: Record<TaskState, readonly TaskState[]> = {
  PENDING: ['STARTED', 'REVOKED'],
  // STARTED -> PENDING happens when a graceful shutdown puts unfinished work back in the queue.
  STARTED: ['SUCCESS', 'FAILURE', 'RETRY', 'REVOKED', 'PENDING'],
  RETRY: ['STARTED', 'REVOKED'],
  // A manual retry of a finished run puts it back in the queue under the same id.
  SUCCESS: [],
  FAILURE: ['PENDING'],
  REVOKED: ['PENDING'],
};

export function isTaskState(value: unknown): value is TaskState {
  return typeof value === 'string' && (TASK_STATES as readonly string[]).includes(value);
}

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function canTransition(from: TaskState, to: TaskState): boolean {
  return ALLOWED[from].includes(to);
}

export function assertTransition(taskId: string, from: TaskState, to: TaskState): void {
  if (!canTransition(from, to)) {
    throw new IllegalTransitionError(taskId, from, to);
  }
}

export class IllegalTransitionError extends Error {
  readonly code = 'illegal_transition';
  constructor(
    readonly taskId: string,
    readonly from: TaskState,
    readonly to: TaskState,
  ) {
    super(`Task ${taskId} cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}
