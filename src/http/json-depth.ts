/**
 * Deepest nesting of arrays and objects a JSON request may have. Protobuf JSON of our messages
 * nests a few levels; V8's JSON.parse of a 16 MiB run of '[' takes tens of seconds of the one
 * thread every client shares, so a deeper document is refused before it is parsed.
 */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether `json` (UTF-8 bytes or a string) nests deeper than `max`: one linear pass over the
 * brackets outside strings, stopping at the first level too deep. Malformed JSON is left to the
 * parser to report.
 */
export function jsonTooDeep(json: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  const text = typeof json === "string";
  const n = json.length;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < n; i++) {
    const c = text ? (json as string).charCodeAt(i) : (json as Uint8Array)[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return false;
}

/** The message for a refused document. */
export function tooDeepMessage(max = MAX_JSON_DEPTH): string {
  return `JSON nests deeper than ${max} levels`;
}
