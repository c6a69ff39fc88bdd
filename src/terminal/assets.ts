import { readFileSync } from "node:fs";

/** The page's script (xterm.js, its fit add-on and our client, bundled) and stylesheet. */
export interface TerminalAssets {
  js: string;
  css: string;
}

let cached: TerminalAssets | undefined;

/**
 * Reads what scripts/build-terminal.mjs wrote to dist/terminal-assets/. The release bundle
 * replaces this module with one that holds the same two files as strings, so nothing is
 * read from disk or fetched from the network at run time.
 */
export function terminalAssets(): TerminalAssets {
  if (!cached) {
    const dir = new URL("../terminal-assets/", import.meta.url);
    try {
      cached = { js: readFileSync(new URL("terminal.js", dir), "utf8"), css: readFileSync(new URL("terminal.css", dir), "utf8") };
    } catch (err) {
      throw new Error(`web terminal assets are missing (${(err as Error).message}): run node scripts/build-terminal.mjs`);
    }
  }
  return cached;
}
