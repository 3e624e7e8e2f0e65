import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { defineTask, type TaskContext, type TaskDefinition } from '../core/definition.js';
import type { Duration } from '../core/duration.js';
import { NonRetryableError } from '../core/errors.js';
import type { RetryPolicy } from '../core/retry.js';
import { refusedDestination } from './addresses.js';
import { signatureHeader } from './signature.js';

export const WEBHOOK_TASK_NAME = 'taskyard.webhook';
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Shorter secrets can be guessed offline from one captured signature. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

/** Why a webhook secret cannot be used, or null. */
export function secretProblem(secret: unknown): string | null {
  if (typeof secret !== 'string' || secret.trim() === '') return 'a secret is required';
  if (secret.length < MIN_WEBHOOK_SECRET_LENGTH) return `the secret must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters`;
  return null;
}

/** `TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL`: true/1 or false/0 (default false). */
export function allowLinkLocalFromEnv(env: NodeJS.ProcessEnv): boolean {
  const value = env.TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL?.trim().toLowerCase() ?? '';
  if (value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new Error(`TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL must be true or false, got ${JSON.stringify(env.TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL)}`);
}

export const webhookParams = z.object({
  url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }),
  event: z.string().min(1).max(100),
  payload: z.record(z.string(), z.unknown()),
  /**
   * Proof that the delivery was created by `installWebhooks` (an HMAC of event, url and payload
   * with the webhook secret). Without it, anyone allowed to launch tasks could have Taskyard
   * sign a forged event for a receiver.
   */
  grant: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Informational only: the engine counts attempts (sent as X-Taskyard-Attempt). */
  attempt: z.number().int().min(0).optional(),
});
export type WebhookParams = z.output<typeof webhookParams>;

export interface WebhookDeliveryResult {
  url: string;
  status: number;
  duration_ms: number;
}

export type WebhookTaskDefinition = TaskDefinition<typeof webhookParams, WebhookDeliveryResult>;

export interface WebhookTaskOptions {
  /** Default: 5 attempts, exponential from 1 s, capped at 5 min. Tests shorten the delays. */
  retry?: Partial<RetryPolicy>;
  /** The engine's hard limit on one attempt (default 15 s); keep it above the fetch timeout. */
  hardTimeout?: Duration;
  /** Most deliveries at once per process, so a slow receiver cannot take every engine slot (default 10). */
  concurrency?: number;
}

/** What a delivery needs at run time; bound per definition by `installWebhooks`. */
export interface DeliveryConfig {
  secret: string;
  timeoutMs: number;
  /** Deliver to link-local and metadata addresses too (refused by default). */
  allowLinkLocal: boolean;
}

const bindings = new WeakMap<object, DeliveryConfig>();

/** @internal used by installWebhooks. */
export function bindDelivery(definition: object, config: DeliveryConfig): () => void {
  const existing = bindings.get(definition);
  if (existing && existing.secret !== config.secret) {
    throw new Error(
      'This taskyard.webhook definition is already installed with another secret in this process; ' +
        'give each yard its own definition with createWebhookTask()',
    );
  }
  bindings.set(definition, config);
  return () => {
    if (bindings.get(definition) === config) bindings.delete(definition);
  };
}

/**
 * A process that runs deliveries without calling installWebhooks (e.g. a worker) reads the env,
 * the same way webhookConfigFromEnv does (trimmed), so both sides compute the same grants.
 */
function configFromEnv(): DeliveryConfig | null {
  const secret = process.env.TASKYARD_WEBHOOK_SECRET?.trim();
  if (!secret) return null;
  const problem = secretProblem(secret);
  if (problem) throw new NonRetryableError(`TASKYARD_WEBHOOK_SECRET: ${problem}`);
  const timeout = Number(process.env.TASKYARD_WEBHOOK_TIMEOUT_MS);
  return {
    secret,
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : DEFAULT_WEBHOOK_TIMEOUT_MS,
    allowLinkLocal: allowLinkLocalFromEnv(process.env),
  };
}

/** The grant `installWebhooks` puts in a delivery's params; domain-separated from delivery signatures. */
export function grantOf(secret: string, event: string, url: string, payload: Record<string, unknown>): string {
  return createHmac('sha256', secret).update(`taskyard.webhook.grant\n${event}\n${url}\n${JSON.stringify(payload)}`).digest('hex');
}

