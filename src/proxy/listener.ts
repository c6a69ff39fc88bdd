import type { Server } from "node:net";
import type { Logger } from "../log.js";
import { formatHostPort, type HostPort } from "./address.js";
import type { ProxyCounters } from "./counters.js";
import { listenError } from "./errors.js";
import type { ProxySpec } from "./proxy-spec.js";

/** A started proxy listener, whatever its kind. */
export interface ProxyListener {
  /** The address actually bound ("127.0.0.1:40123"). */
  boundAddress: string;
  /** Stops accepting, closes open connections and sessions. */
  close(): Promise<void>;
}

/** What every listener kind is started with. */
export interface ListenerContext {
  spec: ProxySpec;
  counters: ProxyCounters;
  log: Logger;
}

/** Listens on `local`, mapping bind failures to ProxyErrors that name the address. */
export function listenOn(server: Server, local: HostPort): Promise<string> {
  const wanted = formatHostPort(local.host, local.port);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, wanted));
    server.once("error", onError);
    server.listen({ host: local.host, port: local.port, exclusive: true }, () => {
      server.off("error", onError);
      const addr = server.address();
      resolve(typeof addr === "object" && addr ? formatHostPort(addr.address, addr.port) : wanted);
    });
  });
}

/** Closes a server and resolves once it has stopped (open connections must be destroyed separately). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
