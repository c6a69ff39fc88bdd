import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { failureCode } from "../http/failure-code.js";
import { lookupUser, type UserAccount } from "../users/passwd.js";

/**
 * The username in an `Authorization: Basic` header, as Go's r.BasicAuth() reads it;
 * undefined when the header is missing, not Basic, not base64, or has no colon.
 */
export function basicAuthUsername(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  // Go's parser: "Basic " exactly (any case), then padded standard base64.
  if (header.length < 6 || header.slice(0, 6).toLowerCase() !== "basic ") return undefined;
  const b64 = header.slice(6);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(b64, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return decoded.slice(0, colon);
}

/** {@link lookupUser} for an RPC: a user database that cannot be read fails the call, out of descriptors as resource_exhausted. */
function lookupRpcUser(name: string): UserAccount | undefined {
  try {
    return lookupUser(name);
  } catch (err) {
    throw new ConnectError(`cannot read the user database: ${(err as Error).message}`, failureCode(err));
  }
}

/** Resolves the user an RPC acts as: the Basic-auth user, or the default user. */
export function resolveRpcUser(authorization: string | undefined | null, defaultUser: string): UserAccount {
  const name = basicAuthUsername(authorization);
  if (name !== undefined) {
    const user = lookupRpcUser(name);
    if (!user) throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated);
    return user;
  }
  const user = lookupRpcUser(defaultUser);
  if (!user) throw new ConnectError(`invalid default user: '${defaultUser}'`, Code.Unauthenticated);
  return user;
}

/**
 * E2B's authn middleware, which runs on every request: a Basic header naming an unknown
 * user is refused with this message, even on routes that never use the user. A user database
 * that cannot be read refuses no one here; a handler that needs the user reports the failure.
 */
export function unknownBasicUser(authorization: string | undefined | null): string | undefined {
  const name = basicAuthUsername(authorization);
  if (name === undefined) return undefined;
  try {
    if (lookupUser(name)) return undefined;
  } catch {
    return undefined;
  }
  return `invalid username: '${name}'`;
}

/** {@link unknownBasicUser} for RPCs: fails the call as unauthenticated, in the call's own protocol. */
export function rejectUnknownBasicUser(): Interceptor {
  return (next) => (req) => {
    const problem = unknownBasicUser(req.header.get("authorization"));
    if (problem) throw new ConnectError(problem, Code.Unauthenticated);
    return next(req);
  };
}