function validGrant(secret: string, params: WebhookParams): boolean {
  if (!params.grant) return false;
  const expected = Buffer.from(grantOf(secret, params.event, params.url, params.payload), 'hex');
  return timingSafeEqual(Buffer.from(params.grant, 'hex'), expected);
}

/**
 * The webhook delivery task. One run is one delivery to one URL; the engine retries it with
 * backoff, and a delivery that used all its attempts ends FAILURE in the ledger. Because
 * deliveries are ledger runs, none is lost across a restart (at-least-once: a receiver should
 * dedupe on the body's signed `delivery_id`, also sent as X-Taskyard-Delivery). It is internal:
 * no API lists or launches it, since a copy of a delivery's params would be signed and sent again.
 */
export function createWebhookTask(options: WebhookTaskOptions = {}): WebhookTaskDefinition {
  const definition: WebhookTaskDefinition = defineTask({
    name: WEBHOOK_TASK_NAME,
    category: 'taskyard',
    displayName: 'Webhook delivery',
    description: 'POSTs a signed task event to a webhook URL, retrying with backoff.',
    params: webhookParams,
    retry: { attempts: 5, backoff: 'exponential', delay: '1s', maxDelay: '5m', ...options.retry },
    timeout: { hard: options.hardTimeout ?? '15s' },
    concurrency: options.concurrency ?? 10,
    internal: true,
    run: (params, ctx) => deliver(bindings.get(definition) ?? configFromEnv(), params, ctx),
  });
  return definition;
}

/** The default delivery task; add it to the yard's tasks when webhooks are used. */
export const webhookTask = createWebhookTask();

async function deliver(config: DeliveryConfig | null, params: WebhookParams, ctx: TaskContext): Promise<WebhookDeliveryResult> {
  if (!config) throw new NonRetryableError('No webhook secret: call installWebhooks() or set TASKYARD_WEBHOOK_SECRET');
  if (!validGrant(config.secret, params)) {
    throw new NonRetryableError('Refused: webhook deliveries are created by installWebhooks(), not launched by hand');
  }
  if (!config.allowLinkLocal) {
    const refused = await refusedDestination(params.url);
    if (refused) throw new NonRetryableError(`Refused webhook ${params.url}: ${refused} (allowLinkLocal permits it)`);
  }
  // The delivery id is inside the signed body, so a receiver can dedupe on it: a replayed request
  // cannot carry a fresh id without breaking the signature.
  const body = JSON.stringify({ ...params.payload, delivery_id: ctx.taskId });
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(config.timeoutMs)]);
  const started = Date.now();
  let response: Response;
  try {
    response = await fetch(params.url, {
      method: 'POST',
      body,
      signal,
      redirect: 'manual',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'Taskyard-Webhooks/1',
        'X-Taskyard-Event': params.event,
        'X-Taskyard-Delivery': ctx.taskId,
        'X-Taskyard-Attempt': String(ctx.attempt),
        'X-Taskyard-Signature': signatureHeader(config.secret, body),
      },
    });
  } catch (error) {
    throw requestError(params.url, error, ctx, config.timeoutMs);
  }
  // Read (a bounded part of) the answer, so the connection is reused and errors say something.
  let excerpt = '';
  try {
    excerpt = await readExcerpt(response, 500);
  } catch (error) {
    if (!response.ok) throw requestError(params.url, error, ctx, config.timeoutMs);
  }
  const { status } = response;
  if (status >= 200 && status < 300) return { url: params.url, status, duration_ms: Date.now() - started };
  const message = `Webhook ${params.url} answered ${status}${excerpt ? `: ${excerpt}` : ''}`;
  // A receiver that rejects the request itself will reject it again; 408 and 429 mean "later".
  if ((status >= 400 && status < 500 && status !== 408 && status !== 429) || (status >= 300 && status < 400)) {
    throw new NonRetryableError(status < 400 ? `${message} (redirects are not followed)` : message);
  }
  throw new Error(message);
}

function requestError(url: string, error: unknown, ctx: TaskContext, timeoutMs: number): unknown {
  if (ctx.signal.aborted) return ctx.signal.reason ?? error; // cancelled or soft timeout: let the engine decide
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return new Error(`Webhook ${url} timed out after ${timeoutMs} ms`);
  const reason = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
  return new Error(`Webhook ${url} failed: ${reason}`);
}

async function readExcerpt(response: Response, max: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= max) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max).trim();
}
