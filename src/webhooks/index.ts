/** Signed webhooks on task ends, delivered as Taskyard runs (retried, durable, visible in the ledger). */
export { installWebhooks, webhookConfigFromEnv, WEBHOOK_EVENTS, type WebhookEvent, type WebhookOptions, type WebhookPayload } from './install.js';
export { SIGNATURE_HEADER, signatureHeader, verifySignature } from './signature.js';
export {
  createWebhookTask,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
  MIN_WEBHOOK_SECRET_LENGTH,
  WEBHOOK_TASK_NAME,
  webhookTask,
  type WebhookDeliveryResult,
  type WebhookParams,
  type WebhookTaskDefinition,
  type WebhookTaskOptions,
} from './task.js';
