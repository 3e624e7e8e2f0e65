import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RateLimit } from '../config.js';
import type { Authenticator } from './auth.js';

/** "600 requests per minute", "50 requests per 10 s". */
function describeLimit(limit: RateLimit): string {
  const unit = limit.windowMs === 60_000 ? 'minute' : limit.windowMs === 3_600_000 ? 'hour' : limit.windowMs === 1000 ? 'second' : `${limit.windowMs / 1000} s`;
  return `${limit.max} requests per ${unit}`;
}

/**
 * Requests per API key (or per client IP when the caller has no valid key, so guessing keys is
 * limited too), over a fixed window. Checked before authentication; routes marked `unlimited`
 * (health, metrics) are not counted. Over the limit: 429 with Retry-After and the usual error body.
 */
export async function installRateLimit(app: FastifyInstance, auth: Authenticator, limit: RateLimit): Promise<void> {
  const keyOf = (request: FastifyRequest): string => {
    try {
      const principal = auth.authenticate(request);
      if (!principal.anonymous) return `key:${principal.keyId}`;
    } catch {}
    return `ip:${request.ip}`;
  };
  await app.register(rateLimit, {
    global: false,
    max: limit.max,
    timeWindow: limit.windowMs,
    keyGenerator: keyOf,
    allowList: (request) => request.routeOptions.config?.unlimited === true,
    errorResponseBuilder: (_request, context) =>
      Object.assign(new Error(`Rate limit exceeded: ${describeLimit(limit)}; retry in ${context.after}`), { statusCode: context.statusCode }),
  });
  app.addHook('onRequest', app.rateLimit());
}
