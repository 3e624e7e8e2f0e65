import { z } from 'zod';
import { defineTask } from '../../src/core/definition.js';
import { pick, requireCompany, simulate, type Step } from './common.js';

/**
 * The seed's onboarding ids are numeric (`73`) or UUIDs. A string|number union keeps the
 * JSON schema honest (`type: ["string", "number"]`); the transform hands runs a string.
 * (z.coerce.string() would also accept null and objects, turning them into "null".)
 */
const params = z.object({
  company_id: z
    .union([z.string(), z.number()])
    .transform(String)
    .describe('Company id (number or UUID string)'),
});

/** Builds one onboarding task: a few simulated steps, then a small result. */
function onboardingTask<R extends Record<string, unknown>>(options: {
  name: string;
  displayName: string;
  description: string;
  steps: Step[];
  result: (companyId: string) => R;
}) {
  return defineTask({
    name: options.name,
    category: 'onboarding',
    displayName: options.displayName,
    description: options.description,
    params,
    async run(p, ctx) {
      const company = requireCompany(p.company_id);
      ctx.log(`Onboarding ${company.name}`);
      await simulate(ctx, options.steps);
      return { success: true as const, company_id: company.id, ...options.result(company.id) };
    },
  });
}

// Durations are staggered (2 s, 4 s, 8 s, 6 s at scale 1) so the tracker shows them finish one by one.
export const createProcessesTask = onboardingTask({
  name: 'create_processes_from_taxpayer_settings',
  displayName: 'Creando procesos tributarios',
  description: "Creates the company's tax processes from its taxpayer settings",
  steps: [
    { message: 'Reading taxpayer settings', ms: 500 },
    { message: 'Creating monthly processes (F29)', ms: 700 },
    { message: 'Creating annual processes (F22)', ms: 500 },
    { message: 'Scheduling deadlines', ms: 300 },
  ],
  result: (id) => ({ processes_created: pick(`${id}:processes`, 3, 9) }),
});

export const syncSiiDocumentsTask = onboardingTask({
  name: 'sync_sii_documents_task',
  displayName: 'Sincronizando documentos SII',
  description: 'Initial tax document sync (last 2 months)',
  steps: ['compras', 'ventas', 'honorarios'].flatMap((k) => [
    { message: `${k}: current month`, ms: 667 },
    { message: `${k}: last month`, ms: 667 },
  ]),
  result: (id) => ({ sync_type: 'initial', months: 2, documents: pick(`${id}:initial`, 50, 400) }),
});

export const syncSiiDocumentsFullHistoryTask = onboardingTask({
  name: 'sync_sii_documents_full_history_task',
  displayName: 'Sincronizando historial completo de documentos',
  description: 'Complete historical tax document sync',
  steps: Array.from({ length: 8 }, (_, i) => ({ message: `Syncing year -${i + 1}`, ms: 1000 })),
  result: (id) => ({ sync_type: 'full_history', years: 8, documents: pick(`${id}:history`, 2_000, 20_000) }),
});

export const syncAllHistoricalFormsTask = onboardingTask({
  name: 'sync_all_historical_forms_task',
  displayName: 'Sincronizando formularios históricos',
  description: 'Historical tax forms (F29, F22) synchronization',
  steps: [
    ...Array.from({ length: 5 }, (_, i) => ({ message: `F29 forms, year -${i + 1}`, ms: 1000 })),
    { message: 'F22 forms', ms: 1000 },
  ],
  result: (id) => ({ forms: pick(`${id}:forms`, 40, 72) }),
});

export interface OnboardingTaskInfo {
  name: string;
  displayName: string;
  /** Stored on the run, as the seed's tracker does (the endpoint adds company_id). */
  metadata: Record<string, unknown>;
}

/** What the onboarding finalize endpoint launches and tracks, in order. */
export const ONBOARDING_TASKS: readonly OnboardingTaskInfo[] = [
  { name: createProcessesTask.name, displayName: createProcessesTask.displayName, metadata: { step: 'processes' } },
  { name: syncSiiDocumentsTask.name, displayName: syncSiiDocumentsTask.displayName, metadata: { sync_type: 'initial' } },
  {
    name: syncSiiDocumentsFullHistoryTask.name,
    displayName: syncSiiDocumentsFullHistoryTask.displayName,
    metadata: { sync_type: 'full_history' },
  },
  {
    name: syncAllHistoricalFormsTask.name,
    displayName: syncAllHistoricalFormsTask.displayName,
    metadata: { sync_type: 'historical_forms' },
  },
];

export const onboardingTasks = [createProcessesTask, syncSiiDocumentsTask, syncSiiDocumentsFullHistoryTask, syncAllHistoricalFormsTask];
