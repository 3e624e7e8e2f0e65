import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskEvent } from '../core/events.js';
import { TASK_STATES } from '../core/states.js';
import type { TenantClass } from '../store/types.js';
import type { Taskyard } from '../taskyard.js';
import { WEBHOOK_TASK_NAME } from '../webhooks/task.js';

/** Seconds, from a few milliseconds to an hour: tasks range from quick calls to long syncs. */
const DURATION_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Events that end a run, with the duration of its last attempt in `data.duration_ms`. */
const FINISHED = new Set<TaskEvent['type']>(['succeeded', 'failed', 'revoked']);

let processRegistry: Registry | null = null;

/**
 * Node's process metrics (CPU, memory, event loop, GC), collected once per process however many
 * apps it serves: each collector sets up its own observers.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Prometheus metrics of one yard, in a registry of their own (never prom-client's global one).
 * Counts by state come from the ledger on each scrape, so they are right whichever process ran
 * the tasks; durations, retries and webhook failures are counted from committed events as this
 * process sees them (every process sees every event of its ledger, so do not sum them across
 * processes).
 */
export class TaskMetrics {
  readonly registry = new Registry();
  private readonly tasks = new Gauge({
    name: 'taskyard_tasks',
    help: 'Runs in the ledger by state, task name and tenant class (tenant: runs of a tenant; none: tenant-less runs)',
    labelNames: ['state', 'name', 'tenant_class'] as const,
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: 'taskyard_queue_depth',
    help: 'Runs waiting (PENDING, delayed or RETRY) per queue',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  private readonly running = new Gauge({ name: 'taskyard_tasks_running', help: 'Runs STARTED in the ledger, in any process', registers: [this.registry] });
  private readonly runningHere = new Gauge({ name: 'taskyard_process_tasks_running', help: 'Runs executing in this process', registers: [this.registry] });
  private readonly duration = new Histogram({
    name: 'taskyard_task_duration_seconds',
    help: 'Duration of the last attempt of finished runs, by task name and final state',
    labelNames: ['name', 'state'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: 'taskyard_task_retries_total',
    help: 'Failed attempts that were scheduled for a retry, by task name',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  private readonly webhookFailures = new Counter({
    name: 'taskyard_webhook_delivery_failures_total',
    help: 'Failed webhook delivery attempts (final="true": the delivery gave up)',
    labelNames: ['final'] as const,
    registers: [this.registry],
  });
  private readonly unsubscribe: () => void;

  constructor(private readonly yard: Taskyard) {
    // Counters start at zero, so a rate() over them works before the first failure.
    this.webhookFailures.inc({ final: 'false' }, 0);
    this.webhookFailures.inc({ final: 'true' }, 0);
    this.unsubscribe = yard.on('*', (event) => this.observe(event));
  }

  private observe(event: TaskEvent): void {
    if (event.type === 'retry') this.retries.inc({ name: event.name });
    if (event.name === WEBHOOK_TASK_NAME && (event.type === 'retry' || event.type === 'failed')) {
      this.webhookFailures.inc({ final: String(event.type === 'failed') });
    }
    const ms = event.data?.duration_ms;
    if (FINISHED.has(event.type) && typeof ms === 'number') this.duration.observe({ name: event.name, state: event.state }, ms / 1000);
  }

  /** Reads the gauges from the ledger and the engine. */
  private async refresh(): Promise<void> {
    const [stats, info] = await Promise.all([this.yard.store.stats('*', Date.now()), this.yard.engine.info()]);
    this.tasks.reset();
    for (const tenantClass of ['tenant', 'none'] as TenantClass[]) {
      for (const [name, counts] of Object.entries(stats.byTenantClass[tenantClass])) {
        for (const state of TASK_STATES) this.tasks.set({ state, name, tenant_class: tenantClass }, counts[state]);
      }
    }
    this.queueDepth.reset();
    for (const [queue, depth] of Object.entries(stats.queueDepth.byQueue)) this.queueDepth.set({ queue }, depth);
    this.running.set(stats.byState.STARTED);
    this.runningHere.set(info.workers.reduce((sum, worker) => sum + worker.active.length, 0));
  }

  /** The exposition text: this yard's metrics, then the process's. */
  async text(): Promise<string> {
    await this.refresh();
    return `${await this.registry.metrics()}\n${await processMetrics().metrics()}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.unsubscribe();
  }
}
