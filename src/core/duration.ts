/** Durations are given as milliseconds or as strings like '250ms', '10s', '10m', '2h', '1d'. */
export type Duration = number | string;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function toMs(value: Duration): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`Invalid duration: ${value}`);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!match) throw new Error(`Invalid duration: ${JSON.stringify(value)} (use e.g. 500, '30s', '10m')`);
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}
