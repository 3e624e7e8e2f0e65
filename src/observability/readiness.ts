import type { Taskyard } from '../taskyard.js';

export interface Readiness {
  status: 'ready' | 'draining' | 'unavailable';
  /** Each dependency: `ok`, or why it is down. */
  checks: Record<string, string>;
}

/** Rejects after `ms`: a dependency that hangs is as down as one that refuses. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function check(run: () => Promise<unknown>, ms: number, what: string): Promise<string> {
  try {
    await within(run(), ms, what);
    return 'ok';
  } catch (error) {
    return `down: ${(error as Error).message || String(error)}`;
  }
}

/**
 * Whether this process should get traffic: the ledger answers a trivial query, Redis answers PING
 * when the engine uses it (the engines with a ping are the Redis ones), and no shutdown has begun.
 */
export async function readiness(yard: Taskyard, timeoutMs = 2000): Promise<Readiness> {
  const checks: Record<string, string> = {};
  const ping = yard.engine.ping?.bind(yard.engine);
  const [store, redis] = await Promise.all([
    check(() => yard.store.lastSeq(), timeoutMs, 'the ledger'),
    ping ? check(ping, timeoutMs, 'Redis') : null,
  ]);
  checks.store = store;
  if (redis !== null) checks.redis = redis;
  if (yard.isDraining) return { status: 'draining', checks };
  return { status: Object.values(checks).every((c) => c === 'ok') ? 'ready' : 'unavailable', checks };
}
