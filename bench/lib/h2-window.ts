import { createRequire, syncBuiltinESMExports } from "node:module";
import type * as Http2 from "node:http2";

/** Per-stream receive window the bench's HTTP/2 clients announce. */
export const H2_STREAM_WINDOW = 8 * 1024 * 1024;
/** Connection receive window. */
export const H2_CONNECTION_WINDOW = 32 * 1024 * 1024;

let done = false;

/**
 * Makes every HTTP/2 client session of this process announce large receive
 * windows, as a tuned client does (grpc-go's BDP estimator grows to 16 MiB).
 * With Node's 64 KiB defaults a stream stalls waiting for WINDOW_UPDATEs and
 * measures the client's round trips instead of the server. Applies to
 * connect-node's session manager too (it calls http2.connect), hence the patch.
 */
export function useLargeH2Windows(): void {
  if (done) return;
  done = true;
  const http2 = createRequire(import.meta.url)("node:http2") as typeof Http2;
  const original = http2.connect;
  const patched = ((authority: string | URL, options?: Http2.ClientSessionOptions | ((...a: unknown[]) => void), listener?: (...a: unknown[]) => void) => {
    const opts = typeof options === "object" && options ? options : {};
    const cb = typeof options === "function" ? options : listener;
    const session = original(authority, { ...opts, settings: { initialWindowSize: H2_STREAM_WINDOW, ...opts.settings } }, cb as never);
    session.once("connect", () => {
      try {
        session.setLocalWindowSize(H2_CONNECTION_WINDOW);
      } catch {
        /* closed already */
      }
    });
    return session;
  }) as typeof http2.connect;
  http2.connect = patched;
  syncBuiltinESMExports();
}
