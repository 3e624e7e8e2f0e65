import { join, resolve } from 'node:path';
import { toMs } from './core/duration.js';
import { parseApiKeys, type ApiKey } from './http/auth.js';
import type { MaintenanceOptions } from './maintenance/duties.js';
import { DEFAULT_RETENTION, parseRetention } from './maintenance/retention.js';
import { parseDatabaseUrl } from './store/location.js';

/** Settings read from the environment; the README's configuration table lists each one. */
export interface Config {
  host: string;
  port: number;
  /** The ledger: `sqlite:<absolute file>`, or DATABASE_URL's `postgres://...`. */
  databaseUrl: string;
  /** The SQLite ledger file; on PostgreSQL its directory still holds the demo's own files. */
  sqliteFile: string;
  /** Connections in the PostgreSQL store's pool. */
  pgPoolSize: number;
  apiKeys: ApiKey[];
  concurrency: number;
  /** BullMQ workers: jobs taken beyond `concurrency`, started in the ledger while they wait for a slot (TASKYARD_WORKER_PREFETCH). */
  workerPrefetch: number;
  logLevel: string;
  /** The leader's housekeeping: retention and pruning, status sync, orphan cleanup (see maintenanceOf). */
  maintenance: MaintenanceOptions;
  /** Largest request body, in bytes. */
  bodyLimit: number;
  /** Open event streams allowed per API key (anonymous callers share one) and in total. */
  sse: { maxStreamsPerKey: number; maxStreams: number };
  /** Whether this process runs tasks (false: an API-only process). */
  execute: boolean;
  /** Processes sharing the ledger: lease and heartbeat of each, in milliseconds. */
  peers: { leaseMs: number; heartbeatMs: number };
  /** Size limits on what a run writes to the ledger. */
  limits: { maxParamsBytes: number; maxResultBytes: number; maxMessageChars: number };
  /** What runs tasks: in process (`local`), on BullMQ workers (`bullmq`), or routed per task (`hybrid`). */
  engine: EngineKind;
  /** Redis for `bullmq` and `hybrid` (REDIS_URL); null with `local`. */
  redisUrl: string | null;
  /** BullMQ queue name and key prefix (TASKYARD_QUEUE). */
  queue: string;
  /** Heavy task names for `hybrid`, replacing each definition's route (TASKYARD_HEAVY_TASKS). */
  heavyTasks: string[] | null;
  /** What a heavy launch does while Redis is unreachable (`hybrid`). */
  redisFallback: 'refuse' | 'local';
  /** How long a stop lets running tasks finish before putting them back in the queue. */
  shutdownGraceMs: number;
  /** Whether `GET /metrics` is served (TASKYARD_METRICS). */
  metrics: boolean;
  /** Requests allowed per API key (or client IP without keys) per window; null: no limit (TASKYARD_RATE_LIMIT). */
  rateLimit: RateLimit | null;
}

export interface RateLimit {
  max: number;
  windowMs: number;
}

