/**
 * A Taskyard server alone in its process, for load from another process (autocannon) and for
 * profiling: `node --import tsx --cpu-prof bench/probes/launch-server.ts` prints its URL, runs a
 * no-op task on a fresh ledger, and exits cleanly on SIGTERM or SIGINT (so the profile is written).
 * Prints the process's peak RSS on exit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defineTask } from '../../src/core/definition.js';
import { LocalEngine } from '../../src/engines/local/engine.js';
import { serve } from '../../src/server.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { createTaskyard } from '../../src/taskyard.js';

const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });
const dir = mkdtempSync(join(tmpdir(), 'taskyard-probe-'));
const yard = await createTaskyard({
  tasks: [noop],
  logger: pino({ level: 'silent' }),
  store: new SqliteStore({ filename: join(dir, 'taskyard.db') }),
  engine: new LocalEngine({ concurrency: 50 }),
});
const server = await serve({ yard, host: '127.0.0.1', port: Number(process.env.PORT ?? 0), apiKeys: [], handleSignals: false });
console.log(server.url);
const stop = async () => {
  await server.app.close();
  await yard.close();
  console.error(`peak RSS MB ${Math.round(process.resourceUsage().maxRSS / 1024)}`);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
