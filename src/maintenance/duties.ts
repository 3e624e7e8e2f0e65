import type { Logger } from '../engines/types.js';
import type { TaskStore } from '../store/types.js';
import type { Broker } from './broker.js';
import { OrphanCleaner, type OrphanCleanerOptions } from './orphans.js';
import { Pruner, type PrunerOptions } from './pruner.js';
import type { Rescuer } from './rescuer.js';
import type { MaintenanceService } from './service.js';
import { StatusSync, type StatusSyncOptions } from './status-sync.js';

/** The leader's scheduled housekeeping, each duty on by default with the seed's schedule. */
export interface MaintenanceOptions {
  /** Retention of finished runs, hourly; `false` keeps everything. */
  pruner?: PrunerOptions | false;
  /** Reconciles the ledger with the engine every 2 minutes; `false` drops this round (the rescuer and sweeper still run on their own intervals). */
  statusSync?: StatusSyncOptions | false;
  /** Removes broker jobs whose run is gone or finished, daily (engines with a broker only); `false` turns it off. */
  orphanCleaner?: OrphanCleanerOptions | false;
  /** Writes each round of these duties to the ledger under category `maintenance` (default true). */
  recordRounds?: boolean;
}

export interface DutyContext {
  store: TaskStore;
  logger: Logger;
  rescuer: Rescuer;
  /** The engine's broker, if it has one (BullMQ, hybrid). */
  broker?: Broker;
}

/** The pruner, the status sync and the orphan cleaner, as the options ask. */
export function maintenanceDuties(context: DutyContext, options: MaintenanceOptions = {}): MaintenanceService[] {
  const { store, logger, rescuer, broker } = context;
  const duties: MaintenanceService[] = [];
  if (options.pruner !== false) duties.push(new Pruner(store, logger, options.pruner));
  if (options.statusSync !== false) duties.push(new StatusSync(store, rescuer, broker ?? null, logger, options.statusSync));
  if (broker && options.orphanCleaner !== false) duties.push(new OrphanCleaner(store, broker, logger, options.orphanCleaner));
  return duties;
}
