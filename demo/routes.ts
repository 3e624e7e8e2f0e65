import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { scopeOf } from '../src/http/app.js';
import { assertCompanyVisible, companyIdJson } from '../src/http/routes/companies.js';
import { parseInput } from '../src/http/validation.js';
import type { TaskRecord } from '../src/core/record.js';
import { LIVE_STATES } from '../src/core/states.js';
import type { TenantScope } from '../src/store/types.js';
import type { SubmitRequest, Taskyard } from '../src/taskyard.js';
import { findCompany } from './companies.js';
import { ONBOARDING_TASKS } from './tasks/onboarding.js';

/**
 * The demo app's own endpoints that launch work: onboarding finalize (seed
 * background-task-tracking) and the maintenance triggers (seed task-system-migration-guide).
 * Each only maps a request to launches; the tasks' params schemas validate the input.
 */

const companyParams = z.object({ company_id: z.string().min(1).max(200) });
const ratingBody = z.object({ resource_id: z.unknown().optional() });
const cleanupBody = z.object({ max_age_hours: z.unknown().optional() });

/** The company's onboarding runs still PENDING, STARTED or RETRY, in launch order. */
async function liveOnboardingRuns(yard: Taskyard, companyId: string, scope: TenantScope): Promise<TaskRecord[]> {
  const page = await yard.list(
    { tenantId: companyId, states: [...LIVE_STATES], names: ONBOARDING_TASKS.map((t) => t.name), limit: 100 },
    scope,
  );
  return page.tasks.filter((r) => r.meta?.source === 'onboarding').reverse();
}

function finalizeJson(companyId: string, records: TaskRecord[]) {
  return {
    company_id: companyIdJson(companyId),
    tasks: records.map((r) => ({ task_id: r.id, task_type: r.name, name: r.displayName })),
    status_url: `/api/v1/companies/${encodeURIComponent(companyId)}/task_status/`,
  };
}

/** Runs one job at a time per key (in this process); later callers wait for the earlier ones. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(job, job);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

export function demoRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Demo'];
  const finalizing = new KeyedQueue();

  app.post(
    '/api/v1/companies/:company_id/onboarding/finalize/',
    {
      schema: {
        tags,
        summary: "Finish a company's onboarding: launch its four tracked background tasks",
        params: { type: 'object', properties: { company_id: { type: 'string' } }, required: ['company_id'] },
      },
    },
    async (request, reply) => {
      const { company_id } = parseInput(companyParams, request.params, 'query');
      assertCompanyVisible(request, company_id, findCompany(company_id)?.name ?? null);
      // One finalize at a time per company, so a double click cannot launch eight runs.
      return finalizing.run(company_id, async () => {
        // Idempotent while its runs are live: a second call answers with them (200) instead of launching more.
        const live = await liveOnboardingRuns(yard, company_id, scopeOf(request));
        if (live.length > 0) return reply.status(200).send(finalizeJson(company_id, live));
        // One launch: all four are written in one commit, or none is.
        const records = await yard.launch(
          ONBOARDING_TASKS.map((t) => ({ name: t.name, params: { company_id }, meta: { ...t.metadata, company_id, source: 'onboarding' } })),
          scopeOf(request),
        );
        return reply.status(202).send(finalizeJson(company_id, records));
      });
    },
  );

  function trigger<S extends z.ZodType>(path: string, summary: string, body: S, toRequest: (body: z.output<S>) => SubmitRequest) {
    app.post(path, { schema: { tags, summary } }, async (request, reply) => {
      const [record] = await yard.launch([toRequest(parseInput(body, request.body, 'body'))], scopeOf(request));
      // task_type is the definition launched, as the guide's TaskManager names its tasks.
      return reply.status(202).send({ task_id: record!.id, task_type: record!.name, status: 'PENDING' });
    });
  }

  trigger(
    '/api/tasks/rating/recalculate',
    'Recalculate ratings: one resource (resource_id) or all of them',
    ratingBody,
    (b) =>
      b.resource_id === undefined || b.resource_id === null
        ? { name: 'calculate_all_ratings', params: {} }
        : { name: 'calculate_rating', params: { resource_id: b.resource_id } },
  );
  trigger('/api/tasks/impressions/sync', 'Flush impression counters from Redis', z.object({}), () => ({
    name: 'sync_impressions_from_redis',
    params: {},
  }));
  trigger('/api/tasks/cleanup/sessions', 'Delete expired sessions (optional max_age_hours)', cleanupBody, (b) => ({
    name: 'cleanup_sessions',
    params: b.max_age_hours === undefined ? {} : { max_age_hours: b.max_age_hours },
  }));
}
