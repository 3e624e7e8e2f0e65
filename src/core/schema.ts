import { z } from 'zod';

/** The seed's parameter description: derived from the zod schema, never written by hand. */
export interface ParameterInfo {
  type: string;
  required: boolean;
  default?: unknown;
  min?: number;
  max?: number;
  description?: string;
  enum?: unknown[];
}

interface JsonSchemaNode {
  type?: string | string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  description?: string;
  enum?: unknown[];
  anyOf?: JsonSchemaNode[];
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
}

export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export function describeParameters(schema: z.ZodType): Record<string, ParameterInfo> {
  const root = jsonSchemaOf(schema) as JsonSchemaNode;
  const required = new Set(root.required ?? []);
  const out: Record<string, ParameterInfo> = {};
  for (const [name, rawNode] of Object.entries(root.properties ?? {})) {
    // Optional and nullable fields arrive as anyOf [T, null]; describe T.
    const node = rawNode.anyOf?.find((n) => n.type !== 'null') ?? rawNode;
    const info: ParameterInfo = {
      type: Array.isArray(node.type) ? node.type.join('|') : (node.type ?? (node.enum ? 'enum' : 'any')),
      required: required.has(name) && rawNode.default === undefined,
    };
    const def = rawNode.default ?? node.default;
    if (def !== undefined) info.default = def;
    const min = node.minimum ?? node.exclusiveMinimum ?? node.minLength;
    const max = node.maximum ?? node.exclusiveMaximum ?? node.maxLength;
    if (min !== undefined && Math.abs(min) < Number.MAX_SAFE_INTEGER) info.min = min;
    if (max !== undefined && Math.abs(max) < Number.MAX_SAFE_INTEGER) info.max = max;
    const description = rawNode.description ?? node.description;
    if (description) info.description = description;
    if (node.enum) info.enum = node.enum;
    out[name] = info;
  }
  return out;
}
