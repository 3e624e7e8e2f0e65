import type { TaskEvent } from '../core/events.js';
import type { Taskyard } from '../taskyard.js';
import { refusedHost } from './addresses.js';
import { allowLinkLocalFromEnv, bindDelivery, DEFAULT_WEBHOOK_TIMEOUT_MS, grantOf, secretProblem, WEBHOOK_TASK_NAME } from './task.js';

export const WEBHOOK_EVENTS = ['succeeded', 'failed', 'revoked'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookOptions {
  /** Notified of every run's end; a definition's own `webhook` URL is notified as well. */
  url?: string;
  /** Signs every delivery (see signature.ts); at least 16 characters. */
  secret: string;
  /** Which ends to deliver (default all three). */
  events?: WebhookEvent[];
  /** Per-request timeout of a delivery (default 10 s). */
  timeoutMs?: number;
  /**
   * Deliver to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00::/8,
   * metadata.google.internal, ...). Refused by default: a signed POST there is a request forgery.
   */
  allowLinkLocal?: boolean;
}

/** The body a receiver gets, less `delivery_id`, which each delivery adds (see task.ts). */
export interface WebhookPayload {
  [key: string]: unknown;
  event: WebhookEvent;
  task_id: string;
  name: string;
  task_type: string;
  state: string;
  tenant_id: string | null;
  result: unknown;
  error: string | null;
  finished_at: string;
}

/**
 * Sends a signed webhook when a run ends. A durable consumer of the event log (run by the leader,
 * its cursor in the ledger) turns each ending into a `taskyard.webhook` run, so nothing is lost to
 * a crash between a commit and its delivery, and with any number of processes each event is
 * delivered once per URL (the delivery's idempotency key is the event's seq). Deliveries are
 * retried with backoff, survive restarts, and end FAILURE in the ledger once their attempts are
 * used; a slow or down receiver never delays task execution. Returns a function that uninstalls.
 */
export function installWebhooks(yard: Taskyard, options: WebhookOptions): () => void {
  if (!yard.registry.has(WEBHOOK_TASK_NAME)) {
    throw new Error(
      `installWebhooks: the yard has no '${WEBHOOK_TASK_NAME}' task. Add webhookTask (from src/webhooks) ` +
        'to createTaskyard({ tasks: [...] }) so deliveries can run.',
    );
  }
  const problem = secretProblem(options.secret);
  if (problem) throw new Error(`installWebhooks: ${problem}`);
  const allowLinkLocal = options.allowLinkLocal ?? false;
  if (options.url !== undefined) checkUrl(options.url, 'url', allowLinkLocal);
  for (const definition of yard.registry.all()) {
    if (definition.webhook) checkUrl(definition.webhook, `webhook of ${definition.name}`, allowLinkLocal);
  }
  const events = options.events ?? [...WEBHOOK_EVENTS];
  for (const event of events) {
    if (!WEBHOOK_EVENTS.includes(event)) throw new Error(`installWebhooks: unknown event ${JSON.stringify(event)}`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new Error('installWebhooks: timeoutMs must be > 0');
  const delivery = yard.registry.get(WEBHOOK_TASK_NAME);
  if (delivery.hardTimeoutMs !== null && timeoutMs >= delivery.hardTimeoutMs) {
    yard.logger.warn({ timeoutMs, hardTimeoutMs: delivery.hardTimeoutMs }, 'webhook timeoutMs is not below the delivery task hard timeout');
  }
  const unbind = bindDelivery(delivery, { secret: options.secret, timeoutMs, allowLinkLocal });

  const enqueue = async (event: TaskEvent) => {
    const definition = yard.registry.has(event.name) ? yard.registry.get(event.name) : null;
    const urls = [...new Set([options.url, definition?.webhook].filter((u): u is string => !!u))];
    if (urls.length === 0) return;
    const record = await yard.get(event.taskId).catch((error) => {
      if ((error as { code?: string }).code === 'task_not_found') return null; // pruned since: nothing to tell
      throw error;
    });
    if (!record) return;
    const type = event.type as WebhookEvent;
    const payload: WebhookPayload = {
      event: type,
      task_id: record.id,
      name: record.name,
      task_type: record.category,
      state: event.state,
      tenant_id: record.tenantId,
      // The record may have moved on (retried by hand) since this event; report what the event ended with.
      result: record.state === event.state ? record.result : null,
      error: record.state === event.state ? record.error : (event.data?.error as string | undefined) ?? null,
      finished_at: new Date(record.state === event.state && record.finishedAt !== null ? record.finishedAt : event.at).toISOString(),
    };
    await yard.submitMany(
      urls.map((url) => ({
        name: WEBHOOK_TASK_NAME,
        params: { url, event: type, payload, grant: grantOf(options.secret, type, url, payload) },
        // The event's seq makes a repeated event a no-op, while a run that ends again after a
        // manual retry is a new event and is delivered again.
        idempotencyKey: `${event.taskId}:${type}:${event.seq}:${url}`,
      })),
    );
  };

  const wanted = new Set<string>(events);
  const consumer = yard.consume('webhooks', async (page) => {
    for (const event of page) {
      // Never notify about notifications.
      if (wanted.has(event.type) && event.name !== WEBHOOK_TASK_NAME) await enqueue(event);
    }
  }, { intervalMs: 500 });
  return () => {
    yard.stopConsuming(consumer);
    unbind();
  };
}

function checkUrl(value: string, what: string, allowLinkLocal: boolean): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`Webhook ${what} is not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`Webhook ${what} must be http(s): ${value}`);
  // Names are resolved and checked again before each delivery; literals and known names fail here, at start-up.
  const refused = allowLinkLocal ? null : refusedHost(url.hostname);
  if (refused) {
    throw new Error(`Webhook ${what} is refused: ${refused}. Set allowLinkLocal (TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL=true) if you mean it`);
  }
}

/**
 * Options from `TASKYARD_WEBHOOK_URL`, `TASKYARD_WEBHOOK_SECRET` (and optional `TASKYARD_WEBHOOK_EVENTS`,
 * `TASKYARD_WEBHOOK_TIMEOUT_MS`, `TASKYARD_WEBHOOK_ALLOW_LINK_LOCAL`); null when webhooks are off.
 */
export function webhookConfigFromEnv(env: NodeJS.ProcessEnv = process.env): WebhookOptions | null {
  const url = env.TASKYARD_WEBHOOK_URL?.trim() || undefined;
  const secret = env.TASKYARD_WEBHOOK_SECRET?.trim() || undefined;
  if (!secret) {
    if (url) throw new Error('TASKYARD_WEBHOOK_URL is set but TASKYARD_WEBHOOK_SECRET is not: deliveries must be signed');
    return null;
  }
  const problem = secretProblem(secret);
  if (problem) throw new Error(`TASKYARD_WEBHOOK_SECRET: ${problem}`);
  const allowLinkLocal = allowLinkLocalFromEnv(env);
  if (url) checkUrl(url, 'TASKYARD_WEBHOOK_URL', allowLinkLocal);
  const options: WebhookOptions = { url, secret };
  if (allowLinkLocal) options.allowLinkLocal = true;
  const events = env.TASKYARD_WEBHOOK_EVENTS?.split(',').map((s) => s.trim()).filter(Boolean);
  if (events && events.length > 0) {
    const bad = events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
    if (bad.length) throw new Error(`TASKYARD_WEBHOOK_EVENTS: unknown ${bad.join(', ')} (use ${WEBHOOK_EVENTS.join(', ')})`);
    options.events = events as WebhookEvent[];
  }
  if (env.TASKYARD_WEBHOOK_TIMEOUT_MS) {
    const ms = Number(env.TASKYARD_WEBHOOK_TIMEOUT_MS);
    if (!Number.isFinite(ms) || ms <= 0) throw new Error('TASKYARD_WEBHOOK_TIMEOUT_MS must be a positive number of milliseconds');
    options.timeoutMs = ms;
  }
  return options;
}
