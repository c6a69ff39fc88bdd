import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { ProxyOrigin, ProxyType, type Proxy, type ProxyInfo as ProxyInfoMessage, type ProxyOptionsSchema } from "../gen/envdts/v1/proxy_pb.js";
import { EnvdError, call } from "./errors.js";
import type { CallOptions } from "./processes.js";
import { Code } from "@connectrpc/connect";

/** The protocols a proxy speaks. */
export type ProxyTypeName = "tcp" | "udp" | "http" | "https" | "websocket";

/** A proxy to create. */
export interface ProxySpec {
  /** Unique name; generated when empty. */
  id?: string;
  type: ProxyTypeName;
  /** host:port to listen on; port 0 picks a free one (see boundAddress). */
  local: string;
  /** host:port to forward to; HTTP types also take a URL whose path prefixes every request. */
  remote: string;
  /** Auth, timeouts, retries, TLS, ... (the generated ProxyOptions shape). */
  options?: MessageInitShape<typeof ProxyOptionsSchema>;
}

/** A running proxy with its live counters. Secrets in `options` come back redacted. */
export interface ProxyInfo {
  id: string;
  type: ProxyTypeName;
  local: string;
  /** The address actually bound. */
  boundAddress: string;
  remote: string;
  origin: "manual" | "expose" | "auto_expose" | "unspecified";
  createdAt?: Date;
  stats: { activeConnections: number; totalConnections: number; bytesFromClients: number; bytesToClients: number; errors: number; requests: number };
  raw: ProxyInfoMessage;
}

/** A TCP listener found in /proc/net/tcp{,6}. */
export interface ListeningPort {
  address: string;
  port: number;
  family: string;
  /** 0 when the daemon may not see the owner. */
  pid: number;
  processName: string;
  loopbackOnly: boolean;
  /** Where ExposePort or the auto-exposer forwards it from, if anywhere. */
  exposedAt: string;
}

const TYPES: Record<ProxyTypeName, ProxyType> = { tcp: ProxyType.TCP, udp: ProxyType.UDP, http: ProxyType.HTTP, https: ProxyType.HTTPS, websocket: ProxyType.WEBSOCKET };

function toProxy(p: ProxyInfoMessage): ProxyInfo {
  const s = p.stats;
  return {
    id: p.config?.id ?? "",
    type: (Object.keys(TYPES) as ProxyTypeName[]).find((k) => TYPES[k] === p.config?.type) ?? "tcp",
    local: p.config?.localAddress ?? "",
    boundAddress: p.boundAddress,
    remote: p.config?.remoteAddress ?? "",
    origin: (ProxyOrigin[p.origin] ?? "UNSPECIFIED").toLowerCase() as ProxyInfo["origin"],
    createdAt: p.createdAt ? timestampDate(p.createdAt) : undefined,
    stats: {
      activeConnections: Number(s?.activeConnections ?? 0),
      totalConnections: Number(s?.totalConnections ?? 0),
      bytesFromClients: Number(s?.bytesFromClients ?? 0),
      bytesToClients: Number(s?.bytesToClients ?? 0),
      errors: Number(s?.errors ?? 0),
      requests: Number(s?.requests ?? 0),
    },
    raw: p,
  };
}

/** envdts.v1.Proxy: managed proxies, listening ports, waiting for a port, exposing ports. */
export class ProxiesApi {
  constructor(private readonly rpc: Client<typeof Proxy>) {}

  /** Starts a proxy; it lives in the daemon until delete() or shutdown. */
  async create(spec: ProxySpec, options: CallOptions = {}): Promise<ProxyInfo> {
    const type = TYPES[spec.type];
    if (type === undefined) throw new EnvdError(Code.InvalidArgument, `proxy type '${spec.type}' is not tcp, udp, http, https or websocket`);
    const r = await call(this.rpc.createProxy({ config: { id: spec.id ?? "", type, localAddress: spec.local, remoteAddress: spec.remote, options: spec.options } }, options));
    return toProxy(r.proxy!);
  }

  /** Stops a proxy and closes its connections. */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    await call(this.rpc.deleteProxy({ id }, options));
  }

  /** Every proxy, manual and exposed, with live counters. */
  async list(options: CallOptions = {}): Promise<ProxyInfo[]> {
    return (await call(this.rpc.listProxies({}, options))).proxies.map(toProxy);
  }

  /** TCP ports in LISTEN state, with their owners where visible. */
  async listeningPorts(options: CallOptions & { loopbackOnly?: boolean } = {}): Promise<ListeningPort[]> {
    const r = await call(this.rpc.listListeningPorts({ loopbackOnly: options.loopbackOnly ?? false }, options));
    return r.ports.map((p) => ({ address: p.address, port: p.port, family: p.family, pid: p.pid, processName: p.processName, loopbackOnly: p.loopbackOnly, exposedAt: p.exposedAt }));
  }

  /** Resolves once host:port (default 127.0.0.1) accepts a TCP connection; "deadline_exceeded" after waitMs (default 30000). */
  async waitForPort(port: number, options: CallOptions & { host?: string; waitMs?: number; intervalMs?: number } = {}): Promise<{ elapsedMs: number; attempts: number }> {
    const r = await call(this.rpc.waitForPort({ port, host: options.host ?? "", timeoutMs: options.waitMs ?? 0, intervalMs: options.intervalMs ?? 0 }, options));
    return { elapsedMs: r.elapsedMs, attempts: r.attempts };
  }

  /** Forwards address:port (default: the daemon's --expose-address) to 127.0.0.1:port. */
  async expose(port: number, options: CallOptions & { address?: string; targetHost?: string } = {}): Promise<ProxyInfo> {
    const r = await call(this.rpc.exposePort({ port, address: options.address ?? "", targetHost: options.targetHost ?? "" }, options));
    return toProxy(r.proxy!);
  }

  /** Removes the forward of expose() or of the auto-exposer. */
  async unexpose(port: number, options: CallOptions = {}): Promise<void> {
    await call(this.rpc.unexposePort({ port }, options));
  }
}
