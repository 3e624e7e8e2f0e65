import type { TaskRegistry } from '../core/registry.js';
import { outcomeChange } from '../engines/execution.js';
import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import { isDead } from './peers.js';
import type { MaintenanceService } from './service.js';

/**
 * Rescues runs whose owner is gone (its lease expired, or its pid is dead on this host): each is
 * retried at once (it did not fail on its own), failed once its attempts are used up, or REVOKED
 * if a cancel was requested. Runs of live owners are never touched. Oban calls this Lifeline;
 * River, the job rescuer. The seed's `update_task_statuses` does this job for Celery.
 */
export class Rescuer implements MaintenanceService {
  readonly name = 'rescuer';
  readonly leaderOnly = true;

  constructor(
    private readonly store: TaskStore,
    private readonly registry: TaskRegistry,
    private readonly logger: Logger,
    private readonly host: string,
    readonly intervalMs: number,
  ) {}

  async runOnce(now: number): Promise<number> {
    const started = await this.store.findStarted();
    if (started.length === 0) return 0;
    const live = new Set((await this.store.workers()).filter((w) => !isDead(w, now, this.host)).map((w) => w.id));
    const orphans = started.filter((r) => r.worker === null || !live.has(r.worker));
    if (orphans.length === 0) return 0;
    const error = Object.assign(new Error('Worker lost: the process died while the task was running'), { name: 'WorkerLostError' });
    const changes = orphans.map((record) => {
      const definition = this.registry.has(record.name) ? this.registry.get(record.name) : undefined;
      const change = outcomeChange(record, definition, { ok: false, error }, now);
      if (change.to === 'RETRY') change.patch.runAt = now;
      // Only while the dead worker still owns it: never a run someone has since reclaimed.
      return { ...change, worker: record.worker ?? undefined };
    });
    const events = await this.store.apply(changes);
    const rescued = orphans.filter((_, i) => events[i] !== null).map((r) => r.id);
    const applied = rescued.length;
    if (applied > 0) this.logger.warn({ count: applied, task_ids: rescued.slice(0, 10), workers: [...new Set(orphans.map((r) => r.worker))] }, 'rescued runs of a lost worker');
    return applied;
  }
}
