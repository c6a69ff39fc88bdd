import type { Socket } from "node:net";

/** A point-in-time copy of a proxy's counters. */
export interface StatsSnapshot {
  activeConnections: number;
  totalConnections: number;
  bytesFromClients: number;
  bytesToClients: number;
  errors: number;
  requests: number;
}

/**
 * One proxy's counters and open client sockets. Byte counts come from the sockets'
 * own bytesRead/bytesWritten, so the data path pays nothing per chunk.
 */
export class ProxyCounters {
  private readonly live = new Set<Socket>();
  private closedIn = 0;
  private closedOut = 0;
  total = 0;
  errors = 0;
  requests = 0;
  /** Sessions that are not sockets (UDP) report their own numbers. */
  sessions = 0;
  datagramBytesIn = 0;
  datagramBytesOut = 0;

  /** Counts a client connection and remembers it so the proxy can close it on delete. */
  track(socket: Socket): void {
    this.total++;
    this.live.add(socket);
    socket.once("close", () => {
      this.live.delete(socket);
      this.closedIn += socket.bytesRead;
      this.closedOut += socket.bytesWritten;
    });
  }

  /** Closes every tracked client connection (the proxy is going away). */
  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }

  snapshot(): StatsSnapshot {
    let inBytes = this.closedIn + this.datagramBytesIn;
    let outBytes = this.closedOut + this.datagramBytesOut;
    for (const s of this.live) {
      inBytes += s.bytesRead;
      outBytes += s.bytesWritten;
    }
    return {
      activeConnections: this.live.size + this.sessions,
      totalConnections: this.total,
      bytesFromClients: inBytes,
      bytesToClients: outBytes,
      errors: this.errors,
      requests: this.requests,
    };
  }
}
