// Shared pieces of the proxy tests: a Proxy service client, listeners on 127.0.0.1, and a
// deterministic byte source that is hashed as it is generated (never held in memory).
import { createHash, randomBytes, type Hash } from "node:crypto";
import { once } from "node:events";
import type { Server as HttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { Readable } from "node:stream";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Proxy } from "../../src/gen/envdts/v1/proxy_pb.js";

/** A Proxy service client over Connect JSON, HTTP/1.1, with the daemon's token if any. */
export function proxyClient(baseUrl: string, token?: string): Client<typeof Proxy> {
  return createClient(
    Proxy,
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      interceptors: token ? [(next) => (req) => (req.header.set("x-access-token", token), next(req))] : [],
    }),
  );
}

/** Listens on 127.0.0.1 (or `host`) on a free port and returns the port. */
export async function listenLocal(server: Server | HttpServer, host = "127.0.0.1", port = 0): Promise<number> {
  server.listen(port, host);
  await once(server, "listening");
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("no address");
  return addr.port;
}

/** A port that was free a moment ago. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const s = createServer();
  const port = await listenLocal(s, host);
  await new Promise((r) => s.close(r));
  return port;
}

/** Closes a server and every socket it still has. */
export async function closeServer(server: Server | HttpServer, sockets?: Set<Socket>): Promise<void> {
  for (const s of sockets ?? []) s.destroy();
  if ("closeAllConnections" in server) server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

/**
 * `total` bytes in 1 MiB chunks, each a random block stamped with its index so no two chunks
 * are alike; `digest` holds the SHA-256 of everything produced once the stream has ended.
 */
export function generatedSource(total: number): { stream: Readable; hash: Hash } {
  const block = randomBytes(1 << 20);
  const hash = createHash("sha256");
  let sent = 0;
  let index = 0;
  const stream = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, total - sent);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 8) chunk.writeBigUInt64LE(BigInt(index++));
      sent += n;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, hash };
}

/** Waits until `check` returns a truthy value (polling), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
