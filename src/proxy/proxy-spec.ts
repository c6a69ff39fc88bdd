import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { createSecureContext } from "node:tls";
import { ProxyType, type ProxyConfig } from "../gen/envdts/v1/proxy_pb.js";
import { parseHostPort, type HostPort } from "./address.js";
import { ProxyError } from "./errors.js";

/** The transports a proxy can speak. */
export type ProxyKind = "tcp" | "udp" | "http" | "https" | "websocket";

/** Credentials an HTTP-family proxy demands from its clients. */
export type ProxyAuthSpec = { kind: "basic"; username: string; password: string } | { kind: "bearer"; token: string };

/** Where an HTTP-family proxy sends requests: scheme, host, port and a path prefix ("" or "/base"). */
export interface HttpTarget extends HostPort {
  protocol: "http:" | "https:";
  basePath: string;
}

/** Timeouts, retries and buffers shared by every kind (0 = no timeout where that makes sense). */
export interface ProxyTuning {
  connectTimeoutMs: number;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  maxRetries: number;
  retryDelayMs: number;
  bufferSize: number;
  udpSessionTimeoutMs: number;
  preserveHost: boolean;
  insecureSkipVerify: boolean;
}

/** A validated proxy configuration; the registry and the listeners work only with this. */
export interface ProxySpec {
  id: string;
  kind: ProxyKind;
  local: HostPort;
  /** host:port for TCP and UDP. */
  remote: HostPort;
  /** The remote as an HTTP target, for the HTTP family. */
  target: HttpTarget;
  tuning: ProxyTuning;
  auth: ProxyAuthSpec | undefined;
  tls: { cert: string | Buffer; key: string | Buffer } | undefined;
}

const KINDS: Partial<Record<ProxyType, ProxyKind>> = {
  [ProxyType.TCP]: "tcp",
  [ProxyType.UDP]: "udp",
  [ProxyType.HTTP]: "http",
  [ProxyType.HTTPS]: "https",
  [ProxyType.WEBSOCKET]: "websocket",
};

const ID = /^[A-Za-z0-9._-]{1,128}$/;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;

/** Defaults documented in proxy.proto. */
export const DEFAULT_TUNING: ProxyTuning = {
  connectTimeoutMs: 10_000,
  readTimeoutMs: 0,
  writeTimeoutMs: 0,
  maxRetries: 0,
  retryDelayMs: 100,
  bufferSize: 64 * 1024,
  udpSessionTimeoutMs: 60_000,
  preserveHost: false,
  insecureSkipVerify: false,
};

function invalid(message: string): ProxyError {
  return new ProxyError("invalid_argument", message);
}

function bounded(name: string, value: number, fallback: number, max: number): number {
  if (value === 0) return fallback;
  if (value > max) throw invalid(`options.${name} ${value} is above the maximum ${max}`);
  return value;
}

/** Parses an HTTP remote: a URL with http/https scheme, or bare host:port meaning http. */
export function parseHttpTarget(text: string): HttpTarget {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return { protocol: "http:", basePath: "", ...parseHostPort(text, "remote_address", { local: false }) };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(`remote_address '${text}' is not a valid URL`);
  }
  const protocol = url.protocol === "ws:" ? "http:" : url.protocol === "wss:" ? "https:" : url.protocol;
  if (protocol !== "http:" && protocol !== "https:") throw invalid(`remote_address '${text}': the scheme must be http, https, ws or wss`);
  if (url.username || url.password || url.search || url.hash) throw invalid(`remote_address '${text}': credentials, query and fragment are not allowed`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port ? Number(url.port) : protocol === "https:" ? 443 : 80;
  return { protocol, host, port, basePath: url.pathname === "/" ? "" : url.pathname.replace(/\/$/, "") };
}

function readPem(pem: string, file: string, what: string): string | Buffer | undefined {
  if (pem && file) throw invalid(`options.tls: give ${what}_pem or ${what}_file, not both`);
  if (pem) return pem;
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(`options.tls.${what}_file '${file}' cannot be read: ${(err as Error).message}`);
  }
}