export type EngineKind = 'local' | 'bullmq' | 'hybrid';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT === undefined || env.PORT === '' ? 8000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${JSON.stringify(env.PORT)}`);
  const concurrency = env.TASKYARD_CONCURRENCY ? Number(env.TASKYARD_CONCURRENCY) : 20;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('TASKYARD_CONCURRENCY must be an integer >= 1');
  return {
    host: env.HOST || '127.0.0.1',
    port,
    ...ledgerOf(env),
    pgPoolSize: positiveInt(env, 'TASKYARD_PG_POOL_SIZE', 10),
    apiKeys: parseApiKeys(env.TASKYARD_API_KEYS),
    concurrency,
    workerPrefetch: nonNegativeInt(env, 'TASKYARD_WORKER_PREFETCH', 0),
    logLevel: env.TASKYARD_LOG_LEVEL || 'info',
    maintenance: maintenanceOf(env),
    bodyLimit: positiveInt(env, 'TASKYARD_BODY_LIMIT', 1024 * 1024),
    sse: {
      maxStreamsPerKey: positiveInt(env, 'TASKYARD_SSE_MAX_PER_KEY', 100),
      maxStreams: positiveInt(env, 'TASKYARD_SSE_MAX_STREAMS', 1000),
    },
    execute: booleanOf(env, 'TASKYARD_EXECUTE', true),
    peers: peersOf(env),
    limits: {
      maxParamsBytes: positiveInt(env, 'TASKYARD_MAX_PARAMS_BYTES', 64 * 1024),
      maxResultBytes: positiveInt(env, 'TASKYARD_MAX_RESULT_BYTES', 1024 * 1024),
      maxMessageChars: positiveInt(env, 'TASKYARD_MAX_MESSAGE_CHARS', 1024),
    },
    ...engineOf(env),
    shutdownGraceMs: positiveInt(env, 'TASKYARD_SHUTDOWN_GRACE_MS', 10_000),
    metrics: booleanOf(env, 'TASKYARD_METRICS', true),
    rateLimit: parseRateLimit(env.TASKYARD_RATE_LIMIT),
  };
}

/** TASKYARD_ENGINE and its Redis settings; `bullmq` and `hybrid` need REDIS_URL. */
function engineOf(env: NodeJS.ProcessEnv): Pick<Config, 'engine' | 'redisUrl' | 'queue' | 'heavyTasks' | 'redisFallback'> {
  const engine = (env.TASKYARD_ENGINE?.trim() || 'local') as EngineKind;
  if (!['local', 'bullmq', 'hybrid'].includes(engine)) throw new Error(`TASKYARD_ENGINE must be local, bullmq or hybrid, got ${JSON.stringify(env.TASKYARD_ENGINE)}`);
  const redisUrl = env.REDIS_URL?.trim() || null;
  if (engine !== 'local') {
    if (!redisUrl) throw new Error(`TASKYARD_ENGINE=${engine} needs REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379`);
    let protocol = '';
    try {
      protocol = new URL(redisUrl).protocol;
    } catch {}
    if (protocol !== 'redis:' && protocol !== 'rediss:') throw new Error(`REDIS_URL must be a redis:// or rediss:// URL, got ${JSON.stringify(redisUrl)}`);
  }
  const queue = env.TASKYARD_QUEUE?.trim() || 'taskyard';
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(queue)) throw new Error(`TASKYARD_QUEUE must be letters, digits, '_', '.' or '-', got ${JSON.stringify(env.TASKYARD_QUEUE)}`);
  const heavy = env.TASKYARD_HEAVY_TASKS?.split(',').map((name) => name.trim()).filter(Boolean);
  const redisFallback = (env.TASKYARD_REDIS_FALLBACK?.trim() || 'refuse') as Config['redisFallback'];
  if (redisFallback !== 'refuse' && redisFallback !== 'local') {
    throw new Error(`TASKYARD_REDIS_FALLBACK must be refuse or local, got ${JSON.stringify(env.TASKYARD_REDIS_FALLBACK)}`);
  }
  return { engine, redisUrl, queue, heavyTasks: heavy?.length ? heavy : null, redisFallback };
}

const WINDOWS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };

/**
 * TASKYARD_RATE_LIMIT: `<requests>/<window>`, the window a unit (`second`, `minute`, `hour`) or a
 * duration (`10s`, `5m`); `off` or unset: no limit.
 */
export function parseRateLimit(value: string | undefined): RateLimit | null {
  const text = value?.trim().toLowerCase() ?? '';
  if (text === '' || text === 'off') return null;
  const match = /^(\d+)\s*\/\s*(\S+)$/.exec(text);
  const max = match ? Number(match[1]) : NaN;
  let windowMs = match ? WINDOWS[match[2]!.replace(/s$/, '')] : undefined;
  if (match && windowMs === undefined) {
    try {
      windowMs = toMs(match[2]!);
    } catch {}
  }
  if (!Number.isSafeInteger(max) || max < 1 || !windowMs) {
    throw new Error(`TASKYARD_RATE_LIMIT must be <requests>/<window> (e.g. 600/minute, 50/10s) or off, got ${JSON.stringify(value)}`);
  }
  return { max, windowMs };
}

