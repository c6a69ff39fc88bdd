import type { Logger } from "../log.js";
import { loadBusboy } from "../files-http/multipart-upload.js";
import { loadMimeTable } from "../files-http/content-type.js";
import { loadNodePty } from "../process/spawn-pty.js";

/**
 * Loads the packages the daemon otherwise loads on first use (node-pty, busboy, mime-types),
 * once it is listening, so they stay off the start-up path but are in memory before load can
 * exhaust the descriptors. Node remembers a module that failed to load for the life of the
 * process, including its package.json read: one EMFILE at the first PTY or multipart upload
 * would break every later one until restart. Costs ~7 MiB and ~25 ms, off the critical path.
 */
export function warmUpLazyModules(log: Logger): void {
  setImmediate(() => {
    for (const [name, load] of [["node-pty", loadNodePty], ["busboy", loadBusboy], ["mime-types", loadMimeTable]] as const) {
      (load as () => Promise<unknown>)().catch((err: Error) => log.warn({ err: err.message, module: name }, "cannot load a module; features that need it will fail"));
    }
  });
}
