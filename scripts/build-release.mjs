#!/usr/bin/env node
// Builds the release: release/envd.cjs (one bundled file; native parts in release/native/ and
// the web terminal's page in release/terminal-assets/), release/envd (a Node single-executable
// application with both embedded as SEA assets) and release/envd-ts-<version>-linux-<arch>.tar.gz
// holding all of it.
//
//   node scripts/build-release.mjs            everything
//   node scripts/build-release.mjs --bundle   only envd.cjs, native/ and terminal-assets/ (seconds; no SEA)
//
// Needs the native build (npm run build:native) and node-pty's pty.node. The SEA is made
// from the Node binary running this script, so build with the Node the release targets.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { arch } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildTerminalAssets } from "./build-terminal.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "release");
const VERSION = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const ARCH = { x64: "x64", arm64: "arm64" }[arch()] ?? arch();
const NAME = `envd-ts-${VERSION}-linux-${ARCH}`;
/** The fuse string Node's SEA support looks for (from Node's documentation). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const NATIVE_SOURCES = {
  "envd_native.node": join(ROOT, "native/build/Release/envd_native.node"),
  "envd-launcher": join(ROOT, "native/build/Release/envd-launcher"),
  "pty.node": join(ROOT, "node_modules/node-pty/build/Release/pty.node"),
};

const TERMINAL_ASSETS = "terminal-assets";

const bundleOnly = process.argv.includes("--bundle");

async function step(what, fn) {
  const t0 = Date.now();
  const r = await fn();
  process.stdout.write(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  return r;
}

/**
 * node-pty finds pty.node relative to its own files; in the bundle there are none. Its loader
 * is replaced by one that asks src/native.ts, which the entry point pointed at the release's
 * native directory, and loads through createRequire (a SEA's own require knows only built-ins).
 */
const nodePtyLoader = {
  name: "node-pty-native-loader",
  setup(b) {
    b.onLoad({ filter: /node-pty[\\/]lib[\\/]utils\.js$/ }, () => ({
      loader: "js",
      contents: `
        "use strict";
        const { createRequire } = require("node:module");
        const { dirname } = require("node:path");
        const { nativeFile } = require(${JSON.stringify(join(ROOT, "src/native.ts"))});
        exports.assign = function assign(target, ...sources) {
          for (const source of sources) for (const key of Object.keys(source)) target[key] = source[key];
          return target;
        };
        exports.loadNativeModule = function loadNativeModule(name) {
          const file = nativeFile(name + ".node");
          return { dir: dirname(file) + "/", module: createRequire(file)(file) };
        };
      `,
    }));
  },
};

/**
 * ws tries its optional native speed-ups (bufferutil, utf-8-validate) and falls back to
 * JavaScript when require() throws. Left external, a single executable would print a warning
 * for each attempt; bundled as modules that throw, the fallback is silent.
 */
const absentOptionalModules = {
  name: "absent-optional-modules",
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: "absent" }));
    b.onLoad({ filter: /.*/, namespace: "absent" }, (args) => ({ loader: "js", contents: `throw new Error(${JSON.stringify(`${args.path} is not part of the release`)});` }));
  },
};

/** The web terminal's page assets, beside the bundle (and SEA assets in the executable): read when the page is first opened. */
async function terminalAssetFiles() {
  const { js, css } = await buildTerminalAssets({ write: false });
  mkdirSync(join(OUT, TERMINAL_ASSETS), { recursive: true });
  writeFileSync(join(OUT, TERMINAL_ASSETS, "terminal.js"), js);
  writeFileSync(join(OUT, TERMINAL_ASSETS, "terminal.css"), css);
}

async function bundle() {
  const result = await build({
    entryPoints: [join(ROOT, "src/release/bundle-entry.ts")],
    outfile: join(OUT, "envd.cjs"),
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // import.meta.url has no CJS equivalent; the banner supplies the bundle's own URL.
    define: { "import.meta.url": "__envd_bundle_url" },
    banner: { js: `"use strict";\nvar __envd_bundle_url = require("node:url").pathToFileURL(__filename).href;` },
    minify: true,
    keepNames: false,
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
    plugins: [nodePtyLoader, absentOptionalModules],
  });
  const inputs = Object.keys(result.metafile.inputs).filter((p) => p.includes("node_modules"));
  if (inputs.some((p) => /node_modules[\\/](e2b|@grpc|tsx|typescript)[\\/]/.test(p))) throw new Error("a dev-only package ended up in the bundle");
}

