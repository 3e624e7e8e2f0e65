import { z } from 'zod';
import { defineTask, type TaskContext } from '../../src/core/definition.js';
import { pick, requireCompany, simulate } from './common.js';

const params = z.object({
  // A union, not a coercion, so the JSON schema says `["string", "number"]` (the seed sends `4`).
  tenant_id: z.union([z.string(), z.number()]).describe('Tenant (company) id'),
  reconciliation_task_id: z
    .number()
    .int()
    .optional()
    .describe('Id of the legacy ReconciliationTask record, when started from /reconciliation-tasks/'),
  config: z.record(z.string(), z.unknown()).default({}).describe('Engine configuration (tolerance, date window, ...)'),
});

type Params = z.output<typeof params>;

interface Suggestion {
  bank_movement_id: number;
  document_id: number;
  amount: number;
  confidence: number;
}

/** Walks the pipeline, one simulated second per step, and makes up stable numbers for the tenant. */
async function reconcile(ctx: TaskContext, p: Params, engine: string, pipeline: string[]) {
  const tenant = requireCompany(p.tenant_id);
  ctx.log(`Reconciling ${tenant.name}`, { engine, reconciliation_task_id: p.reconciliation_task_id ?? null });
  await simulate(ctx, pipeline.map((step) => ({ message: step, ms: 1000 })));
  const key = `${tenant.id}:${engine}`;
  const total = pick(`${key}:total`, 80, 400);
  const matched = Math.floor((total * pick(`${key}:rate`, 60, 95)) / 100);
  const suggestions: Suggestion[] = Array.from({ length: pick(`${key}:suggestions`, 2, 6) }, (_, i) => ({
    bank_movement_id: pick(`${key}:mov:${i}`, 10_000, 99_999),
    document_id: pick(`${key}:doc:${i}`, 10_000, 99_999),
    amount: pick(`${key}:amount:${i}`, 1_000, 2_000_000),
    confidence: pick(`${key}:conf:${i}`, 60, 99) / 100,
  }));
  return { total, matched, unmatched: total - matched, suggestions };
}

export const compareTwoEnginesTask = defineTask({
  name: 'accounting.tasks.compare_two_engines_task',
  displayName: 'Conciliación: comparando motores',
  description: 'Runs two reconciliation engines on the same data and compares their matches',
  params,
  tenant: (p) => String(p.tenant_id),
  isolation: 'none',
  async run(p, ctx) {
    const pipeline = ['load', 'match_engine_a', 'match_engine_b', 'compare', 'suggest'];
    const r = await reconcile(ctx, p, 'compare', pipeline);
    const engineB = r.matched - pick(`${p.tenant_id}:engine_b`, 0, 10);
    return {
      pipeline,
      suggestions: r.suggestions,
      stats: {
        total: r.total,
        matched: r.matched,
        unmatched: r.unmatched,
        suggested: r.suggestions.length,
        engine_a_matched: r.matched,
        engine_b_matched: engineB,
        agreement: Math.round((engineB / r.matched) * 1000) / 1000,
      },
    };
  },
});

export const matchManyToManyTask = defineTask({
  name: 'accounting.tasks.match_many_to_many_task',
  displayName: 'Conciliación: emparejando muchos a muchos',
  description: 'Matches groups of bank movements against groups of documents',
  params,
  tenant: (p) => String(p.tenant_id),
  isolation: 'none',
  async run(p, ctx) {
    const pipeline = ['load', 'group', 'match', 'suggest'];
    const r = await reconcile(ctx, p, 'many_to_many', pipeline);
    return {
      pipeline,
      suggestions: r.suggestions,
      stats: {
        total: r.total,
        matched: r.matched,
        unmatched: r.unmatched,
        suggested: r.suggestions.length,
        groups: pick(`${p.tenant_id}:groups`, 5, 40),
      },
    };
  },
});

export const reconciliationTasks = [compareTwoEnginesTask, matchManyToManyTask];
