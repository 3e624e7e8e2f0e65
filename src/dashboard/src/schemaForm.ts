import type { FieldError, JsonSchema } from './api';

/**
 * A launch form generated from a task's parameter schema (the JSON Schema the server derives
 * from zod). Inputs hold text; `readForm` turns them into params and checks what the schema
 * says, so most mistakes are caught before sending. The server still has the last word (422).
 */

export type FieldKind = 'text' | 'integer' | 'number' | 'boolean' | 'enum' | 'list' | 'json';

export interface FormField {
  name: string;
  kind: FieldKind;
  required: boolean;
  schema: JsonSchema;
  description?: string;
  /** A string-or-number field (ids): sent as typed text. */
  loose?: boolean;
}

export type FormValues = Record<string, string | boolean>;

/** Optional and nullable fields arrive as anyOf [T, null]: describe T. */
const unwrap = (node: JsonSchema): JsonSchema => node.anyOf?.find((n) => n.type !== 'null') ?? node;

const typesOf = (node: JsonSchema): string[] => (Array.isArray(node.type) ? node.type : node.type ? [node.type] : []);

/** Bounds near Number.MAX_SAFE_INTEGER are zod's "any integer", not a real limit. */
const realBound = (n: number | undefined) => (n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER ? n : undefined);

export function formFields(schema: JsonSchema): FormField[] {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).map(([name, raw]) => {
    const node = unwrap(raw);
    const types = typesOf(node).filter((t) => t !== 'null');
    let kind: FieldKind = 'json';
    if (node.enum) kind = 'enum';
    else if (types.length === 1 && types[0] === 'boolean') kind = 'boolean';
    else if (types.length === 1 && types[0] === 'integer') kind = 'integer';
    else if (types.length === 1 && types[0] === 'number') kind = 'number';
    else if (types.length === 1 && types[0] === 'string') kind = 'text';
    else if (types.length > 1 && types.every((t) => t === 'string' || t === 'number' || t === 'integer')) kind = 'text';
    else if (types[0] === 'array' && unwrap(node.items ?? {}).type === 'string') kind = 'list';
    const description = raw.description ?? node.description;
    return {
      name,
      kind,
      required: required.has(name) && raw.default === undefined && node.default === undefined,
      schema: { ...node, default: raw.default ?? node.default },
      ...(description ? { description } : {}),
      ...(types.length > 1 && kind === 'text' ? { loose: true } : {}),
    };
  });
}

/** What an input shows for a value (a default or an existing run's param). */
export function toInput(field: FormField, value: unknown): string | boolean {
  if (value === undefined || value === null) return field.kind === 'boolean' ? false : '';
  switch (field.kind) {
    case 'boolean':
      return Boolean(value);
    case 'list':
      return Array.isArray(value) ? value.map(String).join('\n') : String(value);
    case 'json':
      return JSON.stringify(value, null, 2);
    default:
      return typeof value === 'string' ? value : String(value);
  }
}

/** Initial inputs: the values given (re-launch), else the schema's defaults. */
export function initialValues(fields: FormField[], params: Record<string, unknown> = {}): FormValues {
  const values: FormValues = {};
  for (const field of fields) values[field.name] = toInput(field, field.name in params ? params[field.name] : field.schema.default);
  return values;
}

export function readForm(fields: FormField[], values: FormValues): { params: Record<string, unknown>; errors: Record<string, string> } {
  const params: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const raw = values[field.name];
    const s = field.schema;
    if (field.kind === 'boolean') {
      params[field.name] = raw === true;
      continue;
    }
    const text = typeof raw === 'string' ? raw.trim() : '';
    if (text === '') {
      if (field.required) errors[field.name] = 'is required';
      continue;
    }
    const error = ((): string | null => {
      switch (field.kind) {
        case 'integer':
        case 'number': {
          const n = Number(text);
          if (!Number.isFinite(n)) return 'must be a number';
          if (field.kind === 'integer' && !Number.isInteger(n)) return 'must be a whole number';
          const min = realBound(s.minimum);
          const max = realBound(s.maximum);
          if (min !== undefined && n < min) return `must be at least ${min}`;
          if (max !== undefined && n > max) return `must be at most ${max}`;
          if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) return `must be greater than ${s.exclusiveMinimum}`;
          if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) return `must be less than ${s.exclusiveMaximum}`;
          params[field.name] = n;
          return null;
        }
        case 'enum': {
          const match = s.enum!.find((option) => String(option) === text);
          if (match === undefined) return `must be one of ${s.enum!.join(', ')}`;
          params[field.name] = match;
          return null;
        }
        case 'list':
          params[field.name] = text.split('\n').map((line) => line.trim()).filter(Boolean);
          return null;
        case 'json':
          try {
            params[field.name] = JSON.parse(text);
            return null;
          } catch {
            return 'must be valid JSON';
          }
        default: {
          if (!field.loose) {
            if (s.minLength !== undefined && text.length < s.minLength) return `must be at least ${s.minLength} characters`;
            if (s.maxLength !== undefined && text.length > s.maxLength) return `must be at most ${s.maxLength} characters`;
            if (s.pattern !== undefined && !safeRegExp(s.pattern)?.test(text)) return `must match ${s.pattern}`;
          }
          params[field.name] = text;
          return null;
        }
      }
    })();
    if (error) errors[field.name] = error;
  }
  return { params, errors };
}

function safeRegExp(pattern: string): RegExp | null {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return null;
  }
}

/**
 * Places a server's 422 field errors on the form: `months` and `params.months` are the field
 * `months`; nested paths go to their top-level field; anything else is a form-level error.
 */
export function placeServerErrors(fields: FormField[], errors: FieldError[]): { byField: Record<string, string>; general: string[] } {
  const names = new Set(fields.map((f) => f.name));
  const byField: Record<string, string> = {};
  const general: string[] = [];
  for (const { field, message } of errors) {
    const path = field.startsWith('params.') ? field.slice('params.'.length) : field;
    const top = path.split('.')[0] ?? '';
    if (names.has(top)) byField[top] = byField[top] ? `${byField[top]}; ${message}` : message;
    else general.push(field ? `${field}: ${message}` : message);
  }
  return { byField, general };
}

/** Errors without the one of a field the user just edited. */
export function withoutError(errors: Record<string, string>, field: string): Record<string, string> {
  if (!(field in errors)) return errors;
  const { [field]: _edited, ...rest } = errors;
  return rest;
}
