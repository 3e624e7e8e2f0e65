import { toMs, type Duration } from '../core/duration.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import type { Broker } from './broker.js';
import type { Rescuer } from './rescuer.js';
import type { MaintenanceService } from './service.js';
import { DEFAULT_SWEEPER, Sweeper } from './sweeper.js';

export interface StatusSyncOptions {
  /** Default every 2 minutes, like the seed's update_task_statuses. */
  interval?: Duration;
}

export interface StatusSyncReport {
  /** STARTED runs of lost processes put back in the queue or failed (the rescuer). */
  rescued: number;
  /** Waiting runs the broker did not hold, handed to it again. */
  redispatched?: number;
  /** STARTED runs of live workers whose job the broker no longer holds: left to their owner's lease. */
  started_without_job?: number;
}

/**
 * The seed's `update_task_statuses`: reconciles the ledger with the engine, the ledger being the
 * truth. In one recorded round:
 * - runs whose owner is gone are rescued (the rescuer's own pass; it also runs on its short
 *   interval);
 * - with a broker: every waiting run whose job the broker lost is dispatched again (a full pass of
 *   the sweeper, which otherwise goes a page at a time), and STARTED runs whose job is gone are
 *   counted and logged but not touched: their owner is alive and still runs them (the ledger, not
 *   Redis, holds the outcome), and if it dies its lease expires and the rescuer takes over. A live
 *   process's runs are never taken from it.
 */
export class StatusSync implements MaintenanceService {
  readonly name = 'status_sync';
  readonly displayName = 'Sync run statuses with the engine';
  readonly leaderOnly = true;
  readonly recorded = true;
  readonly intervalMs: number;
  private readonly sweeper: Sweeper | null;

  constructor(
    private readonly store: TaskStore,
    private readonly rescuer: Rescuer,
    private readonly broker: Broker | null,
    private readonly logger: Logger,
    options: StatusSyncOptions = {},
  ) {
    this.intervalMs = toMs(options.interval ?? '2m');
    this.sweeper = broker ? new Sweeper(store, broker, logger, DEFAULT_SWEEPER) : null;
  }

  async runOnce(now: number): Promise<StatusSyncReport> {
    const rescued = await this.rescuer.runOnce(now);
    if (!this.broker || !this.sweeper) return { rescued };
    const redispatched = await this.sweeper.sweepAll(now);
    const started = (await this.store.findStarted()).filter((r) => r.engine === this.broker!.engineName);
    const orphaned = started.length > 0 ? await this.broker.withoutJob(started) : [];
    if (orphaned.length > 0) {
      this.logger.info({ count: orphaned.length, tasks: orphaned.slice(0, 10).map((r) => r.id) }, 'running runs without a job in the broker; their owners hold them until their lease says otherwise');
    }
    return { rescued, redispatched, started_without_job: orphaned.length };
  }
}
