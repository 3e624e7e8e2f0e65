import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { toMs, type Duration } from '../core/duration.js';
import type { Logger } from '../engines/types.js';
import type { FinishedState, TaskStore } from '../store/types.js';
import { FINISHED_STATES, RetentionRules, type RetentionPolicy } from './retention.js';
import type { MaintenanceService } from './service.js';

export interface PrunerOptions extends RetentionPolicy {
  /** How often to look. Default hourly, like the seed's cleanup_old_completed_tasks. */
  interval?: Duration;
  /** Most rows deleted per commit, so a big backlog never holds the ledger for long. Default 1000. */
  batchSize?: number;
}

export interface PruneReport {
  deleted: number;
  by_state: Record<FinishedState, number>;
}

/**
 * Maintenance service: keeps the ledger from growing without bound. Live runs are never
 * touched; only SUCCESS, FAILURE and REVOKED runs past their retention go (per state, with
 * per-definition overrides), a batch per commit, yielding to the event loop between batches so
 * the engine and the API keep their turn. Leader-only, so one process prunes however many share
 * the ledger. Its own rounds are runs in the ledger too, pruned by the same policy.
 */
export class Pruner implements MaintenanceService {
  readonly name = 'pruner';
  readonly displayName = 'Prune finished runs';
  readonly leaderOnly = true;
  readonly recorded = true;
  readonly intervalMs: number;
  private readonly rules: RetentionRules;
  private readonly batchSize: number;

  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
    options: PrunerOptions = {},
  ) {
    this.rules = new RetentionRules(options);
    this.intervalMs = toMs(options.interval ?? '1h');
    this.batchSize = options.batchSize ?? 1000;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error('pruner batchSize must be an integer >= 1');
  }

  /** Deletes everything past its retention. */
  async runOnce(now = Date.now()): Promise<PruneReport> {
    const byState = Object.fromEntries(FINISHED_STATES.map((s) => [s, 0])) as Record<FinishedState, number>;
    for (const rule of this.rules.at(now)) {
      for (;;) {
        const deleted = await this.store.prune(rule, this.batchSize);
        byState[rule.state] += deleted;
        if (deleted < this.batchSize) break;
        await yieldToEventLoop();
      }
    }
    const deleted = FINISHED_STATES.reduce((sum, s) => sum + byState[s], 0);
    if (deleted > 0) this.logger.info({ deleted, byState }, 'pruned finished runs past retention');
    return { deleted, by_state: byState };
  }
}
