import { z } from 'zod';
import { defineTask, type TaskContext } from '../../src/core/definition.js';
import { DEMO_COMPANIES } from '../companies.js';
import { pick, requireCompany, simulate, type Step } from './common.js';

/** One simulated month of documents takes about a second at scale 1 (DESIGN.md). */
const MONTH_MS = 1000;
const F29_MS = 150;
const MAX_MONTH_OFFSET = 120;

const months = z.number().int().min(1).max(12).default(1).describe('Number of months to sync (1-12)');
/**
 * Bounded, so a huge offset is a 422 rather than a `period` of "NaNNaN". A refinement, not
 * `.max()`, keeps the parameter listing exactly as the seed documents it.
 */
const monthOffset = z
  .number()
  .int()
  .min(0)
  .refine((n) => n <= MAX_MONTH_OFFSET, `must be at most ${MAX_MONTH_OFFSET} (ten years back)`)
  .default(0)
  .describe('Offset from the current month (0 = current, 1 = last month)');
const year = z
  .string()
  .regex(/^\d{4}$/)
  .optional()
  .describe('Year to sync, YYYY (defaults to the current year)');

/** 'YYYYMM' for the current month minus `offset` months (UTC, so servers agree). */
export function periodOf(offset: number, now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - offset, 1));
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

interface DocumentsResult {
  success: true;
  compras: { total: number; period: string };
  ventas: { total: number; period: string };
  honorarios: { total: number };
}

/** Syncs `months` months back from `offset`; totals are summed, `period` is the newest month. */
async function syncDocuments(
  ctx: TaskContext,
  companyId: string,
  months: number,
  offset: number,
  from = 0,
  to = 100,
): Promise<DocumentsResult> {
  const periods = Array.from({ length: months }, (_, i) => periodOf(offset + i));
  const kinds = ['compras', 'ventas', 'honorarios'] as const;
  const steps: Step[] = periods.flatMap((p) => kinds.map((k) => ({ message: `${k} ${p}`, ms: MONTH_MS / kinds.length })));
  await simulate(ctx, steps, from, to);
  const total = (kind: string, min: number, max: number) =>
    periods.reduce((sum, p) => sum + pick(`${companyId}:${kind}:${p}`, min, max), 0);
  return {
    success: true,
    compras: { total: total('compras', 40, 200), period: periods[0] },
    ventas: { total: total('ventas', 20, 120), period: periods[0] },
    honorarios: { total: total('honorarios', 0, 20) },
  };
}

interface F29Form {
  period: string;
  folio: number;
  total_a_pagar: number;
  status: 'Vigente';
}

/** F29 for month M is filed in M+1, so the current year only has the months already past. */
async function syncF29(ctx: TaskContext, companyId: string, year: string, from = 0, to = 100) {
  const now = new Date();
  const y = Number(year);
  const count = y < now.getUTCFullYear() ? 12 : y === now.getUTCFullYear() ? now.getUTCMonth() : 0;
  const periods = Array.from({ length: count }, (_, i) => `${year}${String(i + 1).padStart(2, '0')}`);
  await simulate(
    ctx,
    [{ message: 'Logging in to SII', ms: 300 }, ...periods.map((p) => ({ message: `F29 ${p}`, ms: F29_MS }))],
    from,
    to,
  );
  const forms: F29Form[] = periods.map((p) => ({
    period: p,
    folio: pick(`${companyId}:f29folio:${p}`, 100_000_000, 999_999_999),
    total_a_pagar: pick(`${companyId}:f29:${p}`, 0, 5_000_000),
    status: 'Vigente',
  }));
  return { success: true as const, year, forms };
}

const currentYear = () => String(new Date().getUTCFullYear());

export const syncDocumentsTask = defineTask({
  name: 'sii.sync_documents',
  displayName: 'Sincronizando documentos SII',
  description: 'Sync tax documents (purchases, sales, honorarios) for a single company',
  params: z.object({ company_id: z.string().describe('Company UUID'), months, month_offset: monthOffset }),
  async run(p, ctx) {
    requireCompany(p.company_id);
    return syncDocuments(ctx, p.company_id, p.months, p.month_offset);
  },
});

export const syncDocumentsAllCompaniesTask = defineTask({
  name: 'sii.sync_documents_all_companies',
  displayName: 'Sincronizando documentos SII (todas las empresas)',
  description: 'Sync tax documents for every company with an active subscription',
  params: z.object({ months, month_offset: monthOffset }),
  async run(p, ctx) {
    const results: Record<string, DocumentsResult> = {};
    const n = DEMO_COMPANIES.length;
    for (const [i, company] of DEMO_COMPANIES.entries()) {
      ctx.log(`Syncing ${company.name}`, { company_id: company.id });
      results[company.id] = await syncDocuments(ctx, company.id, p.months, p.month_offset, (100 * i) / n, (100 * (i + 1)) / n);
    }
    return { success: true as const, companies: n, results };
  },
});

export const syncF29Task = defineTask({
  name: 'sii.sync_f29',
  displayName: 'Sincronizando formularios F29',
  description: 'Sync F29 tax forms for a single company',
  params: z.object({ company_id: z.string().describe('Company UUID'), year }),
  async run(p, ctx) {
    requireCompany(p.company_id);
    return syncF29(ctx, p.company_id, p.year ?? currentYear());
  },
});

export const syncF29AllCompaniesTask = defineTask({
  name: 'sii.sync_f29_all_companies',
  displayName: 'Sincronizando formularios F29 (todas las empresas)',
  description: 'Sync F29 tax forms for every company',
  params: z.object({ year }),
  async run(p, ctx) {
    const y = p.year ?? currentYear();
    const results: Record<string, { forms: number }> = {};
    const n = DEMO_COMPANIES.length;
    for (const [i, company] of DEMO_COMPANIES.entries()) {
      const r = await syncF29(ctx, company.id, y, (100 * i) / n, (100 * (i + 1)) / n);
      results[company.id] = { forms: r.forms.length };
    }
    return { success: true as const, year: y, companies: n, results };
  },
});

export const siiTasks = [syncDocumentsTask, syncDocumentsAllCompaniesTask, syncF29Task, syncF29AllCompaniesTask];
