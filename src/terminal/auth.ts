import type { IncomingMessage } from "node:http";
import type { AccessToken } from "../auth/access-token.js";
import type { HttpRequest } from "../http/types.js";

/** Carries the token for the page's later requests and its WebSocket (HttpOnly: scripts never see it). */
export const TOKEN_COOKIE = "envd_terminal_token";

function cookie(req: HttpRequest | IncomingMessage, name: string): string | undefined {
  const raw = req.headers.cookie;
  for (const part of (Array.isArray(raw) ? raw.join(";") : raw ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Where a request's token came from, if it matched. */
export type TokenSource = "none-required" | "header" | "query" | "cookie";

/**
 * Checks the daemon's access token for a terminal request: the X-Access-Token header (API
 * clients), the `access_token` query parameter (a link opened in a browser), or the cookie
 * set from it. Undefined when a token is set and none of them matches.
 */
export function terminalTokenSource(token: AccessToken, req: HttpRequest | IncomingMessage, url: URL): TokenSource | undefined {
  if (!token.isSet()) return "none-required";
  const header = req.headers["x-access-token"];
  if (token.matches(Array.isArray(header) ? header[0] : header)) return "header";
  if (token.matches(url.searchParams.get("access_token"))) return "query";
  if (token.matches(cookie(req, TOKEN_COOKIE))) return "cookie";
  return undefined;
}

/**
 * A browser page may open our WebSocket only from our own origin: a page elsewhere must not
 * ride on the cookie (cross-site WebSocket hijacking). Clients that send no Origin are not browsers.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
