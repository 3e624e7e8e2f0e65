import { z } from 'zod';
import { TaskyardError, type FieldError } from '../core/errors.js';
import { describeIssue } from '../core/registry.js';

/** Parses a query or body with zod; failures are a 422 with one entry per field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: 'query' | 'body'): z.output<S> {
  const parsed = schema.safeParse(value ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  const errors: FieldError[] = parsed.error.issues.map((issue) => ({
    field: issue.path.map(String).join('.') || where,
    message: describeIssue(issue),
  }));
  throw new TaskyardError(
    'invalid_params',
    `Invalid ${where}: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`,
    errors,
  );
}

/** Query strings carry text; these coerce it strictly (no "abc" -> NaN surprises). */
export const queryInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const queryBool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** ISO 8601 or epoch milliseconds, as epoch milliseconds. */
export const queryTime = z.string().transform((value, ctx) => {
  const t = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(t)) {
    ctx.addIssue({ code: 'custom', message: 'must be an ISO 8601 date or epoch milliseconds' });
    return z.NEVER;
  }
  return t;
});

/** Comma-separated lists (`state=PENDING,STARTED`); repeated keys arrive as arrays. */
export const queryList = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(item).min(1, 'must not be empty'));

/** The `{task_id}` path parameter: any id up to 200 characters; unknown ones are a 404 later. */
export const taskIdParams = z.object({ task_id: z.string().min(1).max(200) });
/** Its JSON schema, for the OpenAPI document. */
export const taskIdParamsSchema = { type: 'object', properties: { task_id: { type: 'string' } }, required: ['task_id'] } as const;
