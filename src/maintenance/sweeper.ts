import type { TaskRecord } from '../core/record.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import type { MaintenanceService } from './service.js';

/** An engine that delivers runs through an external broker (BullMQ). */
export interface Dispatcher {
  /** The `engine` recorded on the runs it delivers. */
  readonly engineName: string;
  /** Of these waiting runs, those whose next job the broker does not hold. */
  missing(records: TaskRecord[]): Promise<TaskRecord[]>;
  /** Hands runs to the broker; idempotent (one job id per attempt). */
  dispatch(records: TaskRecord[]): Promise<void>;
}

export interface SweeperOptions {
  intervalMs: number;
  /** Runs changed more recently than this are left alone: their hand-off may be in flight. */
  graceMs: number;
  /** Waiting runs looked at per round; a long backlog is covered over several rounds. */
  pageSize: number;
}

export const DEFAULT_SWEEPER: SweeperOptions = { intervalMs: 1000, graceMs: 2000, pageSize: 1000 };

/**
 * Re-dispatches waiting runs that never reached the broker, or that it lost: a launch that
 * crashed between the ledger insert and the hand-off, a run the rescuer put back in RETRY after
 * its worker died, a Redis restart without persistence. The ledger is the truth, so this is what
 * makes "in the ledger" imply "will run". Re-adding is safe: job ids are idempotent, and a worker
 * starts a run only if the ledger says it is still waiting.
 */
export class Sweeper implements MaintenanceService {
  readonly name = 'sweeper';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  private readonly options: SweeperOptions;
  /** Where the previous round stopped in the waiting runs (newest first), so each round goes on. */
  private cursor: string | undefined;

  constructor(
    private readonly store: TaskStore,
    private readonly dispatcher: Dispatcher,
    private readonly logger: Logger,
    options: Partial<SweeperOptions> = {},
  ) {
    this.options = { ...DEFAULT_SWEEPER, ...options };
    this.intervalMs = this.options.intervalMs;
  }

  /** One page on from the previous round; returns how many runs it dispatched. */
  async runOnce(now: number): Promise<number> {
    const { dispatched, next } = await this.sweepPage(this.cursor, now);
    this.cursor = next;
    return dispatched;
  }

  /** Every waiting run at once, page by page (the status sync's full pass); returns how many it dispatched. */
  async sweepAll(now: number): Promise<number> {
    let dispatched = 0;
    let cursor: string | undefined;
    do {
      const page = await this.sweepPage(cursor, now);
      dispatched += page.dispatched;
      cursor = page.next;
    } while (cursor !== undefined);
    return dispatched;
  }

  private async sweepPage(cursor: string | undefined, now: number): Promise<{ dispatched: number; next: string | undefined }> {
    const page = await this.store.list({ states: ['PENDING', 'RETRY'], limit: this.options.pageSize, cursor }, '*');
    const next = page.nextCursor ?? undefined;
    const settled = now - this.options.graceMs;
    const candidates = page.tasks.filter((r) => r.engine === this.dispatcher.engineName && r.updatedAt < settled);
    if (candidates.length === 0) return { dispatched: 0, next };
    const missing = await this.dispatcher.missing(candidates);
    if (missing.length === 0) return { dispatched: 0, next };
    await this.dispatcher.dispatch(missing);
    this.logger.warn({ count: missing.length, task_ids: missing.slice(0, 10).map((r) => r.id) }, 'sweeper dispatched waiting runs the broker did not hold');
    return { dispatched: missing.length, next };
  }
}