function booleanOf(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = env[name]?.trim().toLowerCase();
  if (value === undefined || value === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new Error(`${name} must be true or false, got ${JSON.stringify(env[name])}`);
}

/** The heartbeat must come well within the lease, or live processes would look dead. */
function peersOf(env: NodeJS.ProcessEnv): Config['peers'] {
  const leaseMs = positiveInt(env, 'TASKYARD_LEASE_MS', 15_000);
  const heartbeatMs = positiveInt(env, 'TASKYARD_HEARTBEAT_MS', Math.max(1, Math.floor(leaseMs / 3)));
  if (heartbeatMs * 2 > leaseMs) {
    throw new Error(`TASKYARD_HEARTBEAT_MS (${heartbeatMs}) must be at most half of TASKYARD_LEASE_MS (${leaseMs})`);
  }
  return { leaseMs, heartbeatMs };
}

/** An integer >= 1 from the environment, or the default when unset; anything else stops start-up. */
function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return wholeNumber(env, name, fallback, 1);
}

function nonNegativeInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return wholeNumber(env, name, fallback, 0);
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const value = env[name];
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/**
 * TASKYARD_RETENTION (per state and per task, see parseRetention), TASKYARD_PRUNE_INTERVAL,
 * TASKYARD_PRUNE_BATCH, TASKYARD_STATUS_SYNC_INTERVAL, TASKYARD_ORPHAN_CLEANUP_INTERVAL and
 * TASKYARD_MAINTENANCE_RECORD. Defaults follow the seed's Celery Beat schedule.
 */
function maintenanceOf(env: NodeJS.ProcessEnv): MaintenanceOptions {
  const spec = env.TASKYARD_RETENTION?.trim();
  const { retention, byName } = spec ? parseRetention(spec) : { retention: {}, byName: {} };
  return {
    pruner: {
      retention: { ...DEFAULT_RETENTION, ...retention },
      byName,
      interval: intervalOf(env, 'TASKYARD_PRUNE_INTERVAL', '1h'),
      batchSize: positiveInt(env, 'TASKYARD_PRUNE_BATCH', 1000),
    },
    statusSync: { interval: intervalOf(env, 'TASKYARD_STATUS_SYNC_INTERVAL', '2m') },
    orphanCleaner: { interval: intervalOf(env, 'TASKYARD_ORPHAN_CLEANUP_INTERVAL', '24h') },
    recordRounds: booleanOf(env, 'TASKYARD_MAINTENANCE_RECORD', true),
  };
}

/** A duration above zero (`30s`, `2m`, `1h`, `1d`), or the default when unset. */
function intervalOf(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const value = env[name]?.trim();
  if (!value) return fallback;
  let ms = 0;
  try {
    ms = toMs(value);
  } catch {}
  if (!(ms > 0)) throw new Error(`${name} must be a duration like 30s, 2m, 1h or 1d, got ${JSON.stringify(env[name])}`);
  return value;
}

/** DATABASE_URL (SQLite or PostgreSQL), else `taskyard.db` in TASKYARD_DATA_DIR. */
function ledgerOf(env: NodeJS.ProcessEnv): Pick<Config, 'databaseUrl' | 'sqliteFile'> {
  const defaultFile = resolve(join(env.TASKYARD_DATA_DIR || 'data', 'taskyard.db'));
  if (!env.DATABASE_URL) return { databaseUrl: `sqlite:${defaultFile}`, sqliteFile: defaultFile };
  const location = parseDatabaseUrl(env.DATABASE_URL);
  if (location.kind === 'postgres') return { databaseUrl: location.url, sqliteFile: defaultFile };
  return { databaseUrl: `sqlite:${location.filename}`, sqliteFile: location.filename };
}