function copyNative(dir) {
  mkdirSync(dir, { recursive: true });
  const hashes = {};
  for (const [name, src] of Object.entries(NATIVE_SOURCES)) {
    if (!existsSync(src)) throw new Error(`${relative(ROOT, src)} is missing: run npm run build:native (and npm ci for node-pty)`);
    copyFileSync(src, join(dir, name));
    chmodSync(join(dir, name), 0o755);
    hashes[name] = createHash("sha256").update(readFileSync(src)).digest("hex");
  }
  return hashes;
}

function singleExecutable(hashes) {
  const work = join(OUT, ".sea");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  const manifest = join(work, "native-manifest.json");
  writeFileSync(manifest, JSON.stringify({ version: VERSION, files: hashes }));
  const assets = { "native-manifest.json": manifest };
  for (const name of Object.keys(hashes)) assets[name] = join(OUT, "native", name);
  for (const name of ["terminal.js", "terminal.css"]) assets[name] = join(OUT, TERMINAL_ASSETS, name);
  const blob = join(work, "sea-prep.blob");
  const config = join(work, "sea-config.json");
  writeFileSync(config, JSON.stringify({ main: join(OUT, "envd.cjs"), output: blob, disableExperimentalSEAWarning: true, useCodeCache: true, assets }, null, 2));
  const prep = spawnSync(process.execPath, ["--experimental-sea-config", config], { encoding: "utf8" });
  if (prep.status !== 0) throw new Error(`node --experimental-sea-config failed: ${prep.stderr}`);

  const exe = join(OUT, "envd");
  rmSync(exe, { force: true });
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  // Debug symbols are a third of Node's binary and never used by a sandbox; stripping before
  // injection leaves the SEA fuse and note intact.
  try {
    execFileSync("strip", ["--strip-debug", exe], { stdio: "ignore" });
  } catch {
    /* no binutils: keep the symbols */
  }
  const inject = spawnSync(process.execPath, [join(ROOT, "node_modules/postject/dist/cli.js"), exe, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE], { encoding: "utf8" });
  // LIEF warns about every ELF note section of Node's binary; those lines are noise.
  const complaints = inject.stderr.split("\n").filter((l) => l.trim() && !l.includes("Can't find string offset for section name"));
  if (complaints.length) process.stderr.write(complaints.join("\n") + "\n");
  if (inject.status !== 0) throw new Error(`postject failed with status ${inject.status}`);
  rmSync(work, { recursive: true, force: true });
}

function tarball() {
  const stage = join(OUT, ".tar", NAME);
  rmSync(join(OUT, ".tar"), { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  copyFileSync(join(OUT, "envd"), join(stage, "envd"));
  copyFileSync(join(OUT, "envd.cjs"), join(stage, "envd.cjs"));
  cpSync(join(OUT, "native"), join(stage, "native"), { recursive: true });
  cpSync(join(OUT, TERMINAL_ASSETS), join(stage, TERMINAL_ASSETS), { recursive: true });
  cpSync(join(ROOT, "deploy"), join(stage, "deploy"), { recursive: true });
  const file = join(OUT, `${NAME}.tar.gz`);
  execFileSync("tar", ["-C", join(OUT, ".tar"), "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-czf", file, NAME]);
  rmSync(join(OUT, ".tar"), { recursive: true, force: true });
  return file;
}

mkdirSync(OUT, { recursive: true });
await step("bundle release/envd.cjs", bundle);
await step(`web terminal assets release/${TERMINAL_ASSETS}/`, terminalAssetFiles);
const hashes = await step("native parts release/native/", () => copyNative(join(OUT, "native")));
if (!bundleOnly) {
  await step("single executable release/envd", () => singleExecutable(hashes));
  const file = await step("tarball", tarball);
  const mib = (p) => (statSync(p).size / 2 ** 20).toFixed(1);
  process.stdout.write(`release/envd ${mib(join(OUT, "envd"))} MiB, release/envd.cjs ${mib(join(OUT, "envd.cjs"))} MiB, ${relative(ROOT, file)} ${mib(file)} MiB\n`);
}
