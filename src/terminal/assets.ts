import { readFileSync } from "node:fs";

/** The page's script (xterm.js, its fit add-on and our client, bundled) and stylesheet. */
export interface TerminalAssets {
  js: string;
  css: string;
}

export type TerminalAssetName = "terminal.js" | "terminal.css";

/** Reads one asset: from dist/terminal-assets/ unless the release set its own reader. */
let readAsset = (name: TerminalAssetName): string => readFileSync(new URL(`../terminal-assets/${name}`, import.meta.url), "utf8");
let cached: TerminalAssets | undefined;

/**
 * Makes the assets come from where a release keeps them: SEA assets in the single executable,
 * terminal-assets/ beside envd.cjs. They stay out of the bundle so that a daemon whose terminal
 * is never opened does not hold ~350 KiB of page script in its heap.
 */
export function setTerminalAssetReader(read: (name: TerminalAssetName) => string): void {
  readAsset = read;
  cached = undefined;
}

/** The assets, read at the first request for the page (scripts/build-terminal.mjs builds them). */
export function terminalAssets(): TerminalAssets {
  if (!cached) {
    try {
      cached = { js: readAsset("terminal.js"), css: readAsset("terminal.css") };
    } catch (err) {
      throw new Error(`web terminal assets are missing (${(err as Error).message}): run node scripts/build-terminal.mjs`);
    }
  }
  return cached;
}
