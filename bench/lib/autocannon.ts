// autocannon, run in a load-generator process of its own (bench/lib/load-generator.ts): the
// figures are the server's, not the server's minus the load generator's share of its event loop.
import { runChild, startChild } from './child.js';

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
  /** Requests per second across all connections (default: as fast as the server answers). */
  overallRate?: number;
}

export interface AutocannonSummary {
  requestsPerSec: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  total: number;
  seconds: number;
}

export interface LoadWindow {
  seconds: number;
  requests: number;
  perSec: number;
  p99: number;
  non2xx: number;
}

const LOAD_GENERATOR = 'lib/load-generator.ts';

export function runAutocannon(opts: AutocannonOptions): Promise<AutocannonSummary> {
  const { connections = 50, duration = 5, ...rest } = opts;
  return runChild<AutocannonSummary>(LOAD_GENERATOR, [JSON.stringify({ ...rest, connections, duration })]);
}

/** As runAutocannon, and calls `onWindow` with the latency of every `windowSeconds` of the run. */
export async function runAutocannonWindows(
  opts: AutocannonOptions & { windowSeconds: number },
  onWindow: (window: LoadWindow) => void,
): Promise<AutocannonSummary> {
  const { connections = 50, duration = 5, ...rest } = opts;
  const child = startChild(LOAD_GENERATOR, [JSON.stringify({ ...rest, connections, duration })]);
  child.each<LoadWindow>('window', onWindow);
  const result = child.next<AutocannonSummary>('result');
  const code = await child.exited;
  if (code !== 0) throw new Error(`load generator exited with ${code}`);
  return result;
}
