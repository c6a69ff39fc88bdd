import { closeSync, existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (where package.json names envd-ts), found from this file so dist/ and src/ both work. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "envd-ts") return dir;
      } catch {
        /* not ours; keep walking */
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("envd-ts package root not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const ROOT = packageRoot();

/** The helper every child is started through (native/src/launcher.c). */
export const LAUNCHER_PATH = join(ROOT, "native/build/Release/envd-launcher");

/** The process part of the envd_native addon (native/src/process.c). */
export interface ProcessAddon {
  /** A real pipe (not a socketpair), both ends close-on-exec: [read, write]. */
  processPipe(): [number, number];
  processSetCloexec(fd: number, on: boolean): void;
  /** Bytes waiting to be read on fd (FIONREAD); -1 on error. */
  processReadable(fd: number): number;
  /** malloc_trim(0): gives freed heap pages back to the kernel. */
  processTrimMemory(): void;
}

let loaded: ProcessAddon | undefined;

/** Loads the addon once, on first use. */
export function processAddon(): ProcessAddon {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    loaded = require(join(ROOT, "native/build/Release/envd_native.node")) as ProcessAddon;
    if (typeof loaded.processPipe !== "function") throw new Error("envd_native addon lacks processPipe: run `npm run build:native`");
  }
  return loaded;
}

/** Closes a descriptor we own, ignoring one that is already closed. */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}
