import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as sea from "node:sea";
import { fileURLToPath } from "node:url";
import { setNativeDir } from "../native.js";
import { setTerminalAssetReader } from "../terminal/assets.js";
import { markBundled } from "./bundled.js";
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

/** The web terminal's page assets: SEA assets, or terminal-assets/ beside the bundle. */
function setUpTerminalAssets(): void {
  if (sea.isSea()) {
    setTerminalAssetReader((name) => sea.getAsset(name, "utf8"));
    return;
  }
  const dir = join(dirname(fileURLToPath(import.meta.url)), "terminal-assets");
  setTerminalAssetReader((name) => readFileSync(join(dir, name), "utf8"));
}

markBundled();
setUpNativeDir();
setUpTerminalAssets();
