import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The native parts a release carries: our addon, the process launcher and node-pty's binding. */
export const NATIVE_FILES = ["envd_native.node", "envd-launcher", "pty.node"] as const;
/** The SEA asset holding {version, files: {name: sha256}}, written by scripts/build-release.mjs. */
export const MANIFEST_ASSET = "native-manifest.json";

/** What the build recorded about the embedded native files. */
export interface NativeManifest {
  version: string;
  files: Record<string, string>;
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A directory only we can write: ours, not a symlink, no group or other access. */
function isPrivateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid!() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

function holdsManifestFiles(dir: string, manifest: NativeManifest): boolean {
  try {
    return Object.entries(manifest.files).every(([name, hash]) => {
      const p = join(dir, name);
      const st = lstatSync(p);
      return st.isFile() && st.uid === process.getuid!() && sha256(readFileSync(p)) === hash;
    });
  } catch {
    return false;
  }
}

/**
 * Writes the embedded native files to a private cache directory and returns it:
 * `$XDG_RUNTIME_DIR` (else the temp dir) `/envd-ts-<version>-<hash>/`, mode 0700. A directory
 * left by an earlier start is reused only when it is ours, private, and every file still has
 * the hash the build recorded; one that is not ours is never touched (a fresh private
 * directory is made instead). Files are written to a temporary directory first and renamed
 * into place, so a crash or a second daemon starting at once never sees half a file.
 */
export function extractNativeFiles(manifest: NativeManifest, read: (name: string) => Uint8Array, base = process.env.XDG_RUNTIME_DIR || tmpdir()): string {
  const tag = sha256(Buffer.from(JSON.stringify(manifest))).slice(0, 16);
  const dir = join(base, `envd-ts-${manifest.version}-${tag}`);
  if (isPrivateDir(dir) && holdsManifestFiles(dir, manifest)) return dir;

  mkdirSync(base, { recursive: true });
  const staging = mkdtempSync(join(base, `.envd-ts-${tag}-`));
  for (const name of Object.keys(manifest.files)) {
    const data = read(name);
    if (sha256(data) !== manifest.files[name]) throw new Error(`embedded ${name} does not match its recorded hash: the executable is damaged`);
    const p = join(staging, name);
    writeFileSync(p, data, { mode: 0o700 });
    chmodSync(p, 0o700);
  }
  chmodSync(staging, 0o700);
  try {
    // A stale directory of ours (damaged, or from a crash) is replaced.
    if (isPrivateDir(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
    return dir;
  } catch {
    // Someone else's directory sits at that name, or another daemon won the race.
    if (isPrivateDir(dir) && holdsManifestFiles(dir, manifest)) {
      rmSync(staging, { recursive: true, force: true });
      return dir;
    }
    return staging;
  }
}
