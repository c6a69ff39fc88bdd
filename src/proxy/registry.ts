import type { Logger } from "../log.js";
import { ProxyCounters, type StatsSnapshot } from "./counters.js";
import { ProxyError } from "./errors.js";
import { startHttpProxy } from "./http.js";
import type { ListenerContext, ProxyListener } from "./listener.js";
import type { ProxyKind, ProxySpec } from "./proxy-spec.js";
import { startTcpProxy } from "./tcp.js";
import { startUdpProxy } from "./udp.js";

/** Who made a proxy: CreateProxy, ExposePort, or the auto-exposer. */
export type ProxyOrigin = "manual" | "expose" | "auto-expose";

/** A running proxy as the registry keeps it. */
export interface ManagedProxy {
  spec: ProxySpec;
  origin: ProxyOrigin;
  boundAddress: string;
  createdAt: Date;
  stats(): StatsSnapshot;
}

interface Entry extends ManagedProxy {
  listener: ProxyListener;
}

const STARTERS: Record<ProxyKind, (ctx: ListenerContext) => Promise<ProxyListener>> = {
  tcp: startTcpProxy,
  udp: startUdpProxy,
  http: startHttpProxy,
  https: startHttpProxy,
  websocket: startHttpProxy,
};

/**
 * The one place proxies live. They belong to the daemon, not to the RPC that created them,
 * so a client disconnecting changes nothing; only delete() and closeAll() stop them.
 */
export class ProxyRegistry {
  private readonly proxies = new Map<string, Entry>();
  /** Ids being started, so two concurrent creates of one id cannot both win. */
  private readonly starting = new Set<string>();
  private closed = false;

  constructor(private readonly log: Logger) {}

  /** Starts a proxy. Throws already_exists for a taken id, or the listener's bind error. */
  async create(spec: ProxySpec, origin: ProxyOrigin): Promise<ManagedProxy> {
    if (this.closed) throw new ProxyError("failed_precondition", "the daemon is shutting down");
    if (this.proxies.has(spec.id) || this.starting.has(spec.id)) throw new ProxyError("already_exists", `a proxy with id '${spec.id}' already exists`);
    this.starting.add(spec.id);
    try {
      const counters = new ProxyCounters();
      const listener = await STARTERS[spec.kind]({ spec, counters, log: this.log });
      if (this.closed) {
        await listener.close();
        throw new ProxyError("failed_precondition", "the daemon is shutting down");
      }
      const entry: Entry = { spec, origin, boundAddress: listener.boundAddress, createdAt: new Date(), listener, stats: () => counters.snapshot() };
      this.proxies.set(spec.id, entry);
      this.log.info({ proxy: spec.id, kind: spec.kind, local: listener.boundAddress, remote: `${spec.remote.host}:${spec.remote.port}`, origin }, "proxy started");
      return entry;
    } finally {
      this.starting.delete(spec.id);
    }
  }

  /** Stops a proxy and closes its connections. Throws not_found for an unknown id. */
  async delete(id: string): Promise<void> {
    const entry = this.proxies.get(id);
    if (!entry) throw new ProxyError("not_found", `no proxy with id '${id}'`);
    this.proxies.delete(id);
    await entry.listener.close();
    this.log.info({ proxy: id }, "proxy stopped");
  }

  get(id: string): ManagedProxy | undefined {
    return this.proxies.get(id);
  }

  list(): ManagedProxy[] {
    return [...this.proxies.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.spec.id.localeCompare(b.spec.id));
  }

  /** Stops every proxy; later creates fail. Called on daemon shutdown. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const entries = [...this.proxies.values()];
    this.proxies.clear();
    await Promise.allSettled(entries.map((e) => e.listener.close()));
  }
}
