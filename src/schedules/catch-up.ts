import { ticksBetween, type Timing } from './timing.js';

/**
 * What to do with ticks missed while no scheduler ran (downtime, a leader change):
 * - `latest` (default): run once, for the newest missed tick, and skip the older ones, as Oban
 *   Cron and a Kubernetes CronJob with a starting deadline do;
 * - `none`: skip every missed tick and wait for the next one;
 * - `all`: run every missed tick, up to the newest CATCH_UP_LIMIT of them.
 * Ticks found on time are never "missed": they always run.
 */
export const CATCH_UP_POLICIES = ['latest', 'none', 'all'] as const;
export type CatchUp = (typeof CATCH_UP_POLICIES)[number];

/** Most missed ticks `catchUp: 'all'` runs; older ones are skipped. */
export const CATCH_UP_LIMIT = 100;

export interface TickPlan {
  /** Ticks to run, oldest first. */
  fire: number[];
  /** Ticks passed over, all older than the first to fire. */
  skipped: number;
  /** The newest tick looked at: once handled, the schedule moves past it. Null: nothing is due. */
  through: number | null;
}

/**
 * The ticks of one schedule due in (lastTick, now]. A tick more than `lateAfterMs` old is
 * missed, and `catchUp` decides whether it runs.
 */
export function planTicks(timing: Timing, lastTick: number, now: number, catchUp: CatchUp, lateAfterMs: number): TickPlan {
  const { ticks, dropped } = ticksBetween(timing, lastTick, now, CATCH_UP_LIMIT);
  if (ticks.length === 0) return { fire: [], skipped: 0, through: null };
  const onTime = ticks.filter((t) => now - t <= lateAfterMs);
  let fire: number[];
  if (catchUp === 'all') fire = ticks;
  else if (catchUp === 'none' || onTime.length > 0) fire = onTime;
  else fire = [ticks[ticks.length - 1]!];
  return { fire, skipped: dropped + ticks.length - fire.length, through: ticks[ticks.length - 1]! };
}
