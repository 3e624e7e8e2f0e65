import { isBackendUnavailable, TaskyardError } from '../core/errors.js';
import type { TaskRecord } from '../core/record.js';
import { LIVE_STATES } from '../core/states.js';
import type { Logger } from '../engines/types.js';
import { planTicks } from '../schedules/catch-up.js';
import { timingOf } from '../schedules/definition.js';
import type { ScheduleRow, TaskStore } from '../store/types.js';
import type { MaintenanceService } from './service.js';

/** What the scheduler asks of the runtime: one launch, idempotent by its key. */
export interface ScheduledLaunch {
  name: string;
  params: unknown;
  idempotencyKey: string;
  meta: Record<string, unknown>;
}

export interface SchedulerOptions {
  /** How often the leader looks for due ticks (default 1 s): a tick fires up to this late. */
  intervalMs?: number;
  /** A tick found later than this (default 10 s) was missed, and its schedule's catch-up policy decides. */
  lateAfterMs?: number;
}

/**
 * Maintenance service: fires schedules' ticks, on the leader only. Each tick is launched once
 * however many schedulers run (two leaders for a moment, across restarts):
 * - the run's idempotency key is `schedule:<name>:<tick ISO>`, so a second launch of a tick
 *   answers with the first run instead of making another;
 * - the schedule then moves past the tick by compare-and-set on its `last_tick`; a scheduler that
 *   loses that race stops, as another has handled the schedule.
 * The launch comes first: a crash between the two leaves the tick to be launched again, which
 * the key turns into the same run. Oban's Cron plugin and River's periodic jobs are the models.
 */
export class Scheduler implements MaintenanceService {
  readonly name = 'scheduler';
  readonly leaderOnly = true;
  readonly intervalMs: number;
  private readonly lateAfterMs: number;

  constructor(
    private readonly store: TaskStore,
    private readonly launch: (request: ScheduledLaunch) => Promise<TaskRecord>,
    private readonly logger: Logger,
    options: SchedulerOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.lateAfterMs = options.lateAfterMs ?? 10_000;
  }

  /** Handles every due tick of every enabled schedule. Returns how many runs it launched. */
  async runOnce(now = Date.now()): Promise<number> {
    let launched = 0;
    for (const schedule of await this.store.schedules()) {
      if (!schedule.enabled) continue;
      try {
        launched += await this.fire(schedule, now);
      } catch (error) {
        if (isBackendUnavailable(error)) throw error;
        this.logger.error({ err: error, schedule: schedule.name }, 'schedule could not fire');
      }
    }
    return launched;
  }

  private async fire(schedule: ScheduleRow, now: number): Promise<number> {
    const plan = planTicks(timingOf(schedule), schedule.lastTick, now, schedule.catchUp, this.lateAfterMs);
    if (plan.through === null) return 0;
    let from = schedule.lastTick;
    let lastTaskId = schedule.lastTaskId;
    let launched = 0;
    // Missed ticks are all older than the first to fire: they are recorded with it.
    let skipped = plan.skipped;
    let skipReason: string | null = skipped > 0 ? `missed while no scheduler ran (catch-up: ${schedule.catchUp})` : null;
    if (plan.fire.length === 0) {
      await this.store.advanceSchedule(schedule.name, from, { tick: plan.through, at: now, taskId: null, skipped, skipReason });
      return 0;
    }
    for (const tick of plan.fire) {
      const live = schedule.overlap ? null : await this.liveRun(lastTaskId);
      let taskId: string | null = null;
      if (live) {
        skipped += 1;
        skipReason = `previous run ${live.id} was still ${live.state}`;
      } else {
        const run = await this.launchTick(schedule, tick);
        if (typeof run === 'string') {
          skipped += 1;
          skipReason = run;
        } else {
          taskId = run.id;
          launched++;
        }
      }
      const moved = await this.store.advanceSchedule(schedule.name, from, { tick, at: now, taskId, skipped, skipReason });
      if (!moved) return launched; // another scheduler handled it (and launched the same run)
      from = tick;
      lastTaskId = taskId ?? lastTaskId;
      skipped = 0;
      skipReason = null;
    }
    return launched;
  }

  /**
   * Launches one tick's run. Returns it, or why the tick cannot run, recorded as a skip: the task
   * is not defined here, its params no longer pass, or the tick's key names another launch (a
   * launch made by hand with that key, or the schedule changed under another scheduler). A
   * skip, not a retry, so nothing can hold a schedule on one tick.
   */
  private async launchTick(schedule: ScheduleRow, tick: number): Promise<TaskRecord | string> {
    const at = new Date(tick).toISOString();
    try {
      return await this.launch({
        name: schedule.task,
        params: schedule.params,
        idempotencyKey: `schedule:${schedule.name}:${at}`,
        meta: { scheduled_by: schedule.name, scheduled_for: at },
      });
    } catch (error) {
      if (!(error instanceof TaskyardError) || error.code === 'backend_unavailable') throw error;
      this.logger.warn({ err: error, schedule: schedule.name }, 'scheduled run could not be launched');
      return `could not launch: ${error.message}`;
    }
  }

  private async liveRun(taskId: string | null): Promise<TaskRecord | null> {
    if (taskId === null) return null;
    const run = await this.store.get(taskId, '*');
    return run && LIVE_STATES.includes(run.state) ? run : null;
  }
}
