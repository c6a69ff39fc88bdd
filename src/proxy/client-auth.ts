import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { ProxyAuthSpec } from "./proxy-spec.js";

function same(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}

function matches(auth: ProxyAuthSpec, header: string | undefined): boolean {
  if (!header) return false;
  const m = /^(\S+)\s+(.+)$/.exec(header.trim());
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  if (auth.kind === "bearer") return scheme === "bearer" && same(m[2]!.trim(), auth.token);
  if (scheme !== "basic") return false;
  const decoded = Buffer.from(m[2]!.trim(), "base64").toString("utf8");
  return same(decoded, `${auth.username}:${auth.password}`);
}

/**
 * Checks the credentials an HTTP-family proxy demands. Returns the header that carried them
 * (it is ours, so it is not forwarded), or undefined when the client must be refused.
 */
export function checkClientAuth(auth: ProxyAuthSpec, headers: IncomingHttpHeaders): "authorization" | "proxy-authorization" | undefined {
  for (const name of ["authorization", "proxy-authorization"] as const) {
    const v = headers[name];
    if (matches(auth, Array.isArray(v) ? v[0] : v)) return name;
  }
  return undefined;
}

/** The WWW-Authenticate challenge for a refused client. */
export function authChallenge(auth: ProxyAuthSpec): string {
  return auth.kind === "basic" ? 'Basic realm="envd-ts proxy", charset="UTF-8"' : 'Bearer realm="envd-ts proxy"';
}
