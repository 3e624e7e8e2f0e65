/** Turning `--param k=v` and `--params-json` into a launch's params. */
import { CliError, type ParameterInfo } from './client.js';

/** `k=v` → [k, v], splitting on the first `=` so values may contain `=`. */
export function splitParam(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new CliError(`--param expects key=value, got ${JSON.stringify(text)}`);
  return [text.slice(0, at).trim(), text.slice(at + 1)];
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * A value is JSON when it parses (numbers, booleans, arrays), else a string. The schema wins:
 * when it says the parameter is a string, the raw text is kept, so `company_id=73` stays "73".
 */
export function parseParamValue(raw: string, info?: ParameterInfo): unknown {
  const types = info?.type.split('|') ?? [];
  if (types.length > 0 && types.every((t) => t === 'string')) return raw;
  if (info?.enum && info.enum.includes(raw)) return raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (types.includes('string')) {
    const kind = jsonTypeOf(parsed);
    const accepted = types.includes(kind) || (kind === 'integer' && types.includes('number'));
    if (!accepted) return raw;
  }
  return parsed;
}

export function parseParamsJson(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CliError(`--params-json is not valid JSON: ${(error as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError('--params-json must be a JSON object');
  return parsed as Record<string, unknown>;
}

/** `--params-json` first, then each `--param` on top of it. */
export function buildParams(
  pairs: readonly string[],
  paramsJson: string | undefined,
  schema: Record<string, ParameterInfo> | undefined,
): Record<string, unknown> {
  const params = parseParamsJson(paramsJson);
  for (const pair of pairs) {
    const [key, raw] = splitParam(pair);
    params[key] = parseParamValue(raw, schema?.[key]);
  }
  return params;
}
