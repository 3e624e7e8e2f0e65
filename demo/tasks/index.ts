import type { AnyTaskDefinition } from '../../src/core/definition.js';
import type { CategoryRule } from '../../src/core/registry.js';
import { maintenanceTasks } from './maintenance.js';
import { onboardingTasks } from './onboarding.js';
import { reconciliationTasks } from './reconciliation.js';
import { siiTasks } from './sii.js';

/**
 * Every demo task. Also the module a worker thread imports to find an isolated task by name,
 * so keep its exports to definitions and plain data.
 */
export const demoTasks: AnyTaskDefinition[] = [...siiTasks, ...onboardingTasks, ...reconciliationTasks, ...maintenanceTasks];

/** The seed: any task starting with `accounting.tasks.` is a reconciliation. */
export const categoryRules: CategoryRule[] = [{ prefix: 'accounting.tasks.', category: 'reconciliation' }];

export default demoTasks;
