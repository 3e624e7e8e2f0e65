import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { AnyTaskDefinition, TaskContext } from '../src/core/definition.js';
import { NonRetryableError } from '../src/core/errors.js';
import { TaskRegistry } from '../src/core/registry.js';
import { describeParameters } from '../src/core/schema.js';
import { DEMO_COMPANIES, findCompany } from '../demo/companies.js';
import demoTasksDefault, { categoryRules, demoTasks } from '../demo/tasks/index.js';
import { ONBOARDING_TASKS } from '../demo/tasks/onboarding.js';
import { periodOf } from '../demo/tasks/sii.js';
import { sleep, timeScale } from '../demo/tasks/time.js';
import { withTimeScale } from './helpers.js';

// Unit tests of the demo's pure logic: runs are called directly with a fake context.
process.env.TASKYARD_DEMO_TIME_SCALE = '0.001';

const UUID = '123e4567-e89b-12d3-a456-426614174000';

function fakeCtx(signal: AbortSignal = new AbortController().signal) {
  const progress: number[] = [];
  const ctx: TaskContext = {
    taskId: 'test-task',
    name: 'test',
    attempt: 1,
    maxAttempts: 3,
    tenantId: null,
    signal,
    async progress(percent) {
      progress.push(percent);
    },
    log() {},
  };
  return { ctx, progress };
}

function task(name: string): AnyTaskDefinition {
  const definition = demoTasks.find((d) => d.name === name);
  if (!definition) throw new Error(`no demo task ${name}`);
  return definition;
}

/** Parses like the registry does, runs, and checks progress climbed steadily to 100. */
async function run(name: string, input: unknown = {}) {
  const definition = task(name);
  const { ctx, progress } = fakeCtx();
  const result = await definition.run(definition.params.parse(input), ctx);
  expect(progress.length).toBeGreaterThanOrEqual(2);
  for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
  expect(progress.at(-1)).toBeGreaterThanOrEqual(99);
  expect(progress.at(-1)).toBeLessThanOrEqual(100);
  return result as Record<string, any>;
}


describe('demo companies', () => {
  it('finds companies by string or number id', () => {
    expect(DEMO_COMPANIES).toHaveLength(3);
    expect(findCompany(73)).toEqual({ id: '73', name: 'Example Company' });
    expect(findCompany('4')?.name).toBe('Tenant 4 SpA');
    expect(findCompany(UUID)?.name).toBe('Demo Company SpA');
    expect(findCompany('nope')).toBeNull();
  });
});

describe('time', () => {
  it('reads the scale at call time and falls back to 1', async () => {
    for (const [value, expected] of [['0.5', 0.5], ['abc', 1], ['0', 1], ['-2', 1], ['', 1]] as const) {
      expect(await withTimeScale(value, async () => timeScale())).toBe(expected);
    }
    expect(timeScale()).toBe(0.001);
  });

  it('sleep cleans up its listener and rejects with the reason on abort', async () => {
    const controller = new AbortController();
    await sleep(10, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);

    const reason = new Error('stop');
    const pending = withTimeScale('1', async () => sleep(60_000, controller.signal));
    setTimeout(() => controller.abort(reason), 5);
    await expect(pending).rejects.toBe(reason);
    await expect(sleep(1, controller.signal)).rejects.toBe(reason);
  });
});

