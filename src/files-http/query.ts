import { goQuote } from "../filesystem/go-text.js";

/** The query parameters of GET and POST /files, as envd's generated binding reads them. */
export interface FilesQuery {
  path: string | undefined;
  username: string | undefined;
  signature: string | undefined;
  signatureExpiration: number | undefined;
}

/** A parameter envd's oapi-codegen binding refuses: a plain-text 400. */
export class QueryParamError extends Error {}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length === 0) return undefined;
  if (values.length > 1) throw new QueryParamError(`Invalid format for parameter ${name}: multiple values for single value parameter '${name}'`);
  return values[0];
}

/** Go's strconv.ParseInt(s, 10, 64) with its error texts. */
function parseInt64(name: string, text: string): number {
  const fail = (why: string) =>
    new QueryParamError(`Invalid format for parameter ${name}: error binding string parameter: strconv.ParseInt: parsing ${goQuote(text)}: ${why}`);
  if (!/^[+-]?\d+$/.test(text)) throw fail("invalid syntax");
  const n = BigInt(text);
  if (n < INT64_MIN || n > INT64_MAX) throw fail("value out of range");
  return Number(n);
}

/**
 * Binds path, username, signature and signature_expiration in envd's order; throws
 * QueryParamError for repeated parameters or a non-integer expiration.
 */
export function parseFilesQuery(params: URLSearchParams): FilesQuery {
  const path = single(params, "path");
  const username = single(params, "username");
  const signature = single(params, "signature");
  const exp = single(params, "signature_expiration");
  return { path, username, signature, signatureExpiration: exp === undefined ? undefined : parseInt64("signature_expiration", exp) };
}

/**
 * The extension's `mode=` on POST /files (octal permission bits such as 0640 or 755): the
 * uploaded files get exactly these bits, set before they take their names. Set-id bits are
 * refused (an upload must not mint set-uid programs). Undefined when absent.
 */
export function parseUploadMode(params: URLSearchParams): number | undefined {
  const text = single(params, "mode");
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{3,4}$/.test(text)) throw new QueryParamError(`Invalid format for parameter mode: ${goQuote(text)} is not an octal file mode such as 0640`);
  const mode = parseInt(text, 8);
  if (mode & 0o6000) throw new QueryParamError(`Invalid format for parameter mode: ${goQuote(text)} sets set-user-ID or set-group-ID, which uploads may not`);
  return mode;
}
