import { TASK_STATES, type TaskState } from '../core/states.js';
import type { LedgerStats } from './types.js';

export interface CountRow {
  name: string;
  category: string;
  state: TaskState;
  count: number | string;
  /** Whether the rows counted have a tenant (SQLite answers 0/1, PostgreSQL a boolean). */
  tenanted: boolean | number;
}

const zeroStates = (): Record<TaskState, number> =>
  Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;

export function emptyStats(): LedgerStats {
  return {
    byState: zeroStates(),
    byCategory: {},
    byName: {},
    byTenantClass: { tenant: {}, none: {} },
    durations: { p50: null, p95: null, samples: 0 },
    throughput: { lastMinute: 0, lastHour: 0, perSecond: 0 },
    queueDepth: { pending: 0, delayed: 0, retry: 0, byQueue: {} },
  };
}

/** Folds (name, category, state, tenanted, count) rows into the count views. Shared by all stores. */
export function foldCounts(rows: CountRow[]): LedgerStats {
  const stats = emptyStats();
  for (const row of rows) {
    const n = Number(row.count);
    if (n === 0) continue;
    stats.byState[row.state] += n;
    (stats.byCategory[row.category] ??= zeroStates())[row.state] += n;
    (stats.byName[row.name] ??= zeroStates())[row.state] += n;
    (stats.byTenantClass[row.tenanted ? 'tenant' : 'none'][row.name] ??= zeroStates())[row.state] += n;
  }
  return stats;
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The timing and queue views from the store's raw rows: durations of the last hour's runs, runs
 * finished in the last minute and hour, and waiting runs grouped by queue, state and due. */
export function addTimingsAndQueues(
  stats: LedgerStats,
  durationRows: Array<{ d: number | string }>,
  finished: { minute: number | string; hour: number | string } | undefined,
  waiting: Array<{ queue: string; state: TaskState; due: unknown; n: number | string }>,
): LedgerStats {
  const durations = durationRows.map((r) => Number(r.d)).sort((a, b) => a - b);
  stats.durations = { p50: percentile(durations, 0.5), p95: percentile(durations, 0.95), samples: durations.length };
  const minute = Number(finished?.minute ?? 0);
  stats.throughput = { lastMinute: minute, lastHour: Number(finished?.hour ?? 0), perSecond: Math.round((minute / 60) * 100) / 100 };
  for (const row of waiting) {
    const n = Number(row.n);
    if (row.state === 'RETRY') stats.queueDepth.retry += n;
    else if (row.due) stats.queueDepth.pending += n;
    else stats.queueDepth.delayed += n;
    stats.queueDepth.byQueue[row.queue] = (stats.queueDepth.byQueue[row.queue] ?? 0) + n;
  }
  return stats;
}
