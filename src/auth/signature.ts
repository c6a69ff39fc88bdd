import { createHash, timingSafeEqual } from "node:crypto";

/** `read` signs GET /files, `write` signs POST /files. */
export type SignatureOperation = "read" | "write";

/**
 * E2B's file URL signature: "v1_" + unpadded base64 of
 * sha256("path:operation:username:token[:expiration]").
 */
export function fileSignature(
  path: string,
  operation: SignatureOperation,
  username: string,
  token: string,
  expiration?: number,
): string {
  let payload = `${path}:${operation}:${username}:${token}`;
  if (expiration !== undefined) payload += `:${expiration}`;
  return "v1_" + createHash("sha256").update(payload, "utf8").digest("base64").replace(/=+$/, "");
}

/** The raw query values a signature covers (path and username unresolved, as sent). */
export interface SignedQuery {
  path: string;
  username: string;
  signature: string | undefined;
  expiration: number | undefined;
}

/** Why a signed request was refused, in E2B's words; undefined when it is valid. */
export function signatureProblem(
  query: SignedQuery,
  operation: SignatureOperation,
  token: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): string | undefined {
  if (query.signature === undefined) return "missing signature query parameter";
  const expected = Buffer.from(fileSignature(query.path, operation, query.username, token, query.expiration));
  const given = Buffer.from(query.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "invalid signature";
  if (query.expiration !== undefined && query.expiration < nowSeconds) return "signature is already expired";
  return undefined;
}
