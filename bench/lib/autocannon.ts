// Thin promise wrapper over autocannon's programmatic API.
// autocannon ships no types, so we load it through createRequire with a minimal local type
// (only the fields we read) instead of an ambient module declaration.
import { createRequire } from 'node:module';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
  total?: number;
}
interface AutocannonResult {
  requests: Histogram;
  latency: Histogram;
  duration: number;
  non2xx: number;
  errors: number;
}
type Autocannon = (
  opts: Record<string, unknown>,
  cb: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface AutocannonOptions {
  url: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  connections?: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  /** Total requests to send; takes precedence over duration. */
  amount?: number;
}

export interface AutocannonSummary {
  requestsPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export function runAutocannon(opts: AutocannonOptions): Promise<AutocannonSummary> {
  const { connections = 50, duration = 5, ...rest } = opts;
  return new Promise((resolve, reject) => {
    autocannon({ ...rest, connections, duration }, (err, r) => {
      if (err) return reject(err);
      // requests.average is the mean of per-second samples; a run shorter than one tick
      // (small `amount`) has no samples, so fall back to total / duration.
      const rps =
        r.requests.average > 0 ? r.requests.average : (r.requests.total ?? 0) / Math.max(r.duration, 1e-9);
      resolve({ requestsPerSec: rps, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors });
    });
  });
}
