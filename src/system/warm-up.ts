import type { Logger } from "../log.js";
import { loadBusboy } from "../files-http/multipart-upload.js";
import { loadMimeTable } from "../files-http/content-type.js";
import { loadNodePty } from "../process/spawn-pty.js";
import { isBundled } from "../release/bundled.js";

/**
 * Loads what the daemon otherwise loads on first use (node-pty, busboy, mime-types, the
 * extension RPC services), once it is listening, so it stays off the start-up path but is in
 * memory before load can exhaust the descriptors. Node remembers a module that failed to load
 * for the life of the process, including its package.json read: one EMFILE at the first PTY or
 * multipart upload would break every later one until restart.
 *
 * From the release bundle only node-pty is loaded early (its pty.node is a file): the other
 * modules are already in memory as code and need no descriptor to evaluate, so a daemon that
 * never uses them does not hold them (with the lazy extension services: idle RSS 59.0 → 57.1 MiB).
 */
export function warmUpLazyModules(log: Logger, loadLazyServices: () => Promise<void>): void {
  const loads: Array<[string, () => Promise<unknown>]> = [["node-pty", loadNodePty]];
  if (!isBundled()) loads.push(["busboy", loadBusboy], ["mime-types", loadMimeTable], ["extension services", loadLazyServices]);
  setImmediate(() => {
    for (const [name, load] of loads) {
      load().catch((err: Error) => log.warn({ err: err.message, module: name }, "cannot load a module; features that need it will fail"));
    }
  });
}
