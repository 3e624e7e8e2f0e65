/**
 * The HTTP load generator, run as its own process (`node --import tsx bench/lib/load-generator.ts
 * '<json options>'`) so that it never shares an event loop or a core's time slice with the server
 * it measures. It prints, on stdout, one `window {...}` line per `windowSeconds` when asked (for
 * the soak's time series) and a final `result {...}` line; bench/lib/autocannon.ts reads them.
 */
import { createRequire } from 'node:module';
import { percentile } from './stats.js';

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
interface Instance {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  on(event: 'done', listener: (result: AutocannonResult) => void): void;
}
// autocannon ships no types: a minimal local type of the fields read here.
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AutocannonResult) => void) => Instance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const { windowSeconds, ...options } = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown> & { windowSeconds?: number };
const print = (kind: string, value: unknown) => process.stdout.write(`${kind} ${JSON.stringify(value)}\n`);

let window: number[] = [];
let windowNon2xx = 0;
let windowStart = performance.now();
const flushWindow = () => {
  const now = performance.now();
  const sorted = window.sort((a, b) => a - b);
  print('window', {
    seconds: (now - windowStart) / 1000,
    requests: sorted.length,
    perSec: sorted.length / ((now - windowStart) / 1000),
    p99: percentile(sorted, 99),
    non2xx: windowNon2xx,
  });
  window = [];
  windowNon2xx = 0;
  windowStart = now;
};

const instance = autocannon(options, (err, r) => {
  if (err) {
    process.stderr.write(`load generator: ${err.message}\n`);
    process.exit(1);
  }
  if (timer) clearInterval(timer);
  // requests.average is the mean of per-second samples; a run shorter than one tick (small
  // `amount`) has none, so fall back to total / duration.
  const requestsPerSec = r.requests.average > 0 ? r.requests.average : (r.requests.total ?? 0) / Math.max(r.duration, 1e-9);
  print('result', { requestsPerSec, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors, total: r.requests.total ?? 0, seconds: r.duration });
});

const timer = windowSeconds ? setInterval(flushWindow, windowSeconds * 1000) : null;
if (windowSeconds) {
  instance.on('response', (_client, status, _bytes, ms) => {
    window.push(ms);
    if (status < 200 || status > 299) windowNon2xx++;
  });
}
