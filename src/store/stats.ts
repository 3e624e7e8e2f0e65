import { TASK_STATES, type TaskState } from '../core/states.js';
import type { LedgerStats } from './types.js';

export interface CountRow {
  name: string;
  category: string;
  state: TaskState;
  count: number | string;
}

const zeroStates = (): Record<TaskState, number> =>
  Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;

export function emptyStats(): LedgerStats {
  return {
    byState: zeroStates(),
    byCategory: {},
    byName: {},
    durations: { p50: null, p95: null, samples: 0 },
    throughput: { lastMinute: 0, lastHour: 0, perSecond: 0 },
    queueDepth: { pending: 0, delayed: 0, retry: 0, byQueue: {} },
  };
}

/** Folds (name, category, state, count) rows into the three count views. Shared by all stores. */
export function foldCounts(rows: CountRow[]): LedgerStats {
  const stats = emptyStats();
  for (const row of rows) {
    const n = Number(row.count);
    if (n === 0) continue;
    stats.byState[row.state] += n;
    (stats.byCategory[row.category] ??= zeroStates())[row.state] += n;
    (stats.byName[row.name] ??= zeroStates())[row.state] += n;
  }
  return stats;
}

export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}
