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

const ROOT = packageRoot();
const RELEASE = join(ROOT, "native", "build", "Release");

/** The functions of our N-API addon (native/src/*.c). */
export interface NativeAddon {
  listXattr(path: string): string[];
  getXattr(path: string, name: string): Buffer;
  setXattr(path: string, name: string, value: Buffer): void;
  removeXattr(path: string, name: string): void;
  [name: string]: unknown;
}

let addon: NativeAddon | undefined;

/** Loads native/build/Release/envd_native.node once. */
export function native(): NativeAddon {
  addon ??= createRequire(import.meta.url)(join(RELEASE, "envd_native.node")) as NativeAddon;
  return addon;
}

/** Path of the envd-launcher executable that starts every child process. */
export const LAUNCHER_PATH = join(RELEASE, "envd-launcher");
