import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";

/** Headers that ask for a protocol switch; dropped when a request is served without one. */
const UPGRADE_HEADERS = new Set(["upgrade", "http2-settings"]);

/**
 * Serves an HTTP/1.1 upgrade request as a plain request, as if no 'upgrade' listener existed
 * (for example curl's `Upgrade: h2c` on a Connect call). Node has already detached its parser
 * from the socket, so the request head is rebuilt without the upgrade headers, put back in
 * front of the unread bytes, and the socket is handed to the server again.
 */
export function serveWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    let value = req.rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (UPGRADE_HEADERS.has(lower)) continue;
    if (lower === "connection") {
      value = value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t && !UPGRADE_HEADERS.has(t.toLowerCase()))
        .join(", ");
      if (!value) continue;
    }
    raw += `${name}: ${value}\r\n`;
  }
  socket.unshift(Buffer.concat([Buffer.from(raw + "\r\n", "latin1"), head]));
  server.emit("connection", socket);
}
