import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { scopeOf } from '../src/http/app.js';
import { assertCompanyVisible, companyIdJson } from '../src/http/routes/companies.js';
import { parseInput } from '../src/http/validation.js';
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

export function demoRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Demo'];

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
      // One launch: all four are written in one commit, or none is.
      const records = await yard.launch(
        ONBOARDING_TASKS.map((t) => ({ name: t.name, params: { company_id }, meta: { ...t.metadata, company_id, source: 'onboarding' } })),
        scopeOf(request),
      );
      return reply.status(202).send({
        company_id: companyIdJson(company_id),
        tasks: records.map((r) => ({ task_id: r.id, task_type: r.name, name: r.displayName })),
        status_url: `/api/v1/companies/${encodeURIComponent(company_id)}/task_status/`,
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
