import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TaskyardError } from '../../core/errors.js';
import { durationSeconds, type TaskRecord } from '../../core/record.js';
import { isTerminal, type TaskState } from '../../core/states.js';
import type { Taskyard } from '../../taskyard.js';
import { scopeOf } from '../app.js';
import { iso } from '../serialize.js';
import { parseInput } from '../validation.js';

/**
 * The company tracker (seed background-task-tracking): what onboarding screens poll. Built on
 * the ledger: a company's runs are the runs whose tenant is the company id.
 */

export interface CompanyRoutesOptions {
  /** The company's name, or null when there is no such company (a 404). */
  companyName(id: string): string | null;
}

export type TrackerStatus = 'pending' | 'running' | 'success' | 'failed' | 'cancelled';

export const TRACKER_STATUS: Record<TaskState, TrackerStatus> = {
  PENDING: 'pending',
  RETRY: 'pending',
  STARTED: 'running',
  SUCCESS: 'success',
  FAILURE: 'failed',
  REVOKED: 'cancelled',
};

/** Runs created this long ago still count (the seed's orphan cleaner keeps trackers 24 h). */
const WINDOW_MS = 24 * 3600_000;
/** `recent_completed` is what finished in the last hour (the seed prunes completed trackers hourly). */
const RECENT_MS = 3600_000;
const RECENT_MAX = 10;
const MAX_TASKS = 500;
const PAGE = 100;

const companyParams = z.object({ company_id: z.string().min(1).max(200) });

/** The seed shows `"company_id": 73`: numeric ids as numbers, UUIDs as strings. */
export function companyIdJson(id: string): string | number {
  return /^\d{1,15}$/.test(id) ? Number(id) : id;
}

/** A company outside the caller's tenants is as absent as one that does not exist. */
export function assertCompanyVisible(request: FastifyRequest, id: string, name: string | null): asserts name is string {
  const scope = scopeOf(request);
  if (name === null || (scope !== '*' && !scope.includes(id))) {
    throw new TaskyardError('task_not_found', `Company ${id} not found`);
  }
}

function trackerItem(r: TaskRecord, now: number) {
  return {
    task_id: r.id,
    name: r.displayName,
    status: TRACKER_STATUS[r.state],
    progress: r.progress,
    started_at: iso(r.startedAt),
    task_type: r.name,
    duration_seconds: durationSeconds(r, now),
  };
}

/** The company's runs created within the window, newest first. */
async function companyRuns(yard: Taskyard, request: FastifyRequest, companyId: string, since: number): Promise<TaskRecord[]> {
  const runs: TaskRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await yard.list({ tenantId: companyId, since, limit: Math.min(PAGE, MAX_TASKS - runs.length), cursor }, scopeOf(request));
    runs.push(...page.tasks);
    cursor = page.nextCursor ?? undefined;
  } while (cursor && runs.length < MAX_TASKS);
  return runs;
}

export function companyRoutes(app: FastifyInstance, yard: Taskyard, options: CompanyRoutesOptions): void {
  const tags = ['Companies'];
  const params = { type: 'object', properties: { company_id: { type: 'string' } }, required: ['company_id'] } as const;

  app.get(
    '/api/v1/companies/:company_id/task_status/',
    { schema: { tags, summary: "A company's background tasks, for onboarding progress screens", params } },
    async (request) => {
      const { company_id } = parseInput(companyParams, request.params, 'query');
      const name = options.companyName(company_id);
      assertCompanyVisible(request, company_id, name);
      const now = Date.now();
      const runs = await companyRuns(yard, request, company_id, now - WINDOW_MS);
      // Launch order (oldest first), so an onboarding screen lists its steps as they were started.
      const active = runs.filter((r) => !isTerminal(r.state)).reverse();
      const recent = runs
        .filter((r) => isTerminal(r.state) && r.finishedAt !== null && r.finishedAt >= now - RECENT_MS)
        .sort((a, b) => b.finishedAt! - a.finishedAt!)
        .slice(0, RECENT_MAX);
      return {
        active_tasks: active.map((r) => trackerItem(r, now)),
        // Nothing live is "all completed", no runs at all included, so a poller always stops.
        all_completed: active.length === 0,
        summary: {
          total_tasks: runs.length,
          active_count: active.length,
          completed_count: runs.length - active.length,
          recent_completed: recent.map((r) => trackerItem(r, now)),
        },
        company_id: companyIdJson(company_id),
        company_name: name,
        checked_at: new Date(now).toISOString(),
      };
    },
  );
}
