// The release: release/envd (Node single executable with the native parts embedded) run from
// an empty directory with no node_modules anywhere near it, release/envd.cjs (the bundle) run
// from the unpacked tarball, --probe, the extracted native cache, and cold start compared
// with the unbundled daemon (printed, not asserted).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { GrpcReflection } from "grpc-js-reflection-client";
import { WebSocket } from "ws";
import { collectJsonFrames, connectStream } from "./helpers/connect-wire.js";
import { ensureRelease, RELEASE, ROOT, startCommand, tarballName, type StartedDaemon } from "./helpers/release.js";

const USER_AUTH = { authorization: `Basic ${Buffer.from("user:").toString("base64")}` };

/** An environment with nothing that could lead Node to the repository's node_modules. */
function isolatedEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: "/root", ENVD_LOG_LEVEL: "info", ...extra };
  return env;
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

async function runCommand(d: StartedDaemon, script: string, pty = false): Promise<{ out: string; exit: unknown }> {
  const msg: Record<string, unknown> = { process: { cmd: "/bin/bash", args: ["-c", script] } };
  if (pty) msg.pty = { size: { cols: 80, rows: 24 } };
  const res = await connectStream(`${d.url}/process.Process/Start`, msg, USER_AUTH);
  assert.equal(res.status, 200);
  const frames = await collectJsonFrames(res);
  let out = "";
  let exit: unknown;
  for (const f of frames) {
    const data = f.json.event?.data;
    if (data) out += Buffer.from(data.stdout ?? data.pty ?? "", "base64").toString();
    if (f.json.event?.end) exit = f.json.event.end;
  }
  return { out, exit };
}

/** The same handful of calls against every way of running the daemon. */
async function exercise(d: StartedDaemon, scratch: string): Promise<void> {
  const health = await fetch(`${d.url}/health`);
  assert.equal(health.status, 204);

  // Extension services load at their first request (nothing loads them early in a release):
  // three first calls at once all get answers, and an unknown method of one is still a 404.
  const ext = (path: string) => fetch(`${d.url}/envdts.v1.${path}`, { method: "POST", headers: { "content-type": "application/json", ...USER_AUTH }, body: "{}" });
  const firstCalls = await Promise.all([ext("System/HealthCheck"), ext("ProcessControl/ListProcesses"), ext("System/GetSystemInfo")]);
  assert.deepEqual(firstCalls.map((r) => r.status), [200, 200, 200]);
  assert.ok(Array.isArray(((await firstCalls[1]!.json()) as { processes?: unknown[] }).processes ?? []));
  const unknown = await ext("System/NoSuchMethod");
  assert.equal(unknown.status, 404);
  assert.equal(await unknown.text(), "404 page not found\n");

  const stat = await fetch(`${d.url}/filesystem.Filesystem/Stat`, { method: "POST", headers: { "content-type": "application/json", ...USER_AUTH }, body: JSON.stringify({ path: "/etc/hostname" }) });
  assert.equal(stat.status, 200);
  assert.equal(((await stat.json()) as { entry: { name: string } }).entry.name, "hostname");

  // Pipe and PTY processes: the launcher and node-pty's pty.node from the release.
  const piped = await runCommand(d, "echo hi; id -un");
  assert.equal(piped.out, "hi\nuser\n");
  assert.deepEqual(piped.exit, { exited: true, status: "exit status 0" });
  const tty = await runCommand(d, "test -t 1 && echo on-a-tty", true);
  assert.match(tty.out, /on-a-tty\r\n/);

  // Upload with metadata (xattr addon), download, and a watcher (inotify addon).
  const file = join(scratch, `upload-${Date.now()}.txt`);
  const dir = scratch;
  const watcher = await fetch(`${d.url}/filesystem.Filesystem/CreateWatcher`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ path: dir }) });
  assert.equal(watcher.status, 200);
  const { watcherId } = (await watcher.json()) as { watcherId: string };
  const up = await fetch(`${d.url}/files?path=${encodeURIComponent(file)}`, { method: "POST", headers: { "content-type": "application/octet-stream", "x-metadata-origin": "ship-test" }, body: "payload" });
  assert.equal(up.status, 200);
  const [entry] = (await up.json()) as Array<{ metadata?: Record<string, string> }>;
  assert.deepEqual(entry!.metadata, { origin: "ship-test" });
  const down = await fetch(`${d.url}/files?path=${encodeURIComponent(file)}`);
  assert.equal(await down.text(), "payload");
  const events = await fetch(`${d.url}/filesystem.Filesystem/GetWatcherEvents`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ watcherId }) });
  const names = ((await events.json()) as { events?: Array<{ name: string }> }).events?.map((e) => e.name) ?? [];
  assert.ok(names.some((n) => file.endsWith(n)), `watcher saw ${names.join(", ")}`);

  const prom = await fetch(`${d.url}/metrics/prometheus`);
  assert.equal(prom.status, 200);
  assert.match(await prom.text(), /envd_http_requests_total\{method="GET",route="\/health",status="204"\} 1/);
  assert.equal((await fetch(`${d.url}/openapi.json`)).status, 200);

  const reflection = new GrpcReflection(`127.0.0.1:${d.port}`, grpc.credentials.createInsecure(), {}, "v1");
  const services = await reflection.listServices();
  for (const name of ["process.Process", "filesystem.Filesystem", "envdts.v1.Proxy", "envdts.v1.FilesystemExt", "grpc.reflection.v1.ServerReflection"]) assert.ok(services.includes(name), services.join(", "));

  // The web terminal: its embedded assets and a shell over the WebSocket.
  const js = await fetch(`${d.url}/terminal/terminal.js`);
  assert.equal(js.status, 200);
  assert.match(await js.text(), /xterm/);
  assert.equal(await terminalRoundTrip(d), "term-5");
}

