import { isIP } from "node:net";
import { ProxyError } from "./errors.js";

/** A host (IP literal or name, IPv6 without brackets) and a port. */
export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * Parses "host:port" or "[v6]:port". `what` names the field in error messages.
 * Local addresses must be IP literals or "localhost" (the daemon binds them; names would be ambiguous).
 */
export function parseHostPort(text: string, what: string, opts: { local: boolean }): HostPort {
  const bad = (why: string) => new ProxyError("invalid_argument", `${what} '${text}' is not valid: ${why}`);
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) throw bad("expected host:port or [ipv6]:port");
  const host = m[1]!;
  const port = Number(m[2]);
  if (port > 65535 || (port === 0 && !opts.local)) throw bad(`port must be ${opts.local ? 0 : 1}..65535`);
  if (text.startsWith("[") && isIP(host) !== 6) throw bad("brackets need an IPv6 address");
  if (opts.local) {
    if (host !== "localhost" && isIP(host) === 0) throw bad("the host must be an IP address or localhost");
  } else if (isIP(host) === 0 && !HOSTNAME.test(host)) {
    throw bad("the host is neither an IP address nor a host name");
  }
  return { host, port };
}

/** "host:port", bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