function parseTls(config: ProxyConfig, kind: ProxyKind): ProxySpec["tls"] {
  const t = config.options?.tls;
  const cert = t ? readPem(t.certPem, t.certFile, "cert") : undefined;
  const key = t ? readPem(t.keyPem, t.keyFile, "key") : undefined;
  if (!cert && !key) {
    if (kind === "https") throw invalid("an HTTPS proxy needs options.tls with a certificate and a key");
    return undefined;
  }
  if (kind !== "https" && kind !== "websocket") throw invalid(`options.tls is only for HTTPS and WebSocket proxies`);
  if (!cert || !key) throw invalid("options.tls needs both a certificate and a key");
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw invalid(`options.tls: the certificate or key is not usable: ${(err as Error).message}`);
  }
  return { cert, key };
}

function parseAuth(config: ProxyConfig, kind: ProxyKind): ProxyAuthSpec | undefined {
  const a = config.options?.auth?.method;
  if (!a || a.case === undefined) return undefined;
  if (kind === "tcp" || kind === "udp") throw invalid("options.auth applies only to HTTP, HTTPS and WebSocket proxies");
  if (a.case === "basic") {
    if (!a.value.username || a.value.username.includes(":")) throw invalid("options.auth.basic.username must be non-empty and contain no ':'");
    return { kind: "basic", username: a.value.username, password: a.value.password };
  }
  if (!a.value) throw invalid("options.auth.bearer_token must not be empty");
  return { kind: "bearer", token: a.value };
}

/** Validates a CreateProxy config; every problem is `invalid_argument` naming the field. */
export function parseProxySpec(config: ProxyConfig | undefined): ProxySpec {
  if (!config) throw invalid("config is required");
  const kind = KINDS[config.type];
  if (!kind) throw invalid("config.type must be one of PROXY_TYPE_TCP, PROXY_TYPE_UDP, PROXY_TYPE_HTTP, PROXY_TYPE_HTTPS, PROXY_TYPE_WEBSOCKET");
  const id = config.id || `${kind}-${randomUUID().slice(0, 8)}`;
  if (!ID.test(id)) throw invalid(`id '${id}' must be 1-128 letters, digits, '.', '_' or '-'`);
  if (!config.localAddress) throw invalid("local_address is required");
  if (!config.remoteAddress) throw invalid("remote_address is required");
  const local = parseHostPort(config.localAddress, "local_address", { local: true });
  const isHttp = kind === "http" || kind === "https" || kind === "websocket";
  const target = isHttp ? parseHttpTarget(config.remoteAddress) : { protocol: "http:" as const, basePath: "", ...parseHostPort(config.remoteAddress, "remote_address", { local: false }) };
  const o = config.options;
  const tuning: ProxyTuning = {
    connectTimeoutMs: bounded("connect_timeout_ms", o?.connectTimeoutMs ?? 0, DEFAULT_TUNING.connectTimeoutMs, MAX_TIMEOUT_MS),
    readTimeoutMs: bounded("read_timeout_ms", o?.readTimeoutMs ?? 0, 0, MAX_TIMEOUT_MS),
    writeTimeoutMs: bounded("write_timeout_ms", o?.writeTimeoutMs ?? 0, 0, MAX_TIMEOUT_MS),
    maxRetries: bounded("max_retries", o?.maxRetries ?? 0, 0, 100),
    retryDelayMs: bounded("retry_delay_ms", o?.retryDelayMs ?? 0, DEFAULT_TUNING.retryDelayMs, 60_000),
    bufferSize: bounded("buffer_size", o?.bufferSize ?? 0, DEFAULT_TUNING.bufferSize, 64 * 1024 * 1024),
    udpSessionTimeoutMs: bounded("udp_session_timeout_ms", o?.udpSessionTimeoutMs ?? 0, DEFAULT_TUNING.udpSessionTimeoutMs, MAX_TIMEOUT_MS),
    preserveHost: o?.preserveHost ?? false,
    insecureSkipVerify: o?.insecureSkipVerify ?? false,
  };
  if (tuning.bufferSize < 1024) throw invalid("options.buffer_size must be at least 1024");
  return { id, kind, local, remote: { host: target.host, port: target.port }, target, tuning, auth: parseAuth(config, kind), tls: parseTls(config, kind) };
}
