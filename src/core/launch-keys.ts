import { createHash } from 'node:crypto';
import type { AnyTaskDefinition } from './definition.js';

/**
 * The keys that let a launch find an earlier run instead of making a new one (`unique` and
 * `cache` definitions). A key names the definition, the tenant and the chosen params' values, so
 * one tenant's launch never finds another's run. Hashed: params may be long, keys are indexed.
 */

export function uniqueKeyOf(definition: AnyTaskDefinition, tenantId: string | null, params: unknown): string | null {
  if (!definition.unique) return null;
  return keyOf('u', definition.name, tenantId, pick(params, definition.unique.by));
}

export function cacheKeyOf(definition: AnyTaskDefinition, tenantId: string | null, params: unknown): string | null {
  if (!definition.cache) return null;
  return keyOf('c', definition.name, tenantId, definition.cache.by ? pick(params, definition.cache.by) : params);
}

function keyOf(kind: string, name: string, tenantId: string | null, values: unknown): string {
  const digest = createHash('sha256').update(canonicalJson([tenantId, values])).digest('base64url');
  return `${kind}:${name}:${digest}`;
}

function pick(params: unknown, names: readonly string[]): unknown[] {
  const source = params !== null && typeof params === 'object' ? (params as Record<string, unknown>) : {};
  return names.map((name) => source[name] ?? null);
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