describe('registry of demo tasks', () => {
  it('has unique names, descriptions on every definition and parameter', () => {
    expect(demoTasksDefault).toBe(demoTasks);
    const registry = new TaskRegistry(demoTasks, categoryRules);
    expect(registry.names()).toHaveLength(16);
    for (const d of demoTasks) {
      expect(d.displayName, d.name).not.toBe(d.name);
      expect(d.description, d.name).not.toBe('');
      for (const [field, info] of Object.entries(describeParameters(d.params))) {
        expect(info.description, `${d.name}.${field}`).toBeTruthy();
      }
    }
    expect(registry.categoryOf(task('accounting.tasks.match_many_to_many_task'))).toBe('reconciliation');
    expect(registry.categoryOf(task('sii.sync_documents'))).toBe('sii');
    expect(task('process_speak_audio').route).toBe('heavy');
    expect(task('demo.cpu_burn').isolation).toBe('thread');
    expect(task('accounting.tasks.compare_two_engines_task').isolation).toBe('none');
  });

  it('describes sii.sync_documents as the seed does', () => {
    const d = task('sii.sync_documents');
    expect(d.description).toBe('Sync tax documents (purchases, sales, honorarios) for a single company');
    expect(describeParameters(d.params)).toMatchObject({
      company_id: { type: 'string', required: true, description: 'Company UUID' },
      months: { type: 'integer', required: false, default: 1, min: 1, max: 12 },
      month_offset: { type: 'integer', required: false, default: 0, min: 0 },
    });
  });

  it('applies defaults and rejects bad params', () => {
    const params = task('sii.sync_documents').params;
    expect(params.safeParse({ company_id: UUID })).toEqual({
      success: true,
      data: { company_id: UUID, months: 1, month_offset: 0 },
    });
    expect(params.safeParse({ company_id: UUID, months: 13 }).success).toBe(false);
    expect(params.safeParse({ months: 1 }).success).toBe(false);
    expect(task('sii.sync_f29').params.safeParse({ company_id: UUID, year: '25' }).success).toBe(false);
  });

  it('accepts numeric and string company ids for onboarding and tenant ids for reconciliation', () => {
    expect(task('sync_sii_documents_task').params.parse({ company_id: 73 })).toEqual({ company_id: '73' });
    expect(task('sync_sii_documents_task').params.safeParse({ company_id: null }).success).toBe(false);
    expect(describeParameters(task('sync_sii_documents_task').params).company_id.type).toBe('string|number');
    const rec = task('accounting.tasks.compare_two_engines_task');
    expect(rec.tenantOf(rec.params.parse({ tenant_id: 4 }))).toBe('4');
    expect(task('sii.sync_documents').tenantOf({ company_id: UUID, months: 1, month_offset: 0 })).toBe(UUID);
  });
});

describe('sii tasks', () => {
  it('sync_documents returns the seed result shape', async () => {
    const result = await run('sii.sync_documents', { company_id: UUID, months: 3 });
    expect(result).toEqual({
      success: true,
      compras: { total: expect.any(Number), period: periodOf(0) },
      ventas: { total: expect.any(Number), period: periodOf(0) },
      honorarios: { total: expect.any(Number) },
    });
    expect(result.compras.period).toMatch(/^\d{6}$/);
    // Deterministic: same company and period, same totals.
    expect(await run('sii.sync_documents', { company_id: UUID, months: 3 })).toEqual(result);
  });

  it('month_offset moves the period back', async () => {
    const result = await run('sii.sync_documents', { company_id: '73', month_offset: 1 });
    expect(result.ventas.period).toBe(periodOf(1));
    expect(periodOf(1, new Date(Date.UTC(2025, 0, 15)))).toBe('202412');
  });

  it('sync_documents_all_companies covers every demo company', async () => {
    const result = await run('sii.sync_documents_all_companies', { month_offset: 1 });
    expect(result.success).toBe(true);
    expect(result.companies).toBe(3);
    expect(Object.keys(result.results).sort()).toEqual(DEMO_COMPANIES.map((c) => c.id).sort());
    expect(result.results['4'].compras.period).toBe(periodOf(1));
  });

  it('sync_f29 defaults the year and returns at most 12 forms', async () => {
    const current = await run('sii.sync_f29', { company_id: '4' });
    expect(current.year).toBe(String(new Date().getUTCFullYear()));
    expect(current.forms.length).toBeLessThan(12);
    const past = await run('sii.sync_f29', { company_id: '4', year: '2024' });
    expect(past).toMatchObject({ success: true, year: '2024' });
    expect(past.forms).toHaveLength(12);
    expect(past.forms[0]).toMatchObject({ period: '202401', folio: expect.any(Number) });
    const all = await run('sii.sync_f29_all_companies', { year: '2024' });
    expect(all).toMatchObject({ success: true, year: '2024', companies: 3 });
    expect(all.results['73']).toEqual({ forms: 12 });
  });
});

