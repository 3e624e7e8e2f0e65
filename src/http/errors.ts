import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { TaskyardError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../engines/types.js';

const STATUS: Record<ErrorCode, number> = {
  unknown_task_type: 400,
  invalid_params: 422,
  unauthorized: 401,
  forbidden: 403,
  task_not_found: 404,
  conflict: 409,
  backend_unavailable: 503,
  payload_too_large: 413,
  bad_request: 400,
  not_found: 404,
};

/** Errors from the store's driver that mean "the backend is down", not "we have a bug". */
const UNAVAILABLE = /SQLITE_BUSY|SQLITE_LOCKED|SQLITE_FULL|SQLITE_IOERR|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection is closed|Store is closed|database connection is not open/;

/** "1 MiB", "512 KiB", "100 bytes": body limits as people write them. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * One error model for every router: `{"detail": "..."}`, plus `errors` for validation.
 * 500 is reserved for bugs. Every 5xx is logged with its stack through `logger`, whatever the
 * route, so a bug never hides behind a bare "Internal server error".
 */
export function createErrorHandler(logger: Logger) {
  return function errorHandler(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
    const where = { method: request.method, url: request.url };
    if (error instanceof TaskyardError) {
      const status = STATUS[error.code];
      if (status === 503) {
        logger.warn({ err: error, ...where }, 'backend unavailable');
        reply.header('Retry-After', '5');
      }
      const body: Record<string, unknown> = { detail: error.message };
      if (error.code === 'invalid_params' && Array.isArray(error.details)) body.errors = error.details;
      void reply.status(status).send(body);
      return;
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      void reply.status(413).send({ detail: `Request body is larger than ${formatBytes(request.routeOptions.bodyLimit)}` });
      return;
    }
    if (fastifyError.statusCode && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      void reply.status(fastifyError.statusCode).send({ detail: fastifyError.message });
      return;
    }
    const text = `${(error as { code?: string }).code ?? ''} ${error.message}`;
    if (UNAVAILABLE.test(text)) {
      logger.warn({ err: error, ...where }, 'backend unavailable');
      void reply.status(503).header('Retry-After', '5').send({ detail: `Backend unavailable: ${error.message}` });
      return;
    }
    logger.error({ err: error, ...where }, 'unhandled error');
    void reply.status(500).send({ detail: 'Internal server error' });
  };
}
