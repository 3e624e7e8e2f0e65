import type { FastifyInstance } from 'fastify';
import type { TaskEvent } from '../../src/core/events.js';
import type { TaskRecord } from '../../src/core/record.js';
import type { Taskyard } from '../../src/taskyard.js';
import { reconciliationRoutes } from './routes.js';
import { ReconciliationStore, TASK_OF_MODE, type ReconciliationMode, type ReconciliationRow } from './store.js';

/**
 * The legacy reconciliation module (seed reconciliation-task-compatibility), built as an
 * application would build it on Taskyard: its own table in its own SQLite file, runs launched
 * through `yard.launch`, and a durable consumer of the event log (`yard.consume`) that keeps its
 * rows in step with the ledger: its cursor is in the ledger, so after a crash it catches up
 * instead of missing what happened meanwhile. It never touches the ledger's storage.
 */

const MODE_OF_TASK = new Map(Object.entries(TASK_OF_MODE).map(([mode, name]) => [name, mode as ReconciliationMode]));

const PREFIX = 'accounting.tasks.';

export interface ReconciliationModuleOptions {
  yard: Taskyard;
  /** The module's SQLite file, e.g. `<dataDir>/reconciliation.db`. */
  filename: string;
}

export interface ReconciliationModule {
  /** Fastify routes; mount with `buildApp({ plugins: [module.routes] })`. */
  routes(app: FastifyInstance): void;
  /** Waits for pending hook work, stops listening to the yard, closes the table. */
  close(): Promise<void>;
  /** Resolves once every event received so far has been applied to the table (tests, shutdown). */
  idle(): Promise<void>;
  readonly store: ReconciliationStore;
}

export function createReconciliationModule(options: ReconciliationModuleOptions): ReconciliationModule {
  const { yard } = options;
  const store = new ReconciliationStore(options.filename);
  const sync = new LedgerSync(yard, store);
  const consumer = yard.consume('reconciliation', (events) => sync.applyAll(events), { intervalMs: 250 });
  let closed = false;

  return {
    store,
    routes: (app) => reconciliationRoutes(app, { yard, store }),
    // Only the process holding the consumer's role consumes; elsewhere this returns at once.
    idle: async () => {
      await consumer.runOnce();
    },
    async close() {
      if (closed) return;
      closed = true;
      yard.stopConsuming(consumer);
      await consumer.runOnce().catch(() => {});
      store.close();
    },
  };
}

const iso = (t: number | null | undefined): string | null => (t === null || t === undefined ? null : new Date(t).toISOString());

/** Applies ledger events to the module's rows, one at a time in sequence order. */
class LedgerSync {
  constructor(
    private readonly yard: Taskyard,
    private readonly store: ReconciliationStore,
  ) {}

  async applyAll(events: TaskEvent[]): Promise<void> {
    for (const event of events) {
      if (!event.name.startsWith(PREFIX)) continue;
      try {
        await this.apply(event);
      } catch (error) {
        // One bad event must not stall the module: it is logged and passed over.
        this.yard.logger.error({ err: error, taskId: event.taskId }, 'reconciliation: could not apply a task event');
      }
    }
  }

  private async apply(event: TaskEvent): Promise<void> {
    if (!this.store.db.open) return;
    let run: TaskRecord | null = null;
    const load = async () => (run ??= await this.yard.get(event.taskId).catch(() => null));
    const row = this.store.byTaskId(event.taskId) ?? (this.store.hasUnbound() ? await this.bindLate(event, await load()) : undefined);
    if (!row) return;
    const data = event.data ?? {};
    switch (event.type) {
      case 'enqueued':
        // A manual retry starts the row over; a requeue at shutdown just waits again.
        this.store.markQueued(row.id, data.retry === true);
        break;
      case 'started':
        this.store.markRunning(row.id, iso(event.at)!);
        break;
      case 'progress':
        if (typeof data.progress === 'number') this.store.setProgress(row.id, data.progress);
        break;
      case 'retry':
        // Waiting for its backoff: live again, not running.
        this.store.markQueued(row.id, false);
        break;
      case 'succeeded': {
        const record = await load();
        const result = (record?.result ?? {}) as Record<string, unknown>;
        this.store.markCompleted(
          row.id,
          { pipeline: result.pipeline, suggestions: result.suggestions, stats: result.stats },
          { startedAt: iso(record?.startedAt), finishedAt: iso(record?.finishedAt ?? event.at)! },
        );
        break;
      }
      case 'failed': {
        const message = typeof data.error === 'string' ? data.error : ((await load())?.error ?? 'Failed');
        this.store.markEnded(row.id, 'failed', message, iso(event.at)!);
        break;
      }
      case 'revoked': {
        const reason = typeof data.reason === 'string' && data.reason ? data.reason : 'Revoked';
        this.store.markEnded(row.id, 'cancelled', reason, iso(event.at)!);
        break;
      }
    }
  }

  /**
   * The run can start before `/start/` has stored its task id. Such a run names its row in
   * `params.reconciliation_task_id`; bind it only to a row still waiting for its task id, of the
   * same tenant and mode, so a run launched elsewhere cannot take over another row.
   */
  private async bindLate(event: TaskEvent, run: TaskRecord | null): Promise<ReconciliationRow | undefined> {
    const mode = MODE_OF_TASK.get(event.name);
    const params = (run?.params ?? null) as { reconciliation_task_id?: unknown } | null;
    const id = params?.reconciliation_task_id;
    if (!mode || !run || run.tenantId === null || typeof id !== 'number') return undefined;
    const row = this.store.unbound(id, run.tenantId, mode);
    if (!row) return undefined;
    this.store.bindTask(row.id, event.taskId);
    return { ...row, task_id: event.taskId };
  }
}
