import { createServer, type Socket } from "node:net";
import { dial } from "./dial.js";
import { closeServer, listenOn, type ListenerContext, type ProxyListener } from "./listener.js";
import { relay } from "./relay.js";

/**
 * A TCP forward: every accepted connection is paused until the remote connection is up
 * (with connect timeout and retries), then both sockets are relayed with half-close and backpressure.
 */
export async function startTcpProxy({ spec, counters, log }: ListenerContext): Promise<ProxyListener> {
  const t = spec.tuning;
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: t.bufferSize }, (client: Socket) => {
    counters.track(client);
    const left = new AbortController();
    const onEarlyError = () => left.abort();
    client.on("error", onEarlyError);
    client.once("close", () => left.abort());
    dial({ host: spec.remote.host, port: spec.remote.port, connectTimeoutMs: t.connectTimeoutMs, maxRetries: t.maxRetries, retryDelayMs: t.retryDelayMs, bufferSize: t.bufferSize, signal: left.signal }).then(
      (upstream) => {
        client.off("error", onEarlyError);
        if (client.destroyed) {
          upstream.destroy();
          return;
        }
        relay(client, upstream, {
          readTimeoutMs: t.readTimeoutMs,
          writeTimeoutMs: t.writeTimeoutMs,
          onError: (err) => {
            counters.errors++;
            log.debug({ proxy: spec.id, err: err.message }, "tcp proxy connection failed");
          },
        });
        client.resume();
      },
      (err: Error) => {
        if (left.signal.aborted) return;
        counters.errors++;
        log.warn({ proxy: spec.id, err: err.message }, "tcp proxy cannot reach the remote");
        client.destroy();
      },
    );
  });
  server.on("error", (err) => log.error({ proxy: spec.id, err: err.message }, "tcp proxy listener failed"));
  const boundAddress = await listenOn(server, spec.local);
  return {
    boundAddress,
    async close() {
      const closed = closeServer(server);
      counters.destroyAll();
      await closed;
    },
  };
}
