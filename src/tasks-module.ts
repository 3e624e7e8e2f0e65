/**
 * A tasks module: the user's ES module exporting task definitions, either as its default export
 * (an array, or one definition) or as named exports (definitions, or arrays of them).
 * `taskyard serve --tasks` loads one, and so does every worker thread of `isolation: 'thread'`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyTaskDefinition } from './core/definition.js';
import type { ScheduleDefinition } from './schedules/definition.js';

/** What defineTask returns, recognised by shape (a module may export other things too). */
export function isTaskDefinition(value: unknown): value is AnyTaskDefinition {
  if (!value || typeof value !== 'object') return false;
  const v = value as Partial<AnyTaskDefinition>;
  return typeof v.name === 'string' && typeof v.run === 'function' && typeof v.tenantOf === 'function' && typeof v.retry === 'object';
}

/** Every definition a module exports, once each, in export order. */
export function definitionsIn(namespace: Record<string, unknown>): AnyTaskDefinition[] {
  const found = new Set<AnyTaskDefinition>();
  for (const value of Object.values(namespace)) {
    for (const candidate of Array.isArray(value) ? value : [value]) {
      if (isTaskDefinition(candidate)) found.add(candidate);
    }
  }
  return [...found];
}

/** The module's `schedules` export, if it has one: schedules defined in code (checked at start). */
export function schedulesIn(namespace: Record<string, unknown>): ScheduleDefinition[] | undefined {
  const value = namespace.schedules;
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new Error('its schedules export must be an array of schedule definitions');
  return value as ScheduleDefinition[];
}

/** TypeScript sources need a loader; JavaScript never does. */
export const isTypeScriptModule = (specifier: string): boolean => /\.[cm]?tsx?$/.test(new URL(specifier, 'file:///').pathname);

/** A path (relative to the working directory) or a URL, as a URL string `import()` accepts. */
export function tasksModuleUrl(pathOrUrl: string, cwd: string = process.cwd()): string {
  if (/^(file|data):/.test(pathOrUrl)) return pathOrUrl;
  return pathToFileURL(resolve(cwd, pathOrUrl)).href;
}

/**
 * Registers tsx so `import()` can load a TypeScript tasks module. tsx is optional: a missing
 * one is a clear error naming the fix, and JavaScript modules never need it.
 */
export async function registerTypeScriptLoader(forModule: string): Promise<void> {
  let api: { register: () => unknown };
  try {
    api = (await import('tsx/esm/api')) as { register: () => unknown };
  } catch {
    throw new Error(`${forModule} is TypeScript, which needs tsx to load: install it (npm install --save-dev tsx) or point at the compiled JavaScript`);
  }
  api.register();
}

/** Imports a tasks module (registering tsx first for TypeScript) and returns its definitions. */
export async function loadTasksModule(url: string): Promise<AnyTaskDefinition[]> {
  if (isTypeScriptModule(url)) await registerTypeScriptLoader(url);
  const namespace = (await import(url)) as Record<string, unknown>;
  return definitionsIn(namespace);
}
