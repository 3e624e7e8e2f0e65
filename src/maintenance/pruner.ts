import { toMs, type Duration } from '../core/duration.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import type { MaintenanceService } from './service.js';

export interface PrunerOptions {
  /** Finished runs older than this are deleted with their timeline. Default 7 days. */
  retention?: Duration;
  /** How often to look. Default hourly, like the seed's cleanup_old_completed_tasks. */
  interval?: Duration;
  /** Most rows deleted per commit, so a big backlog never blocks the engine for long. */
  batchSize?: number;
}

/**
 * Maintenance service: keeps the ledger from growing without bound. Live runs are never
 * touched; only SUCCESS, FAILURE and REVOKED runs past the retention go. Leader-only, so one
 * process prunes however many share the ledger.
 */
export class Pruner implements MaintenanceService {
  readonly name = 'pruner';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  private readonly retentionMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
    options: PrunerOptions = {},
  ) {
    this.retentionMs = toMs(options.retention ?? '7d');
    this.intervalMs = toMs(options.interval ?? '1h');
    this.batchSize = options.batchSize ?? 1000;
  }

  /** Deletes everything past retention, a batch per commit. Returns how many runs went. */
  async runOnce(now = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await this.store.prune(now - this.retentionMs, this.batchSize);
      total += deleted;
      if (deleted < this.batchSize) break;
    }
    if (total > 0) this.logger.info({ deleted: total }, 'pruned finished runs past retention');
    return total;
  }
}
