import type { TaskRecord } from '../../core/record.js';
import type { Logger } from '../types.js';
import type { RunLimits, TaskStore } from '../../store/types.js';
import { tenantKey } from '../../store/fair.js';
import { jobOf } from './jobs.js';

/**
 * Fairness and limits on BullMQ. Open-source BullMQ has no groups (a Pro feature), so:
 * - fairness is approximate, by job priority: a run is dispatched behind its tenant's backlog
 *   (its waiting runs in the ledger), so a tenant's first run goes before another tenant's
 *   thousandth at the same Taskyard priority;
 * - limits (tenantConcurrency, rateLimit) are checked by the ledger when a worker starts a run
 *   (see TaskStore.start); a run held back goes back to Redis, delayed, and is looked at again.
 */

/** BullMQ priorities a Taskyard priority level spans: the backlog rank counts up to this. */
const RANK_SPAN = 1024;
/** The middle of BullMQ's range (1 ... 2,097,152), where Taskyard priority 0 sits. */
const MIDDLE = 1024 * RANK_SPAN;
/** Taskyard priorities beyond this (either sign) share the extreme level. */
const LEVELS = RANK_SPAN - 1;

/** How long a run held back by its limits waits in Redis before a worker tries it again. */
export const LIMIT_RECHECK_MS = 200;

/**
 * BullMQ runs the lowest number first, FIFO among equals. Higher Taskyard priorities get lower
 * numbers, one span each; within a span, the run's place in its tenant's backlog (ranks past the
 * span share its last number, so a deep backlog still goes after every shallower one).
 */
export function fairBullPriority(priority: number, rank: number): number {
  const level = Math.max(-LEVELS, Math.min(LEVELS, Math.round(priority)));
  return MIDDLE - level * RANK_SPAN + Math.min(Math.max(0, rank), RANK_SPAN - 1);
}

export class BullFairness {
  constructor(
    private readonly store: TaskStore,
    private readonly logger: Logger,
    /** Limits of the definitions that have some, by name. */
    readonly limits: ReadonlyMap<string, RunLimits>,
  ) {}

  /** Jobs for these runs, each placed behind its tenant's backlog. */
  async jobsOf(records: readonly TaskRecord[], now: number): Promise<Array<ReturnType<typeof jobOf>>> {
    const jobs = records.map((record) => jobOf(record, now));
    const inBatch = new Map<string, number>();
    for (const record of records) inBatch.set(tenantKey(record.tenantId), (inBatch.get(tenantKey(record.tenantId)) ?? 0) + 1);
    let backlog: Map<string, number>;
    try {
      backlog = await this.store.backlog([...inBatch.keys()]);
    } catch (error) {
      // Dispatch never waits on fairness: without the backlog, plain priorities.
      this.logger.warn({ err: error }, 'could not read the tenants\' backlogs; dispatching without fairness');
      return jobs;
    }
    // The ledger's counts already hold this batch: its runs rank after the ones waiting before it.
    const next = new Map([...inBatch].map(([tenant, n]) => [tenant, Math.max(0, (backlog.get(tenant) ?? n) - n)]));
    records.forEach((record, i) => {
      const tenant = tenantKey(record.tenantId);
      const rank = next.get(tenant)!;
      next.set(tenant, rank + 1);
      jobs[i]!.opts.priority = fairBullPriority(record.priority, rank);
    });
    return jobs;
  }

  /**
   * When a run that could not be started should be tried again: when it is due, or (a definition
   * with limits: they may have been full) shortly. Null: drop the job (revoked, finished, or
   * running elsewhere).
   */
  retryAt(current: TaskRecord | null, now: number): number | null {
    if (!current || (current.state !== 'PENDING' && current.state !== 'RETRY')) return null;
    if (current.runAt > now) return current.runAt;
    return this.limits.has(current.name) ? now + LIMIT_RECHECK_MS : null;
  }
}
