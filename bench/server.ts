/**
 * The server under test, in a process of its own: a Taskyard with the local engine behind the
 * HTTP API, as `taskyard serve` runs it, on a SQLite file or a PostgreSQL schema.
 *
 *   node --import tsx bench/server.ts '{"sqlite":"<file>"}'
 *   node --import tsx bench/server.ts '{"postgres":"<url>","schema":"<name>","fill":1000000}'
 *
 * `fill` writes that many finished runs first (bench/lib/fill.ts). Prints `ready {url, ...}` once
 * listening, then, with `reportMs`, a `sample {...}` line that often (heap, runs succeeded so
 * far). Stops on SIGTERM.
 */
import { pino } from 'pino';
import { defineTask } from '../src/core/definition.js';
import { LocalEngine } from '../src/engines/local/engine.js';
import { serve } from '../src/server.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { PrunerOptions } from '../src/maintenance/pruner.js';
import { createTaskyard } from '../src/taskyard.js';
import { CATEGORY_RULES, FILLED_TASKS, fillLedger } from './lib/fill.js';

export interface BenchServerOptions {
  sqlite?: string;
  postgres?: string;
  schema?: string;
  fill?: number;
  /** Local engine concurrency (default: the product's default). */
  concurrency?: number;
  /** Run nothing, only answer (the read figures). */
  execute?: boolean;
  pruner?: PrunerOptions;
  reportMs?: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as BenchServerOptions;
const print = (kind: string, value: unknown) => process.stdout.write(`${kind} ${JSON.stringify(value)}\n`);
const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });

const store = options.postgres
  ? new PostgresStore({ connectionString: options.postgres, schema: options.schema })
  : new SqliteStore({ filename: options.sqlite! });
const yard = await createTaskyard({
  tasks: [noop, ...FILLED_TASKS],
  categoryRules: CATEGORY_RULES,
  logger: pino({ level: 'silent' }),
  execute: options.execute ?? true,
  store,
  engine: new LocalEngine({ concurrency: options.concurrency }),
  ...(options.pruner && { maintenance: { pruner: options.pruner } }),
});

let fillSeconds = 0;
let ids: string[] = [];
if (options.fill) {
  const t0 = performance.now();
  ids = await fillLedger(yard.store, options.fill);
  fillSeconds = (performance.now() - t0) / 1000;
}

let succeeded = 0;
yard.on('succeeded', () => void succeeded++);
const server = await serve({ yard, host: '127.0.0.1', port: 0, apiKeys: [], handleSignals: false });
print('ready', { url: server.url, fillSeconds, ids });

if (options.reportMs) {
  setInterval(() => {
    const m = process.memoryUsage();
    print('sample', { succeeded, heapUsedMb: m.heapUsed / 2 ** 20, heapTotalMb: m.heapTotal / 2 ** 20, externalMb: m.external / 2 ** 20 });
  }, options.reportMs);
}
// The yard's timers do not hold a process open (a library must not); this server must stay up.
const keepAlive = setInterval(() => {}, 1 << 30);
process.once('SIGTERM', () => {
  clearInterval(keepAlive);
  void server.close().then(() => process.exit(0));
});
