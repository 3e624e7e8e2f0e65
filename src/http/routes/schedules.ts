import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { jsonSchemaOf } from '../../core/schema.js';
import { CATCH_UP_POLICIES } from '../../schedules/catch-up.js';
import type { ScheduleView } from '../../schedules/schedules.js';
import type { Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { iso } from '../serialize.js';
import { parseInput } from '../validation.js';

/** Fields a schedule is made of; unknown fields are refused, so a typo is never silently ignored. */
const fields = {
  task: z.string().min(1).max(200),
  params: z.record(z.string(), z.unknown()),
  cron: z.string().min(1).max(200),
  every: z.union([z.string().min(1).max(50), z.number().int().positive()]),
  timezone: z.string().min(1).max(100),
  overlap: z.boolean(),
  catch_up: z.enum(CATCH_UP_POLICIES),
  enabled: z.boolean(),
};

const createBody = z.strictObject({
  name: z.string().min(1).max(100),
  ...fields,
  params: fields.params.default({}),
  cron: fields.cron.optional(),
  every: fields.every.optional(),
  timezone: fields.timezone.optional(),
  overlap: fields.overlap.optional(),
  catch_up: fields.catch_up.optional(),
  enabled: fields.enabled.optional(),
});

const updateBody = z.strictObject(fields).partial();

const nameParams = z.object({ name: z.string().min(1).max(200) });
const nameParamsSchema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } as const;

type Body = Partial<z.output<typeof updateBody>>;

/** The API's snake_case fields as a definition (catch_up -> catchUp). */
const fromApi = ({ catch_up, ...rest }: Body) => ({ ...rest, catchUp: catch_up });

function scheduleJson(s: ScheduleView) {
  return {
    name: s.name,
    task: s.task,
    params: s.params,
    tenant_id: s.tenantId,
    cron: s.cron,
    every: s.every,
    timezone: s.cron === null ? null : (s.timezone ?? 'UTC'),
    overlap: s.overlap,
    catch_up: s.catchUp,
    enabled: s.enabled,
    source: s.source,
    next_runs: s.nextRuns.map((t) => iso(t)),
    last_tick: iso(s.lastTick),
    last_run: s.lastRun && { task_id: s.lastRun.taskId, at: iso(s.lastRun.at), state: s.lastRun.state },
    skipped: s.skipped,
    last_skip: s.lastSkipReason === null ? null : { reason: s.lastSkipReason, at: iso(s.lastSkipAt) },
    created_at: iso(s.createdAt),
    updated_at: iso(s.updatedAt),
  };
}

/**
 * Schedules: listing is for every role; creating, changing and deleting are for admins. Keys
 * limited to some tenants see only schedules that launch runs for them (see Schedules).
 */
export function scheduleRoutes(app: FastifyInstance, yard: Taskyard): void {
  const tags = ['Schedules'];
  const admin = { role: 'admin' as const };

  app.get('/api/schedules', { schema: { tags, summary: 'List schedules, with their next runs and last run' } }, async (request) => {
    const schedules = await yard.schedules.list(scopeOf(request));
    return { schedules: schedules.map(scheduleJson), count: schedules.length };
  });

  app.post(
    '/api/schedules',
    { config: admin, schema: { tags, summary: 'Create a schedule (cron or every)', body: jsonSchemaOf(createBody) } },
    async (request, reply) => {
      const { name, ...body } = parseInput(createBody, request.body, 'body');
      const schedule = await yard.schedules.create({ name, ...fromApi(body), task: body.task }, scopeOf(request));
      return reply.status(201).send(scheduleJson(schedule));
    },
  );

  app.get('/api/schedules/:name', { schema: { tags, summary: 'One schedule', params: nameParamsSchema } }, async (request) => {
    const { name } = parseInput(nameParams, request.params, 'query');
    return scheduleJson(await yard.schedules.get(name, scopeOf(request)));
  });

  app.patch(
    '/api/schedules/:name',
    { config: admin, schema: { tags, summary: 'Change a schedule, or enable/disable it', params: nameParamsSchema, body: jsonSchemaOf(updateBody) } },
    async (request) => {
      const { name } = parseInput(nameParams, request.params, 'query');
      const body = parseInput(updateBody, request.body, 'body');
      return scheduleJson(await yard.schedules.update(name, fromApi(body), scopeOf(request)));
    },
  );

  app.delete('/api/schedules/:name', { config: admin, schema: { tags, summary: 'Delete a schedule made through the API', params: nameParamsSchema } }, async (request, reply) => {
    const { name } = parseInput(nameParams, request.params, 'query');
    await yard.schedules.remove(name, scopeOf(request));
    return reply.status(204).send();
  });
}
