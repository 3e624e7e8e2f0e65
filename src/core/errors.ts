/**
 * Typed errors. Each carries a stable `code`; the HTTP layer maps codes to status codes,
 * so the core never knows about HTTP.
 */
export type ErrorCode =
  | 'unknown_task_type'
  | 'invalid_params'
  | 'task_not_found'
  | 'conflict'
  | 'backend_unavailable'
  | 'forbidden'
  | 'unauthorized'
  | 'payload_too_large'
  | 'bad_request'
  | 'not_found';

export class TaskyardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'TaskyardError';
  }
}

export interface FieldError {
  field: string;
  message: string;
}

export const unknownTaskType = (name: string) =>
  new TaskyardError('unknown_task_type', `Unknown task type: ${name}`);

export const taskNotFound = (id: string) => new TaskyardError('task_not_found', `Task ${id} not found`);

export const conflict = (message: string) => new TaskyardError('conflict', message);

/** A request that cannot mean what it says (e.g. a bulk action with no filter). */
export const badRequest = (message: string) => new TaskyardError('bad_request', message);

/** Something other than a task (a queue, a task type) that does not exist. */
export const notFound = (message: string) => new TaskyardError('not_found', message);

export const invalidParams = (errors: FieldError[]) =>
  new TaskyardError(
    'invalid_params',
    `Invalid parameters: ${errors.map(describeFieldError).join('; ')}`,
    errors,
  );

function describeFieldError(e: FieldError): string {
  if (!e.field) return e.message;
  return e.message.startsWith('is ') ? `${e.field} ${e.message}` : `${e.field}: ${e.message}`;
}

export const backendUnavailable = (message: string) => new TaskyardError('backend_unavailable', message);

/** Whether an error means "the ledger is unreachable or locked for now", as opposed to a bug or bad data. */
export function isBackendUnavailable(error: unknown): boolean {
  if (error instanceof TaskyardError) return error.code === 'backend_unavailable';
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(SQLITE_BUSY|SQLITE_LOCKED|SQLITE_IOERR|SQLITE_FULL|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|57P01|57P03|08\w{3})/.test(code);
}

/** Thrown by a task to fail at once, without using its remaining attempts. */
export class NonRetryableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NonRetryableError';
  }
}

/** Raised inside a run when its soft timeout passes; the run may catch it and clean up. */
export class SoftTimeoutError extends Error {
  constructor(ms: number) {
    super(`Soft time limit (${ms} ms) exceeded`);
    this.name = 'SoftTimeLimitExceeded';
  }
}

export class HardTimeoutError extends Error {
  constructor(ms: number) {
    super(`Hard time limit (${ms} ms) exceeded`);
    this.name = 'TimeLimitExceeded';
  }
}

/** The reason given to `ctx.signal` when a run is cancelled. */
export class CancelledError extends Error {
  constructor(readonly reason: string | null, readonly hard: boolean) {
    super(reason ? `Task revoked: ${reason}` : 'Task revoked');
    this.name = 'TaskRevokedError';
  }
}
