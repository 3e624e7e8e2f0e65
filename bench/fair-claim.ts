/**
 * What a fair claim costs: claims of 20 runs from a ledger holding 100,000 waiting runs, fair
 * (round-robin across tenants) against strict priority order, on SQLite and PostgreSQL, with the
 * runs of one tenant, of a flooding tenant and a small one, and of 1,000 tenants.
 *
 *   node --import tsx bench/fair-claim.ts            # both ledgers
 *   BENCH_FAIR_LEDGERS=sqlite node --import tsx bench/fair-claim.ts
 *
 * PostgreSQL: TASKYARD_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); the
 * bench makes a schema of its own and drops it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino } from 'pino';
import { z } from 'zod';
import { defineTask } from '../src/core/definition.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { TaskStore } from '../src/store/types.js';
import { createTaskyard } from '../src/taskyard.js';

const WAITING = Number(process.env.BENCH_FAIR_WAITING ?? 100_000);
const CLAIMS = 40;
const LIMIT = 20;
const DATABASE_URL = process.env.TASKYARD_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const LEDGERS = (process.env.BENCH_FAIR_LEDGERS ?? 'sqlite,postgres').split(',');
const sync = defineTask({ name: 'bench.sync', params: z.object({ company_id: z.string() }), run: () => null });

const scenarios: Array<{ label: string; tenantOf: (i: number) => string }> = [
  { label: 'one tenant', tenantOf: () => 'A' },
  { label: 'a flood and 10 of another', tenantOf: (i) => (i % 10_000 === 0 ? 'B' : 'A') },
  { label: '1,000 tenants', tenantOf: (i) => `c${i % 1000}` },
];

interface Opened {
  store: TaskStore;
  dispose(): Promise<void>;
  analyze(): Promise<void>;
}

function open(kind: string): Opened {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'taskyard-fair-'));
    return { store: new SqliteStore({ filename: join(dir, 'taskyard.db') }), dispose: async () => rmSync(dir, { recursive: true, force: true }), analyze: async () => {} };
  }
  const schema = `ty_bench_${randomBytes(6).toString('hex')}`;
  const admin = async (text: string) => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };
  return {
    store: new PostgresStore({ connectionString: DATABASE_URL, schema, poolSize: 4 }),
    dispose: () => admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`),
    // As autovacuum would soon after a bulk load: the planner sees the table as it is.
    analyze: () => admin(`ANALYZE ${schema}.taskyard_tasks`),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function measure(kind: string, scenario: (typeof scenarios)[number]): Promise<void> {
  const { store, dispose, analyze } = open(kind);
  const yard = await createTaskyard({ tasks: [sync], store, execute: false, logger: pino({ level: 'silent' }) });
  try {
    for (let i = 0; i < WAITING; i += 5000) {
      await yard.submitMany(Array.from({ length: Math.min(5000, WAITING - i) }, (_, j) => ({ name: 'bench.sync', params: { company_id: scenario.tenantOf(i + j) } })));
    }
    await analyze();
    const times = { fair: [] as number[], ordered: [] as number[] };
    for (let i = 0; i < CLAIMS; i++) {
      for (const fair of [true, false]) {
        const t0 = performance.now();
        const got = await store.claim({ limit: LIMIT, now: Date.now(), worker: 'bench', fair });
        (fair ? times.fair : times.ordered).push(performance.now() - t0);
        if (got.length !== LIMIT) throw new Error(`claimed ${got.length}, expected ${LIMIT}`);
      }
    }
    const line = (name: string, xs: number[]) => `${name} mean ${mean(xs).toFixed(2)} ms, p95 ${p(xs, 0.95).toFixed(2)} ms`;
    console.log(`${kind.padEnd(8)} ${scenario.label.padEnd(26)} ${line('fair', times.fair)} | ${line('in order', times.ordered)}`);
  } finally {
    await yard.close();
    await dispose();
  }
}

console.log(`claims of ${LIMIT} from ${WAITING.toLocaleString('en')} waiting runs, ${CLAIMS} of each kind, alternating`);
for (const kind of LEDGERS) for (const scenario of scenarios) await measure(kind, scenario);
