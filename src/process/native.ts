import { closeSync } from "node:fs";
import { launcherPath, loadAddon, nativeFile } from "../native.js";

/** The helper every child is started through (native/src/launcher.c); see setNativeDir for releases. */
export const LAUNCHER_PATH = launcherPath();

/** The process part of the envd_native addon (native/src/process.c). */
export interface ProcessAddon {
  /** A real pipe (not a socketpair), both ends close-on-exec: [read, write]. */
  processPipe(): [number, number];
  processSetCloexec(fd: number, on: boolean): void;
  /** Bytes waiting to be read on fd (FIONREAD); -1 on error. */
  processReadable(fd: number): number;
  /** malloc_trim(0): gives freed heap pages back to the kernel. */
  processTrimMemory(): void;
  /** posix_spawn of `file` with child fd i = fds[i] (-1: /dev/null), default signals, in `cwd`; the pid (native/src/spawn.c). */
  processSpawn(file: string, argv: string[], envp: string[], fds: number[], cwd: string): number;
}

let loaded: ProcessAddon | undefined;

/** Loads the addon once, on first use. */
export function processAddon(): ProcessAddon {
  if (!loaded) {
    loaded = loadAddon<ProcessAddon>(nativeFile("envd_native.node"));
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
