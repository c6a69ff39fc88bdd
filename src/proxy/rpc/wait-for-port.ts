import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { WaitForPortRequest, WaitForPortResponseSchema } from "../../gen/envdts/v1/proxy_pb.js";
import { parseHostPort } from "../address.js";
import { ProxyError } from "../errors.js";
import { waitForPort as waitUntilAccepting } from "../wait-for-port.js";

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_MS = 3_600_000;

/** Proxy.WaitForPort: resolves at the first accepted connection, deadline_exceeded after timeout_ms. */
export async function waitForPort(req: WaitForPortRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof WaitForPortResponseSchema>> {
  const host = req.host || "127.0.0.1";
  if (req.port < 1 || req.port > 65535) throw new ProxyError("invalid_argument", `port ${req.port} must be 1..65535`);
  parseHostPort(`${host.includes(":") ? `[${host}]` : host}:${req.port}`, "host", { local: false });
  const timeoutMs = Math.min(req.timeoutMs || DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS);
  const intervalMs = Math.max(req.intervalMs || 100, 10);
  const r = await waitUntilAccepting(host, req.port, timeoutMs, intervalMs, hctx.signal);
  return { elapsedMs: r.elapsedMs, attempts: r.attempts };
}
