// Small, dependency-free stats helpers shared by the peer baselines and bench/run.ts.

/** Nearest-rank percentile of an ascending-sorted array (p in 0..100). NaN when empty. */
export function percentile(sortedNums: readonly number[], p: number): number {
  if (sortedNums.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedNums.length);
  return sortedNums[Math.min(sortedNums.length - 1, Math.max(0, rank - 1))];
}

export interface LatencySummary {
  p50: number;
  p99: number;
  mean: number;
  count: number;
}

/** p50/p99/mean of latencies in ms; copies before sorting so callers keep their order. */
export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((acc, n) => acc + n, 0);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : NaN,
    count: sorted.length,
  };
}

export type Cell = string | number | null | undefined;

function formatCell(v: Cell): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  // Big figures (jobs/s, req/s) read better as integers; small ones (ms, ratios) keep 2 decimals.
  return Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(2);
}

/**
 * Aligned plain-text table. Columns are the union of row keys in first-seen order;
 * numbers are right-aligned, text left-aligned. Returns the string (caller prints it).
 */
export function formatTable(rows: readonly Record<string, Cell>[]): string {
  const cols: string[] = [];
  for (const row of rows) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
  const cells = rows.map((row) => cols.map((c) => formatCell(row[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const numeric = cols.map((c) => rows.some((r) => typeof r[c] === 'number'));
  const pad = (s: string, i: number) => (numeric[i] ? s.padStart(widths[i]) : s.padEnd(widths[i]));
  const lines = [
    cols.map(pad).join('  '),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...cells.map((r) => r.map(pad).join('  ')),
  ];
  return lines.map((l) => l.trimEnd()).join('\n');
}

export interface RssSampler {
  /** Stops sampling and returns the peak RSS seen, in MB. */
  stop(): number;
}

/** Starts sampling process RSS every `intervalMs` (default 50 ms); stop() returns the peak in MB. */
export function peakRss(intervalMs = 50): RssSampler {
  let max = process.memoryUsage.rss();
  const sample = () => {
    max = Math.max(max, process.memoryUsage.rss());
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref(); // never keep the process alive just for sampling
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max / (1024 * 1024);
    },
  };
}

/** The median of some figures (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
