import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ListeningPortSchema, type ListListeningPortsRequest, type ListListeningPortsResponseSchema, type ListeningPort } from "../../gen/envdts/v1/proxy_pb.js";
import { loopbackOnlyPorts } from "../port-exposure.js";
import { scanListeners, socketInodes, socketOwners } from "../port-scan.js";
import type { ProxyServiceDeps } from "./deps.js";

/**
 * Proxy.ListListeningPorts: the LISTEN sockets of /proc/net/tcp{,6}, sorted by port, with
 * their owners where readable. loopback_only ignores the daemon's own forwards, so a port
 * stays "loopback only" after it has been exposed.
 */
export async function listListeningPorts(deps: ProxyServiceDeps, req: ListListeningPortsRequest): Promise<MessageInitShape<typeof ListListeningPortsResponseSchema>> {
  const [listeners, own] = await Promise.all([scanListeners(), socketInodes("self")]);
  const loopbackOnly = loopbackOnlyPorts(listeners, own);
  const owners = await socketOwners(new Set(listeners.map((l) => l.inode)));
  const ports: ListeningPort[] = [];
  for (const l of listeners.sort((a, b) => a.port - b.port || a.family.localeCompare(b.family) || a.address.localeCompare(b.address))) {
    const isLoopbackOnly = !own.has(l.inode) && loopbackOnly.has(l.port);
    if (req.loopbackOnly && !isLoopbackOnly) continue;
    const owner = owners.get(l.inode);
    const entry = create(ListeningPortSchema, {
      address: l.address,
      port: l.port,
      family: l.family,
      pid: owner?.pid ?? 0,
      processName: owner?.name ?? "",
      loopbackOnly: isLoopbackOnly,
      exposedAt: isLoopbackOnly ? (deps.exposer.exposedAt(l.port) ?? "") : "",
    });
    ports.push(entry);
  }
  return { ports };
}
