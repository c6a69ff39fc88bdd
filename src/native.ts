import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root: the nearest directory above this module holding native/binding.gyp. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "native", "binding.gyp"))) return dir;
    dir = dirname(dir);
  }
  throw new Error("envd-ts: cannot find the package root (native/binding.gyp)");
}

let dirOverride: string | undefined;
let buildDir: string | undefined;

/**
 * Makes every native lookup (our addon, the launcher, node-pty's pty.node) use `dir`. The
 * release bundle and single executable call it before the daemon's modules load, since they
 * run without the package tree.
 */
export function setNativeDir(dir: string): void {
  dirOverride = dir;
}

/** Where the native parts are: the override, else native/build/Release in the package. */
export function nativeDir(): string {
  if (dirOverride) return dirOverride;
  buildDir ??= join(packageRoot(), "native", "build", "Release");
  return buildDir;
}

/** Absolute path of one native part ("envd_native.node", "envd-launcher", "pty.node"). */
export function nativeFile(name: string): string {
  return join(nativeDir(), name);
}

/**
 * Loads a Node addon by absolute path. Through Node's module cache, so one file is loaded
 * once whoever asks; createRequire also works in a single executable, whose own require()
 * knows only built-in modules.
 */
export function loadAddon<T>(path: string): T {
  return createRequire(path)(path) as T;
}

/** The functions of our N-API addon (native/src/*.c). */
export interface NativeAddon {
  listXattr(path: string): string[];
  getXattr(path: string, name: string): Buffer;
  setXattr(path: string, name: string, value: Buffer): void;
  removeXattr(path: string, name: string): void;
  /** Overwrites the token arguments equal to `secret` and the value of `variable` with '*' where /proc/<pid>/cmdline and environ are read from. */
  scrubProcessStrings(secret: string, variable: string): number;
  flistXattr(fd: number): string[];
  fgetXattr(fd: number, name: string): Buffer;
  fsetXattr(fd: number, name: string, value: Buffer): void;
  fremoveXattr(fd: number, name: string): void;
  [name: string]: unknown;
}

let addon: NativeAddon | undefined;

/** Loads envd_native.node once. */
export function native(): NativeAddon {
  addon ??= loadAddon<NativeAddon>(nativeFile("envd_native.node"));
  return addon;
}

/** Path of the envd-launcher executable that starts every child process. */
export function launcherPath(): string {
  return nativeFile("envd-launcher");
}
