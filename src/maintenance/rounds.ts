import { z } from 'zod';
import { defineTask, type AnyTaskDefinition } from '../core/definition.js';
import { NonRetryableError } from '../core/errors.js';
import { uuidv7 } from '../core/ids.js';
import type { TaskRecord } from '../core/record.js';
import type { TaskRegistry } from '../core/registry.js';
import { outcomeChange, type RunOutcome } from '../engines/execution.js';
import type { TaskStore } from '../store/types.js';
import type { MaintenanceService } from './service.js';

export const MAINTENANCE_CATEGORY = 'maintenance';
/** What a round records as its engine: it ran in the maintenance runner, not on an engine. */
const ENGINE = 'maintenance';

export const maintenanceTaskName = (service: Pick<MaintenanceService, 'name'>): string => `taskyard.maintenance.${service.name}`;

/**
 * The internal definition a recorded service's rounds are runs of. It exists so the rounds have a
 * category, a display name and a place in the registry (hidden from type listings, refused by the
 * launch and retry APIs); it is never run by an engine.
 */
export function maintenanceDefinition(service: MaintenanceService): AnyTaskDefinition {
  return defineTask({
    name: maintenanceTaskName(service),
    category: MAINTENANCE_CATEGORY,
    displayName: service.displayName ?? service.name,
    description: `A round of the ${service.name} maintenance service, recorded by the leader that ran it.`,
    params: z.object({}),
    retry: false,
    internal: true,
    run() {
      throw new NonRetryableError('Maintenance rounds are run by the elected leader on their interval; they cannot be launched');
    },
  });
}

/**
 * Writes maintenance rounds to the ledger: a STARTED run owned by this process when the round
 * begins (so a long round shows while it runs, and one whose process dies is failed by the
 * rescuer like any run), then SUCCESS with what the round returned, or FAILURE with its error.
 */
export class RoundRecorder {
  constructor(
    private readonly store: TaskStore,
    private readonly registry: TaskRegistry,
    private readonly workerId: string,
  ) {}

  /** Whether rounds of this service are written (recorded, and its definition registered). */
  records(service: MaintenanceService): boolean {
    return service.recorded === true && this.registry.has(maintenanceTaskName(service));
  }

  /** When the newest recorded round of this service began (null if none is in the ledger). */
  async lastRoundAt(service: MaintenanceService): Promise<number | null> {
    const { tasks } = await this.store.list({ names: [maintenanceTaskName(service)], limit: 1 }, '*');
    return tasks[0]?.createdAt ?? null;
  }

  async begin(service: MaintenanceService, now: number): Promise<TaskRecord> {
    const definition = this.registry.get(maintenanceTaskName(service));
    const record: TaskRecord = {
      id: uuidv7(now),
      name: definition.name,
      category: this.registry.categoryOf(definition),
      displayName: definition.displayName,
      state: 'STARTED',
      progress: 0,
      progressMessage: null,
      tenantId: null,
      params: {},
      result: null,
      error: null,
      traceback: null,
      meta: null,
      attempt: 1,
      maxAttempts: 1,
      priority: definition.priority,
      queue: definition.queue,
      route: definition.route,
      engine: ENGINE,
      worker: this.workerId,
      idempotencyKey: null,
      runAt: now,
      cancelRequested: null,
      revokeReason: null,
      createdAt: now,
      startedAt: now,
      finishedAt: null,
      updatedAt: now,
    };
    await this.store.insert([record]);
    return record;
  }

  /** Ends the round's run; nothing happens if it was cancelled meanwhile (it stays REVOKED). */
  async finish(record: TaskRecord, outcome: RunOutcome): Promise<void> {
    const definition = this.registry.get(record.name);
    await this.store.apply([{ ...outcomeChange(record, definition, outcome, Date.now()), worker: this.workerId }]);
  }
}
