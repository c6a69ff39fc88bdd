import { isIP } from "node:net";
import type { Logger } from "../log.js";
import { formatHostPort } from "./address.js";
import { ProxyError } from "./errors.js";
import { isLoopback, scanListeners, socketInodes, type Listener } from "./port-scan.js";
import { DEFAULT_TUNING, type ProxySpec } from "./proxy-spec.js";
import type { ManagedProxy, ProxyOrigin, ProxyRegistry } from "./registry.js";

/** How often the auto-exposer looks at the listening sockets (E2B's scanner: 1 s). */
export const SCAN_INTERVAL_MS = 1000;

type AutoState = "active" | "suppressed" | "failed";

/** The id of the forward that exposes `port`. */
export function exposeId(port: number): string {
  return `expose-${port}`;
}

/**
 * Ports whose every listener (other than the daemon's own sockets) is bound to a loopback
 * address, each with the address to forward to (an IPv4 loopback first, else ::1).
 */
export function loopbackOnlyPorts(listeners: Listener[], own: Set<number>): Map<number, string> {
  const byPort = new Map<number, Listener[]>();
  for (const l of listeners) {
    if (own.has(l.inode)) continue;
    const list = byPort.get(l.port) ?? [];
    list.push(l);
    byPort.set(l.port, list);
  }
  const out = new Map<number, string>();
  for (const [port, list] of byPort) {
    if (!list.every((l) => isLoopback(l.address))) continue;
    const v4 = list.find((l) => isIP(l.address) === 4);
    const mapped = list.find((l) => l.address.startsWith("::ffff:"));
    out.set(port, v4?.address ?? mapped?.address.slice(7) ?? "::1");
  }
  return out;
}

/**
 * Port exposure without socat: TCP forwards from an address outside loopback to services that
 * listen only on loopback. With an expose address configured, a scan every second creates a
 * forward for each new loopback-only port and removes it when the listener goes away.
 */
export class PortExposer {
  private readonly auto = new Map<number, AutoState>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private scanning: Promise<void> | undefined;

  constructor(
    private readonly registry: ProxyRegistry,
    private readonly log: Logger,
    /** Where exposed ports listen; undefined turns the auto-exposer off. */
    readonly exposeAddress: string | undefined,
  ) {}

  /** Starts the periodic scan when an expose address is configured. */
  start(): void {
    if (!this.exposeAddress || this.timer) return;
    const loop = () => {
      this.scanning = this.scan()
        .catch((err) => this.log.warn({ err: (err as Error).message }, "port scan failed"))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, SCAN_INTERVAL_MS).unref();
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.scanning;
  }

  /** Where `port` is exposed, if anywhere. */
  exposedAt(port: number): string | undefined {
    return this.registry.get(exposeId(port))?.boundAddress;
  }

  /** Exposes `port` by hand; returns the existing forward when it already listens where asked. */
  async expose(port: number, address: string | undefined, targetHost: string | undefined, origin: ProxyOrigin = "expose"): Promise<ManagedProxy> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ProxyError("invalid_argument", `port ${port} must be 1..65535`);
    const host = address || this.exposeAddress;
    if (!host) throw new ProxyError("invalid_argument", "address is required when the daemon has no --expose-address");
    if (isIP(host) === 0) throw new ProxyError("invalid_argument", `address '${host}' must be an IP address`);
    const target = targetHost || "127.0.0.1";
    if (isIP(target) === 0 && target !== "localhost") throw new ProxyError("invalid_argument", `target_host '${target}' must be an IP address or localhost`);
    const existing = this.registry.get(exposeId(port));
    if (existing) {
      if (existing.spec.local.host === host) return existing;
      throw new ProxyError("already_exists", `port ${port} is already exposed on ${existing.boundAddress}`);
    }
    const spec: ProxySpec = {
      id: exposeId(port),
      kind: "tcp",
      local: { host, port },
      remote: { host: target, port },
      target: { protocol: "http:", host: target, port, basePath: "" },
      tuning: { ...DEFAULT_TUNING },
      auth: undefined,
      tls: undefined,
    };
    return this.registry.create(spec, origin);
  }

  /** Removes the forward of `port`; the auto-exposer leaves the port alone until its listener goes. */
  async unexpose(port: number): Promise<void> {
    if (this.auto.has(port)) this.auto.set(port, "suppressed");
    await this.registry.delete(exposeId(port));
  }

  /** One pass: expose new loopback-only ports, drop forwards whose listener is gone. */
  async scan(): Promise<void> {
    const [listeners, own] = await Promise.all([scanListeners(), socketInodes("self")]);
    if (this.stopped) return;
    const wanted = loopbackOnlyPorts(listeners, own);
    for (const [port, state] of this.auto) {
      if (wanted.has(port)) {
        if (state === "active" && !this.registry.get(exposeId(port))) this.auto.set(port, "suppressed");
        continue;
      }
      this.auto.delete(port);
      const proxy = this.registry.get(exposeId(port));
      if (state === "active" && proxy?.origin === "auto-expose") {
        await this.registry.delete(exposeId(port)).catch(() => {});
        this.log.info({ port }, "listener gone, port no longer exposed");
      }
    }
    for (const [port, target] of wanted) {
      if (this.auto.has(port) || this.registry.get(exposeId(port)) || this.stopped) continue;
      try {
        const p = await this.expose(port, this.exposeAddress, target, "auto-expose");
        this.auto.set(port, "active");
        this.log.info({ port, exposedAt: p.boundAddress, target: formatHostPort(target, port) }, "loopback-only port exposed");
      } catch (err) {
        this.auto.set(port, "failed");
        this.log.warn({ port, err: (err as Error).message }, "cannot expose loopback-only port");
      }
    }
  }
}