/** Opens a shell on /terminal/ws, runs one echo, exits; returns what the echo printed. */
function terminalRoundTrip(d: StartedDaemon): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${d.url.replace("http:", "ws:")}/terminal/ws?cols=80&rows=24&user=user`);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`terminal: no answer; got ${JSON.stringify(out)}`)), 15_000);
    ws.on("message", (data: Buffer, binary) => {
      if (!binary) {
        if (JSON.parse(data.toString()).type === "opened") ws.send(Buffer.from("echo term-$((2+3)); exit\r"));
        return;
      }
      out += data.toString();
    });
    ws.on("close", (code) => {
      clearTimeout(timer);
      const m = /^(term-\d+)\r$/m.exec(out);
      if (code === 1000 && m) resolve(m[1]!);
      else reject(new Error(`terminal closed with ${code}: ${JSON.stringify(out)}`));
    });
    ws.on("error", reject);
  });
}

describe("release", { timeout: 300_000 }, () => {
  let scratch: string;
  let buildNote = "";
  before(() => {
    const built = ensureRelease();
    buildNote = `release ${built.rebuilt ? `built in ${built.seconds.toFixed(1)} s` : "reused (newer than its sources)"}`;
    scratch = mkdtempSync(join(tmpdir(), "envd-ship-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("release/envd runs alone: no node_modules, natives extracted to a private verified cache", async (t) => {
    t.diagnostic(buildNote);
    const alone = mkdtempSync(join(scratch, "alone-"));
    const runtime = mkdtempSync(join(scratch, "xdg-"));
    copyFileSync(join(RELEASE, "envd"), join(alone, "envd"));
    assert.deepEqual(readdirSync(alone), ["envd"]);
    const env = isolatedEnv({ XDG_RUNTIME_DIR: runtime });

    const version = spawnSync(join(alone, "envd"), ["--version"], { cwd: alone, env, encoding: "utf8" });
    assert.equal(version.stdout, "0.6.13\n");
    assert.equal(version.stderr, "", "no experimental-feature warning");

    let d = await startCommand([join(alone, "envd")], { cwd: alone, env, runDir: mkdtempSync(join(scratch, "run-")) });
    try {
      await exercise(d, mkdtempSync(join(scratch, "files-")));
      const probe = spawnSync(join(alone, "envd"), ["--probe", "--port", String(d.port)], { env, encoding: "utf8" });
      assert.equal(probe.status, 0, probe.stdout);
      assert.equal(probe.stdout, "healthy: GET /health: 204\n");
    } finally {
      assert.equal(await d.stop(), 0);
    }
    const probeDown = spawnSync(join(alone, "envd"), ["--probe", "--port", String(d.port)], { env, encoding: "utf8" });
    assert.equal(probeDown.status, 1);

    // The cache: one private directory holding exactly the release's native files.
    const caches = readdirSync(runtime);
    assert.equal(caches.length, 1, caches.join(", "));
    assert.match(caches[0]!, /^envd-ts-\d+\.\d+\.\d+-[0-9a-f]{16}$/);
    const cache = join(runtime, caches[0]!);
    assert.equal(statSync(cache).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(cache).sort(), ["envd-launcher", "envd_native.node", "pty.node"]);
    for (const f of readdirSync(cache)) assert.equal(sha256(join(cache, f)), sha256(join(RELEASE, "native", f)), f);

    // A damaged cached file is noticed and replaced at the next start.
    writeFileSync(join(cache, "pty.node"), "not a shared object");
    d = await startCommand([join(alone, "envd")], { cwd: alone, env, runDir: mkdtempSync(join(scratch, "run-")) });
    try {
      assert.equal((await runCommand(d, "echo again", true)).out, "again\r\n");
    } finally {
      assert.equal(await d.stop(), 0);
    }
    assert.equal(sha256(join(cache, "pty.node")), sha256(join(RELEASE, "native", "pty.node")));
    assert.deepEqual(readdirSync(runtime), caches, "no staging directories left behind");
  });

  it("the tarball holds envd, envd.cjs, native/ and terminal-assets/; the bundle runs from it with plain node", async () => {
    const unpack = mkdtempSync(join(scratch, "tar-"));
    const tar = spawnSync("tar", ["-xzf", join(RELEASE, tarballName()), "-C", unpack], { encoding: "utf8" });
    assert.equal(tar.status, 0, tar.stderr);
    const [top] = readdirSync(unpack);
    assert.equal(top, tarballName().replace(/\.tar\.gz$/, ""));
    const dir = join(unpack, top!);
    assert.deepEqual(readdirSync(dir).sort(), ["deploy", "envd", "envd.cjs", "native", "terminal-assets"]);
    assert.deepEqual(readdirSync(join(dir, "native")).sort(), ["envd-launcher", "envd_native.node", "pty.node"]);
    assert.deepEqual(readdirSync(join(dir, "terminal-assets")).sort(), ["terminal.css", "terminal.js"]);
    assert.equal(statSync(join(dir, "envd")).mode & 0o111, 0o111);
    assert.ok(!existsSync(join(dir, "node_modules")));

    const d = await startCommand([process.execPath, join(dir, "envd.cjs")], { cwd: dir, env: isolatedEnv(), runDir: mkdtempSync(join(scratch, "run-")) });
    try {
      await exercise(d, mkdtempSync(join(scratch, "files-")));
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  it("cold start: bundle and single executable against the unbundled daemon (printed, not asserted)", async (t) => {
    const runs = 5;
    const variants: Record<string, string[]> = {
      "unbundled node dist/main.js": [process.execPath, join(ROOT, "dist/main.js")],
      "bundle node release/envd.cjs": [process.execPath, join(RELEASE, "envd.cjs")],
      "single executable release/envd": [join(RELEASE, "envd")],
    };
    const runtime = mkdtempSync(join(scratch, "xdg-cold-"));
    const medians: Record<string, number> = {};
    for (const [name, cmd] of Object.entries(variants)) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const d = await startCommand(cmd, { cwd: scratch, env: isolatedEnv({ XDG_RUNTIME_DIR: runtime }), runDir: mkdtempSync(join(scratch, "run-")) });
        // Timed to the listening line; it must also answer.
        assert.equal((await fetch(`${d.url}/health`)).status, 204);
        times.push(d.startMs);
        assert.equal(await d.stop(), 0);
      }
      times.sort((a, b) => a - b);
      medians[name] = times[Math.floor(runs / 2)]!;
      t.diagnostic(`cold start ${name}: median ${medians[name]!.toFixed(0)} ms to the listening line (runs: ${times.map((ms) => ms.toFixed(0)).join(", ")})`);
    }
    const base = medians["unbundled node dist/main.js"]!;
    for (const [name, ms] of Object.entries(medians)) t.diagnostic(`cold start ratio ${name}: ${(ms / base).toFixed(2)}× the unbundled daemon`);
  });
});
