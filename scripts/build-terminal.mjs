#!/usr/bin/env node
// Builds the web terminal's page assets: xterm.js, its fit add-on and src/terminal/page/client.ts
// bundled into one script, and xterm's stylesheet with ours, written to dist/terminal-assets/
// (served by dist/) and returned to scripts/build-release.mjs (which ships them beside the
// bundle and as SEA assets).
// Typechecks the page code first with its own tsconfig (DOM, not Node).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PAGE = join(ROOT, "src/terminal/page");

/** Builds {js, css}; writes them to dist/terminal-assets/ unless `write` is false. */
export async function buildTerminalAssets({ write = true } = {}) {
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(PAGE, "tsconfig.json")], { stdio: "inherit" });
  const result = await build({
    entryPoints: [join(PAGE, "client.ts")],
    bundle: true,
    platform: "browser",
    format: "iife",
    target: "es2020",
    minify: true,
    legalComments: "none",
    write: false,
    logLevel: "warning",
  });
  const js = result.outputFiles[0].text;
  const css = readFileSync(join(ROOT, "node_modules/@xterm/xterm/css/xterm.css"), "utf8") + "\n" + readFileSync(join(PAGE, "terminal.css"), "utf8");
  if (write) {
    const out = join(ROOT, "dist/terminal-assets");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "terminal.js"), js);
    writeFileSync(join(out, "terminal.css"), css);
  }
  return { js, css };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { js, css } = await buildTerminalAssets();
  process.stdout.write(`dist/terminal-assets: terminal.js ${(js.length / 1024).toFixed(0)} KiB, terminal.css ${(css.length / 1024).toFixed(0)} KiB\n`);
}
