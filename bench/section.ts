/**
 * One in-process measurement in a fresh process of its own, so that no section inherits another's
 * heap, garbage or warm caches: `node --import tsx bench/section.ts <name> <size>` prints
 * `result {...}`. bench/run.ts runs Taskyard and its peer this way, alternately.
 */
import { bullmqLatency, rawBullmq } from './peers/bullmq.js';
import { bareSqliteLedger } from './peers/sqlite-ledger.js';
import { embeddedThroughput, enqueueToStart } from './taskyard.js';

const SECTIONS = {
  embedded: (n: number) => embeddedThroughput(n, Number(process.env.BENCH_CONCURRENCY ?? 50)),
  'bare-sqlite': async (n: number) => bareSqliteLedger(n),
  'raw-bullmq': (n: number) => rawBullmq(n),
  'enqueue-to-start': (n: number) => enqueueToStart(n),
  'bullmq-latency': (n: number) => bullmqLatency(n),
} satisfies Record<string, (n: number) => Promise<unknown>>;

export type SectionName = keyof typeof SECTIONS;

const [name, size] = process.argv.slice(2) as [SectionName, string];
const result = await SECTIONS[name](Number(size));
process.stdout.write(`result ${JSON.stringify(result)}\n`);
process.exit(0);
