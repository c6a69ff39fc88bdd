import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { DialError, dial } from "./dial.js";
import type { ForwardContext } from "./forward-request.js";
import { requestHead, upstreamHeaders } from "./headers.js";
import { relay } from "./relay.js";

/** Answers a raw (taken-over) HTTP/1.1 socket with a short plain-text response and closes it. */
export function rawAnswer(socket: Duplex, status: number, reason: string, text: string, headers: Record<string, string> = {}): void {
  const body = text.endsWith("\n") ? text : text + "\n";
  let head = `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  if (socket.writable) socket.end(head + "\r\n" + body);
  else socket.destroy();
}

/**
 * Forwards an upgrade (WebSocket) request: connects to the target (timeout, retries), sends
 * the handshake with forwarding headers, then relays raw bytes both ways. Frames are not
 * parsed: once the handshake is through, the proxy is a byte pipe, so any subprotocol,
 * extension or frame size passes unchanged.
 */
export function forwardUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, path: string, fc: ForwardContext): void {
  const { target, tuning } = fc;
  const left = new AbortController();
  const onEarlyError = () => left.abort();
  socket.on("error", onEarlyError);
  socket.once("close", () => left.abort());
  dial({
    host: target.host,
    port: target.port,
    connectTimeoutMs: tuning.connectTimeoutMs,
    maxRetries: tuning.maxRetries,
    retryDelayMs: tuning.retryDelayMs,
    bufferSize: tuning.bufferSize,
    tls: target.protocol === "https:" ? { servername: isIP(target.host) ? undefined : target.host, rejectUnauthorized: !tuning.insecureSkipVerify } : undefined,
    signal: left.signal,
  }).then(
    (upstream) => {
      socket.off("error", onEarlyError);
      if (socket.destroyed) {
        upstream.destroy();
        return;
      }
      upstream.write(requestHead(req.method ?? "GET", path, upstreamHeaders(req, target, fc.headers, true)));
      if (head.length) upstream.write(head);
      relay(socket, upstream, { readTimeoutMs: tuning.readTimeoutMs, writeTimeoutMs: tuning.writeTimeoutMs, onError: fc.onError });
    },
    (err: Error) => {
      if (left.signal.aborted) return;
      fc.onError(err);
      const timedOut = err instanceof DialError && err.timedOut;
      rawAnswer(socket, timedOut ? 504 : 502, timedOut ? "Gateway Timeout" : "Bad Gateway", `proxy: ${err.message}`);
    },
  );
}
