import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { TaskyardError, type ErrorCode } from '../core/errors.js';

const STATUS: Record<ErrorCode, number> = {
  unknown_task_type: 400,
  invalid_params: 422,
  unauthorized: 401,
  forbidden: 403,
  task_not_found: 404,
  conflict: 409,
  backend_unavailable: 503,
};

/** Errors from the store's driver that mean "the backend is down", not "we have a bug". */
const UNAVAILABLE = /SQLITE_BUSY|SQLITE_LOCKED|SQLITE_FULL|SQLITE_IOERR|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection is closed|Store is closed|database connection is not open/;

/**
 * One error model for every router: `{"detail": "..."}`, plus `errors` for validation.
 * 500 is reserved for bugs.
 */
export function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof TaskyardError) {
    const status = STATUS[error.code];
    if (status === 503) reply.header('Retry-After', '5');
    const body: Record<string, unknown> = { detail: error.message };
    if (error.code === 'invalid_params' && Array.isArray(error.details)) body.errors = error.details;
    void reply.status(status).send(body);
    return;
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    void reply.status(413).send({ detail: 'Request body is larger than 1 MiB' });
    return;
  }
  if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    void reply.status(fastifyError.statusCode).send({ detail: fastifyError.message });
    return;
  }
  const text = `${(error as { code?: string }).code ?? ''} ${error.message}`;
  if (UNAVAILABLE.test(text)) {
    request.log.warn({ err: error }, 'backend unavailable');
    void reply.status(503).header('Retry-After', '5').send({ detail: `Backend unavailable: ${error.message}` });
    return;
  }
  request.log.error({ err: error }, 'unhandled error');
  void reply.status(500).send({ detail: 'Internal server error' });
}
