import type { Duration } from '../core/duration.js';
import { TaskyardError } from '../core/errors.js';
import type { TaskRegistry } from '../core/registry.js';
import type { ScheduleRow } from '../store/types.js';
import { CATCH_UP_POLICIES, type CatchUp } from './catch-up.js';
import { parseTiming, type Timing } from './timing.js';

/** A schedule as written in code (`createTaskyard({ schedules })`) or sent to the API. */
export interface ScheduleDefinition {
  /** Unique; letters, digits and `._:-`, up to 100 characters. */
  name: string;
  /** The task definition to launch. */
  task: string;
  params?: Record<string, unknown>;
  /** A cron expression (5 fields, or 6 with seconds first), read in `timezone` (default UTC). */
  cron?: string;
  /** Or a fixed interval, aligned to the epoch (`'2m'` fires at every even minute). */
  every?: Duration;
  timezone?: string;
  /** Launch even while the previous run of this schedule is live (default false: that tick is skipped). */
  overlap?: boolean;
  /** Ticks missed while no scheduler ran (default `latest`; see catch-up.ts). */
  catchUp?: CatchUp;
  /** Default true. For a code schedule this applies when it is first stored; after that the API's switch wins. */
  enabled?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

const invalid = (field: string, message: string) =>
  new TaskyardError('invalid_params', `Invalid schedule: ${field} ${message}`, [{ field, message }]);

/** The stored form of an interval: a number of milliseconds gets its unit. */
const everyText = (every: Duration | undefined | null): string | null =>
  every === undefined || every === null ? null : typeof every === 'number' ? `${every}ms` : every;

/** How a row fires. Rows are checked before they are stored, so this cannot fail on them. */
export function timingOf(row: Pick<ScheduleRow, 'cron' | 'every' | 'timezone'>): Timing {
  return parseTiming(row);
}

/** Whether two rows fire at the same times. */
export const sameTiming = (a: Pick<ScheduleRow, 'cron' | 'every' | 'timezone'>, b: Pick<ScheduleRow, 'cron' | 'every' | 'timezone'>): boolean =>
  a.cron === b.cron && a.every === b.every && a.timezone === b.timezone;

/**
 * Checks a definition and makes its row: a known task (400 otherwise), valid params, timing and
 * catch-up policy (422 naming the field). `internal` allows Taskyard's own task definitions
 * (code may schedule them; API callers may not).
 */
export function scheduleRowOf(
  definition: ScheduleDefinition,
  registry: TaskRegistry,
  context: { now: number; source: ScheduleRow['source']; internal: boolean },
): ScheduleRow {
  if (typeof definition.name !== 'string' || !NAME.test(definition.name)) {
    throw invalid('name', 'must be 1-100 letters, digits or . _ : - (starting with a letter or digit)');
  }
  const task = context.internal ? registry.get(definition.task) : registry.getPublic(definition.task);
  const params = definition.params ?? {};
  const tenantId = task.tenantOf(registry.parseParams(task, params));
  const timing = parseTiming({ cron: definition.cron, every: definition.every, timezone: definition.timezone });
  const catchUp = definition.catchUp ?? 'latest';
  if (!CATCH_UP_POLICIES.includes(catchUp)) throw invalid('catch_up', `must be one of ${CATCH_UP_POLICIES.join(', ')}`);
  const { now } = context;
  return {
    name: definition.name,
    task: task.name,
    params,
    tenantId,
    cron: 'cron' in timing ? timing.cron : null,
    every: 'everyMs' in timing ? everyText(definition.every) : null,
    timezone: 'cron' in timing ? timing.timezone : null,
    overlap: definition.overlap ?? false,
    catchUp,
    enabled: definition.enabled ?? true,
    source: context.source,
    createdAt: now,
    updatedAt: now,
    // Ticks before a schedule existed are not missed: it starts from now.
    lastTick: now,
    lastTaskId: null,
    lastRunAt: null,
    skipped: 0,
    lastSkipReason: null,
    lastSkipAt: null,
  };
}

/** A stored row as a definition again (to apply a change to it and check the result). */
export function definitionOf(row: ScheduleRow): ScheduleDefinition {
  return {
    name: row.name,
    task: row.task,
    params: row.params as Record<string, unknown>,
    ...(row.cron !== null ? { cron: row.cron, timezone: row.timezone ?? undefined } : { every: row.every! }),
    overlap: row.overlap,
    catchUp: row.catchUp,
    enabled: row.enabled,
  };
}
