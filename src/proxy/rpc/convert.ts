import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ProxyConfigSchema, ProxyInfoSchema, ProxyOrigin, ProxyType, type ProxyConfig, type ProxyInfo } from "../../gen/envdts/v1/proxy_pb.js";
import { formatHostPort } from "../address.js";
import type { ProxyKind } from "../proxy-spec.js";
import type { ManagedProxy, ProxyOrigin as Origin } from "../registry.js";

const TYPES: Record<ProxyKind, ProxyType> = {
  tcp: ProxyType.TCP,
  udp: ProxyType.UDP,
  http: ProxyType.HTTP,
  https: ProxyType.HTTPS,
  websocket: ProxyType.WEBSOCKET,
};

const ORIGINS: Record<Origin, ProxyOrigin> = {
  manual: ProxyOrigin.MANUAL,
  expose: ProxyOrigin.EXPOSE,
  "auto-expose": ProxyOrigin.AUTO_EXPOSE,
};

/** The configs clients gave, per proxy; proxies made by the exposer have none. */
const givenConfigs = new WeakMap<ManagedProxy, ProxyConfig>();

/** Keeps the client's config so listings show it as given (with secrets cleared). */
export function rememberConfig(p: ManagedProxy, config: ProxyConfig): void {
  givenConfigs.set(p, config);
}

/** A proxy's config as the client gave it, minus secrets: passwords, tokens and private keys. */
function redactedConfig(p: ManagedProxy): ProxyConfig {
  const given = givenConfigs.get(p);
  const config = create(ProxyConfigSchema, given ?? {});
  config.id = p.spec.id;
  config.type = TYPES[p.spec.kind];
  if (!given) {
    config.localAddress = formatHostPort(p.spec.local.host, p.spec.local.port);
    config.remoteAddress = formatHostPort(p.spec.remote.host, p.spec.remote.port);
  }
  const auth = config.options?.auth?.method;
  if (auth?.case === "basic") auth.value.password = "";
  if (auth?.case === "bearerToken") auth.value = "";
  if (config.options?.tls) config.options.tls.keyPem = "";
  return config;
}

/** The wire form of a running proxy with its live counters. */
export function proxyInfo(p: ManagedProxy): ProxyInfo {
  const s = p.stats();
  return create(ProxyInfoSchema, {
    config: redactedConfig(p),
    boundAddress: p.boundAddress,
    createdAt: timestampFromDate(p.createdAt),
    origin: ORIGINS[p.origin],
    stats: {
      activeConnections: BigInt(s.activeConnections),
      totalConnections: BigInt(s.totalConnections),
      bytesFromClients: BigInt(s.bytesFromClients),
      bytesToClients: BigInt(s.bytesToClients),
      errors: BigInt(s.errors),
      requests: BigInt(s.requests),
    },
  });
}
