import type { Redis, RedisOptions } from 'ioredis';

/**
 * Redis connections for the BullMQ engine. bullmq and ioredis are loaded on first use, so the
 * embedded default (SQLite + local engine) never needs them installed.
 */
export async function loadBullmq(): Promise<{ bullmq: typeof import('bullmq'); IORedis: typeof import('ioredis').Redis }> {
  try {
    const [bullmq, ioredis] = await Promise.all([import('bullmq'), import('ioredis')]);
    return { bullmq, IORedis: ioredis.Redis };
  } catch (error) {
    throw new Error(`The bullmq engine needs the bullmq and ioredis packages (npm install bullmq ioredis): ${(error as Error).message}`);
  }
}

/** A Redis URL without its password, for logs and error messages. */
export function describeRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid REDIS_URL)';
  }
}

export interface RedisConnections {
  /**
   * Commands of the API side (adds, removes, existence checks). No offline queue: while Redis is
   * away a command fails at once instead of waiting, so a launch can be refused with a 503.
   */
  producer: Redis;
  /** The worker's connection (BullMQ duplicates it for its blocking reads); null when not a worker. */
  worker: Redis | null;
}

export async function openConnections(IORedis: typeof import('ioredis').Redis, url: string, withWorker: boolean, connectTimeoutMs: number): Promise<RedisConnections> {
  const base: RedisOptions = {
    connectTimeout: connectTimeoutMs,
    // Keep trying to reconnect, at most every 2 s: Redis restarts are survived, not fatal.
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: true,
  };
  const producer = new IORedis(url, { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  // BullMQ's blocking reads need maxRetriesPerRequest: null.
  const worker = withWorker ? new IORedis(url, { ...base, maxRetriesPerRequest: null }) : null;
  const connections = { producer, worker };
  // Without listeners an 'error' event would crash the process; reconnects are ioredis's job.
  producer.on('error', () => {});
  worker?.on('error', () => {});
  try {
    await Promise.all([producer, worker].filter((c): c is Redis => c !== null).map((c) => connectWithin(c, url, connectTimeoutMs)));
  } catch (error) {
    closeConnections(connections);
    throw error;
  }
  return connections;
}

/** Connects, or fails with a message that names the URL and the cause within `timeoutMs`. */
async function connectWithin(connection: Redis, url: string, timeoutMs: number): Promise<void> {
  let lastError: Error | null = null;
  const onError = (error: Error) => (lastError = error);
  connection.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      connection.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
      }),
    ]);
  } catch (error) {
    const cause = (lastError as Error | null)?.message || (error as Error).message;
    throw new Error(`Redis at ${describeRedisUrl(url)} is unreachable (${cause}); start Redis or set REDIS_URL`);
  } finally {
    clearTimeout(timer);
    connection.off('error', onError);
  }
}

export function closeConnections({ producer, worker }: RedisConnections): void {
  producer.disconnect();
  worker?.disconnect();
}
