import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import type { Logger } from "../log.js";

/** Ceiling of the automatic connection cap: memory for idle sockets, whatever the fd limit. */
const AUTO_MAX_CONNECTIONS = 50_000;
/** How often idle unauthenticated connections are looked for. */
const SWEEP_EVERY_MS = 1000;

interface ConnState {
  trusted: boolean;
  /** Requests (HTTP/1.1) or streams (h2c) in flight, plus one for a taken-over (upgraded) socket. */
  busy: number;
}

/** The soft RLIMIT_NOFILE of this process, from /proc/self/limits; undefined when unlimited or unknown. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m && m[1] !== "unlimited" ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The automatic cap: three quarters of the open-file limit (Node raised the soft limit to the
 * hard one at start), leaving the rest for commands' pipes, files and watchers.
 */
export function autoMaxConnections(): number {
  const limit = openFileLimit();
  if (limit === undefined) return AUTO_MAX_CONNECTIONS;
  return Math.max(16, Math.min(AUTO_MAX_CONNECTIONS, Math.floor((limit * 3) / 4)));
}

/**
 * Keeps idle connections from exhausting the daemon's descriptors. A connection is trusted once
 * it sent a request that passed the access-token check (every request, when no token is set).
 * Until then it may stay idle, or dribble its headers, for `untrustedIdleMs` from its last
 * response (or from its accept); trusted connections keep the servers' own idle timeouts. At the
 * cap, a new connection closes the one idle longest, unauthenticated ones first; with none idle,
 * the new connection is closed.
 */
export class ConnectionGuard {
  private readonly states = new Map<Socket, ConnState>();
  /** Idle connections in the order they became idle (a Map keeps insertion order); value: since when. */
  private readonly idleUntrusted = new Map<Socket, number>();
  private readonly idleTrusted = new Map<Socket, number>();
  private readonly sweeper: NodeJS.Timeout;
  /** Connections closed to make room, and new ones refused, since start. */
  evicted = 0;
  refused = 0;

  constructor(
    readonly maxConnections: number,
    private readonly untrustedIdleMs: number,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(SWEEP_EVERY_MS, untrustedIdleMs));
    this.sweeper.unref();
  }

  get size(): number {
    return this.states.size;
  }

  /** A new connection: admitted (true), or destroyed for want of room (false). */
  admit(socket: Socket): boolean {
    if (this.states.size >= this.maxConnections) {
      const victim = first(this.idleUntrusted) ?? first(this.idleTrusted);
      if (!victim) {
        this.refused++;
        if (this.refused === 1 || this.refused % 1000 === 0) this.log.warn({ max: this.maxConnections, refused: this.refused }, "connection cap reached with every connection busy; refusing new ones");
        socket.destroy();
        return false;
      }
      this.evicted++;
      if (this.evicted === 1 || this.evicted % 1000 === 0) this.log.warn({ max: this.maxConnections, evicted: this.evicted }, "connection cap reached; closing the longest-idle connections");
      this.forget(victim);
      victim.destroy();
    }
    this.states.set(socket, { trusted: false, busy: 0 });
    this.idleUntrusted.set(socket, Date.now());
    socket.once("close", () => this.forget(socket));
    return true;
  }

  requestStarted(socket: Socket | undefined): void {
    const st = socket && this.states.get(socket);
    if (!st) return;
    if (st.busy++ === 0) (st.trusted ? this.idleTrusted : this.idleUntrusted).delete(socket);
  }

  requestEnded(socket: Socket | undefined): void {
    const st = socket && this.states.get(socket);
    if (!st || st.busy === 0) return;
    if (--st.busy === 0) (st.trusted ? this.idleTrusted : this.idleUntrusted).set(socket, Date.now());
  }

  /** The connection sent a request that passed the access-token check. */
  trust(socket: Socket | undefined): void {
    const st = socket && this.states.get(socket);
    if (!st || st.trusted) return;
    st.trusted = true;
    const since = this.idleUntrusted.get(socket);
    if (since !== undefined) {
      this.idleUntrusted.delete(socket);
      this.idleTrusted.set(socket, since);
    }
  }

  /** The connection was taken over (WebSocket, gateway upgrade): never idle from here on. */
  hold(socket: Socket): void {
    this.requestStarted(socket);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private forget(socket: Socket): void {
    this.states.delete(socket);
    this.idleUntrusted.delete(socket);
    this.idleTrusted.delete(socket);
  }

  private sweep(): void {
    const cutoff = Date.now() - this.untrustedIdleMs;
    for (const [socket, since] of this.idleUntrusted) {
      if (since > cutoff) break;
      this.forget(socket);
      socket.destroy();
    }
  }
}

function first(map: Map<Socket, number>): Socket | undefined {
  for (const key of map.keys()) return key;
  return undefined;
}