describe('onboarding tasks', () => {
  it('lists the four tasks in order with their display names', () => {
    expect(ONBOARDING_TASKS.map((t) => [t.name, t.displayName])).toEqual([
      ['create_processes_from_taxpayer_settings', 'Creando procesos tributarios'],
      ['sync_sii_documents_task', 'Sincronizando documentos SII'],
      ['sync_sii_documents_full_history_task', 'Sincronizando historial completo de documentos'],
      ['sync_all_historical_forms_task', 'Sincronizando formularios históricos'],
    ]);
    for (const t of ONBOARDING_TASKS) expect(task(t.name).displayName).toBe(t.displayName);
  });

  it('each runs to success for company 73', async () => {
    for (const t of ONBOARDING_TASKS) {
      const result = await run(t.name, { company_id: 73 });
      expect(result).toMatchObject({ success: true, company_id: '73' });
    }
  });
});

describe('reconciliation tasks', () => {
  it.each(['accounting.tasks.compare_two_engines_task', 'accounting.tasks.match_many_to_many_task'])(
    '%s returns pipeline, suggestions and stats',
    async (name) => {
      const result = await run(name, { tenant_id: 4, reconciliation_task_id: 12 });
      expect(result.pipeline[0]).toBe('load');
      expect(result.pipeline.at(-1)).toBe('suggest');
      expect(result.suggestions.length).toBeGreaterThan(0);
      expect(result.suggestions[0]).toEqual({
        bank_movement_id: expect.any(Number),
        document_id: expect.any(Number),
        amount: expect.any(Number),
        confidence: expect.any(Number),
      });
      expect(result.stats.matched + result.stats.unmatched).toBe(result.stats.total);
    },
  );
});

describe('maintenance tasks', () => {
  it('run with their defaults', async () => {
    expect(await run('process_speak_audio', { resource_id: 'r1', audio_chunks: ['a', 'b'] })).toMatchObject({
      resource_id: 'r1',
      status: 'processed',
      chunks: 2,
      user_name: null,
    });
    expect(await run('calculate_rating', { resource_id: 'r1' })).toMatchObject({ resource_id: 'r1' });
    expect(await run('calculate_all_ratings')).toMatchObject({ batches: 10 });
    expect(await run('sync_impressions_from_redis')).toHaveProperty('impressions');
    expect(await run('cleanup_sessions')).toMatchObject({ max_age_hours: 24 });
  });

  it('demo.cpu_burn busy-loops for ms and reports every 10%', async () => {
    const result = await run('demo.cpu_burn', { ms: 40 });
    expect(result.ms).toBe(40);
    expect(task('demo.cpu_burn').params.parse({})).toEqual({ ms: 1000 });
  });
});

describe('failures', () => {
  it.each([
    ['sii.sync_documents', { company_id: 'unknown' }],
    ['sii.sync_f29', { company_id: 'unknown' }],
    ['sync_all_historical_forms_task', { company_id: 999 }],
    ['accounting.tasks.match_many_to_many_task', { tenant_id: 999 }],
  ])('%s fails with "Company not found" for an unknown company', async (name, input) => {
    const d = task(name);
    const run = d.run(d.params.parse(input), fakeCtx().ctx);
    await expect(run).rejects.toThrow('Company not found');
    await expect(run).rejects.toBeInstanceOf(NonRetryableError);
  });

  it('aborting the signal stops a long run promptly', async () => {
    await withTimeScale('1', async () => {
      const d = task('sync_sii_documents_full_history_task'); // 8 s at scale 1
      const controller = new AbortController();
      const reason = new Error('cancelled');
      const started = Date.now();
      const pending = d.run(d.params.parse({ company_id: UUID }), fakeCtx(controller.signal).ctx);
      setTimeout(() => controller.abort(reason), 20);
      await expect(pending).rejects.toBe(reason);
      expect(Date.now() - started).toBeLessThan(500);
    });
  });
});
