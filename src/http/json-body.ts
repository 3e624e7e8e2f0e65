/** The deepest nesting a JSON body may have. Deeper bodies blow the stack of recursive code (validation, serialization). */
export const MAX_JSON_DEPTH = 64;

/**
 * True when `text` nests arrays/objects deeper than `max`. One pass, no recursion, so a hostile
 * body cannot overflow the stack here either; brackets inside strings do not count.
 */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++; // skip the escaped character
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/** Parses a JSON request body: empty is no body, malformed is a 400, too deep is a 422. */
export function parseJsonBody(body: string): unknown {
  const text = body.trim();
  if (text === '') return undefined;
  if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw Object.assign(new Error(`JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`), { statusCode: 422 });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw Object.assign(new Error(`Malformed JSON body: ${(error as Error).message}`), { statusCode: 400 });
  }
}
