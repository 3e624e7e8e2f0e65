/**
 * RSS while many tasks flow through one process: `npx tsx bench/probes/rss-flow.ts [tasks]`.
 * Submits no-op tasks 1000 at a time, with at most 5000 waiting, and prints the RSS and ledger
 * files' sizes at each tenth of the way, so a leak shows as a climb rather than a plateau.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { defineTask } from '../../src/core/definition.js';
import { LocalEngine } from '../../src/engines/local/engine.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { createTaskyard } from '../../src/taskyard.js';

const total = Number(process.argv[2] ?? 1_000_000);
const noop = defineTask({ name: 'bench.noop', retry: false, async run() { return null; } });
const dir = mkdtempSync(join(tmpdir(), 'taskyard-rss-'));
const file = join(dir, 'taskyard.db');
const yard = await createTaskyard({
  tasks: [noop],
  logger: pino({ level: 'silent' }),
  store: new SqliteStore({ filename: file }),
  engine: new LocalEngine({ concurrency: 50 }),
});
let done = 0;
yard.on('succeeded', () => void done++);
const size = (path: string) => {
  try {
    return Math.round(statSync(path).size / 2 ** 20);
  } catch {
    return 0;
  }
};
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 200);
const t0 = performance.now();
let submitted = 0;
let nextReport = total / 10;
while (done < total) {
  if (submitted < total && submitted - done < 5000) {
    const n = Math.min(1000, total - submitted);
    await yard.submitMany(Array.from({ length: n }, () => ({ name: 'bench.noop' })));
    submitted += n;
  } else {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (done >= nextReport) {
    nextReport += total / 10;
    const mb = (n: number) => Math.round(n / 2 ** 20);
    console.log(`${done} done, ${Math.round(done / ((performance.now() - t0) / 1000))}/s: RSS ${mb(process.memoryUsage.rss())} MB (peak ${mb(peak)}), heap ${mb(process.memoryUsage().heapUsed)} MB, ledger ${size(file)} MB, WAL ${size(`${file}-wal`)} MB`);
  }
}
clearInterval(sampler);
await yard.close();
rmSync(dir, { recursive: true, force: true });
