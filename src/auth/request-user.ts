import { Code, ConnectError } from "@connectrpc/connect";
import { lookupUser, type UserAccount } from "../users/passwd.js";

/**
 * The username in an `Authorization: Basic` header, as Go's r.BasicAuth() reads it;
 * undefined when the header is missing, not Basic, not base64, or has no colon.
 */
export function basicAuthUsername(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const m = /^basic\s+(.*)$/i.exec(header.trim());
  if (!m) return undefined;
  const b64 = m[1]!.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 === 1) return undefined;
  const decoded = Buffer.from(b64, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return decoded.slice(0, colon);
}

/** Resolves the user an RPC acts as: the Basic-auth user, or the default user. */
export function resolveRpcUser(authorization: string | undefined | null, defaultUser: string): UserAccount {
  const name = basicAuthUsername(authorization);
  if (name !== undefined) {
    const user = lookupUser(name);
    if (!user) throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated);
    return user;
  }
  const user = lookupUser(defaultUser);
  if (!user) throw new ConnectError(`invalid default user: '${defaultUser}'`, Code.Unauthenticated);
  return user;
}
