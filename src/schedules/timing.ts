import { Cron } from 'croner';
import { toMs, type Duration } from '../core/duration.js';
import { TaskyardError } from '../core/errors.js';

/** When a schedule fires: a cron expression (in a time zone) or a fixed interval. */
export type Timing = { cron: string; timezone: string | null } | { everyMs: number };

/** Shortest and longest interval allowed for `every`. */
const MIN_EVERY_MS = 1000;
const MAX_EVERY_MS = 366 * 86_400_000;

const invalid = (field: string, message: string) =>
  new TaskyardError('invalid_params', `Invalid schedule: ${field} ${message}`, [{ field, message }]);

/** Whether `zone` is an IANA time zone this runtime knows (e.g. `America/Santiago`, `UTC`). */
function knownTimezone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** An interval as milliseconds, or a 422 naming what is wrong with it. */
export function parseEvery(every: Duration): number {
  let ms: number;
  try {
    ms = toMs(every);
  } catch {
    throw invalid('every', `must be a duration like '30s', '2m', '1h' or '1d' (got ${JSON.stringify(every)})`);
  }
  if (ms < MIN_EVERY_MS || ms > MAX_EVERY_MS) throw invalid('every', 'must be between 1s and 366d');
  return ms;
}

/**
 * Checks a timing before it is stored: exactly one of cron and every, a cron expression croner
 * accepts and that ever fires, a known time zone (cron only). Throws a 422 naming the problem.
 */
export function parseTiming(input: { cron?: string | null; every?: Duration | null; timezone?: string | null }): Timing {
  const hasCron = input.cron !== undefined && input.cron !== null;
  const hasEvery = input.every !== undefined && input.every !== null;
  if (hasCron === hasEvery) throw invalid('cron', 'or every is required (exactly one of them)');
  if (hasEvery) {
    if (input.timezone) throw invalid('timezone', 'applies to cron schedules only');
    return { everyMs: parseEvery(input.every!) };
  }
  const timezone = input.timezone ?? null;
  if (timezone !== null && !knownTimezone(timezone)) throw invalid('timezone', `${JSON.stringify(timezone)} is not a known IANA time zone (e.g. UTC, America/Santiago)`);
  let cron: Cron;
  try {
    cron = new Cron(input.cron!, { paused: true, ...(timezone && { timezone }) });
  } catch (error) {
    throw invalid('cron', `${JSON.stringify(input.cron)} is not a valid cron expression: ${(error as Error).message}`);
  }
  if (cron.nextRun() === null) throw invalid('cron', `${JSON.stringify(input.cron)} never fires`);
  return { cron: input.cron!, timezone };
}

/** The first tick strictly after `after`, or null if there is none. */
export function nextTick(timing: Timing, after: number): number | null {
  if ('everyMs' in timing) return (Math.floor(after / timing.everyMs) + 1) * timing.everyMs;
  const cron = new Cron(timing.cron, { paused: true, ...(timing.timezone && { timezone: timing.timezone }) });
  return cron.nextRun(new Date(after))?.getTime() ?? null;
}

/** The next `count` ticks after `after`. Intervals are aligned to the epoch, so every process agrees on them. */
export function nextTicks(timing: Timing, after: number, count: number): number[] {
  const out: number[] = [];
  for (let t = nextTick(timing, after); t !== null && out.length < count; t = nextTick(timing, t)) out.push(t);
  return out;
}

/**
 * Ticks in (after, now], oldest first, at most `limit` of them (the newest ones): the caller
 * needs no more than its catch-up policy can fire.
 */
export function ticksBetween(timing: Timing, after: number, now: number, limit: number): { ticks: number[]; dropped: number } {
  if ('everyMs' in timing) {
    // Counted, not walked: a 1s schedule down for a week has 600k ticks.
    const first = Math.floor(after / timing.everyMs) + 1;
    const last = Math.floor(now / timing.everyMs);
    const total = Math.max(0, last - first + 1);
    const from = Math.max(first, last - limit + 1);
    const ticks: number[] = [];
    for (let i = from; i <= last; i++) ticks.push(i * timing.everyMs);
    return { ticks, dropped: total - ticks.length };
  }
  const ticks: number[] = [];
  let dropped = 0;
  let start = after;
  for (let walked = 0, t = nextTick(timing, start); t !== null && t <= now; t = nextTick(timing, t), walked++) {
    if (walked === MAX_WALK) {
      // A long outage of a frequent cron: estimate the ticks in between from their spacing and
      // walk only the last stretch, so a round stays short. The estimate only feeds a counter.
      const spacing = (t - start) / walked;
      const resume = Math.max(t, now - spacing * (limit + 1));
      dropped += ticks.length + Math.round((resume - t) / spacing);
      ticks.length = 0;
      start = resume;
      t = nextTick(timing, resume - 1);
      if (t === null || t > now) break;
    }
    ticks.push(t);
    if (ticks.length > limit) {
      ticks.shift();
      dropped++;
    }
  }
  return { ticks, dropped };
}

/** Most ticks walked one by one in a round; past this they are counted by estimate. */
const MAX_WALK = 10_000;
