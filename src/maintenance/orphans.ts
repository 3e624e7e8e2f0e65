import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { toMs, type Duration } from '../core/duration.js';
import { isTerminal } from '../core/states.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import { WAITING_KINDS, type Broker, type BrokerJob } from './broker.js';
import type { MaintenanceService } from './service.js';

export interface OrphanCleanerOptions {
  /** Default every 24 hours, like the seed's cleanup_orphaned_trackers. */
  interval?: Duration;
  /** Jobs looked at (and removed) per step. Default 500. */
  batchSize?: number;
}

export interface OrphanReport {
  scanned: number;
  removed: number;
}

/**
 * The seed's `cleanup_orphaned_trackers`, seen from the broker's side: waiting jobs whose run is
 * not in the ledger (pruned, or the ledger was restored) or has finished (revoked while Redis was
 * away, say) are removed, a batch at a time. Workers would drop them anyway, but only after they
 * had held a slot and, for delayed jobs, after waiting out their delay. The other side (runs
 * whose job vanished) is the status sync's.
 *
 * A run is written to the ledger before its job is added, so a job seen here always finds its run.
 * Jobs added or taken while a scan goes on may be skipped until the next round.
 */
export class OrphanCleaner implements MaintenanceService {
  readonly name = 'orphan_cleaner';
  readonly displayName = 'Remove orphaned engine jobs';
  readonly leaderOnly = true;
  readonly recorded = true;
  readonly intervalMs: number;
  private readonly batchSize: number;

  constructor(
    private readonly store: TaskStore,
    private readonly broker: Broker,
    private readonly logger: Logger,
    options: OrphanCleanerOptions = {},
  ) {
    this.intervalMs = toMs(options.interval ?? '24h');
    this.batchSize = options.batchSize ?? 500;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error('orphan cleaner batchSize must be an integer >= 1');
  }

  async runOnce(): Promise<OrphanReport> {
    let scanned = 0;
    let removed = 0;
    for (const kind of WAITING_KINDS) {
      for (let start = 0; ; ) {
        const jobs = await this.broker.waitingJobs(kind, start, this.batchSize);
        scanned += jobs.length;
        const gone = jobs.length > 0 ? await this.removeOrphans(jobs) : 0;
        removed += gone;
        if (jobs.length < this.batchSize) break;
        start += jobs.length - gone; // the jobs after the removed ones moved up
        await yieldToEventLoop();
      }
    }
    if (removed > 0) this.logger.warn({ scanned, removed }, 'removed broker jobs whose run is gone or finished');
    return { scanned, removed };
  }

  private async removeOrphans(jobs: BrokerJob[]): Promise<number> {
    const ids = [...new Set(jobs.map((j) => j.taskId).filter((id): id is string => id !== null))];
    const runs = new Map((await this.store.getMany(ids)).map((r) => [r.id, r]));
    const orphans = jobs.filter((job) => {
      const run = job.taskId === null ? undefined : runs.get(job.taskId);
      return run === undefined || isTerminal(run.state);
    });
    return orphans.length > 0 ? this.broker.removeJobs(orphans.map((j) => j.jobId)) : 0;
  }
}
