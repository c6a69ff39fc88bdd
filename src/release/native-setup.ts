import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as sea from "node:sea";
import { setNativeDir } from "../native.js";
import { extractNativeFiles, MANIFEST_ASSET, type NativeManifest } from "./native-assets.js";

/**
 * Runs before the daemon's modules (bundle-entry imports it first): points the native
 * lookups at the files a release carries. In the single executable they are SEA assets,
 * extracted once to a private cache directory; the plain bundle (envd.cjs) finds them in
 * native/ beside itself.
 */
function setUpNativeDir(): void {
  if (sea.isSea()) {
    const manifest = JSON.parse(sea.getAsset(MANIFEST_ASSET, "utf8")) as NativeManifest;
    setNativeDir(extractNativeFiles(manifest, (name) => new Uint8Array(sea.getAsset(name))));
    return;
  }
  setNativeDir(join(dirname(fileURLToPath(import.meta.url)), "native"));
}

setUpNativeDir();
