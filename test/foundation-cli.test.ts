// The command line: --help, E2B's -port/-isnotfc/-version, bad flags, and the log level.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCli } from "../src/config.js";

const MAIN = new URL("../dist/main.js", import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 10_000 });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitHealthy(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    if (res?.status === 204) return;
    if (Date.now() > deadline) throw new Error("daemon did not come up");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Spawns the daemon with raw arguments (no harness defaults); returns it with its stdout lines. */
function spawnRaw(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (b) => (out += b));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    lines: () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop() {
      child.kill("SIGTERM");
      return exited;
    },
  };
}

const REQUIRED_FLAGS = ["port", "listen", "default-user", "default-workdir", "access-token", "log-level", "keepalive-seconds", "isnotfc", "version", "help"];
const REQUIRED_ENV = ["ENVD_PORT", "ENVD_LISTEN_ADDRESS", "ENVD_DEFAULT_USER", "ENVD_DEFAULT_WORKDIR", "ENVD_ACCESS_TOKEN", "ENVD_LOG_LEVEL", "ENVD_KEEPALIVE_SECONDS"];

describe("command line", () => {
  it("--help lists every flag, each with its variable where it has one", () => {
    const r = run(["--help"]);
    assert.equal(r.status, 0);
    const flags = [...r.stdout.matchAll(/^\s+--([a-z][a-z-]*)/gm)].map((m) => m[1]!);
    for (const f of REQUIRED_FLAGS) assert.ok(flags.includes(f), `--help lists --${f}`);
    for (const e of REQUIRED_ENV) assert.ok(r.stdout.includes(`[${e}]`), `--help names ${e}`);
    // Every flag the help shows is one the parser accepts, and nothing else is accepted silently.
    for (const f of flags) {
      const line = r.stdout.split("\n").find((l) => l.trimStart().startsWith(`--${f} `) || l.trim() === `--${f}`)!;
      const value = /\(default ([^)]+)\)/.exec(line)?.[1] ?? "1";
      const args = /--\S+ VALUE/.test(line) ? [`--${f}`, value] : [`--${f}`];
      try {
        parseCli(args, {});
      } catch (err) {
        // A value the flag refuses ("--x: '1' is not ...") still proves the flag is known.
        assert.doesNotMatch((err as Error).message, /Unknown option|does not take an argument|argument missing/, `--help lists --${f} but the parser does not know '${args.join(" ")}'`);
      }
    }
    assert.equal(run(["-help"]).stdout, r.stdout, "Go-style single dash works too");
  });

  it("--help into a pipe that closes early (envd --help | true) exits 0 without a stack trace", () => {
    const r = spawnSync("bash", ["-c", `set -o pipefail; ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} --help | true`], { encoding: "utf8" });
    assert.equal(r.stderr, "");
    assert.equal(r.status, 0);
  });

  it("-version and --version print the envd protocol version, 0.6.13", () => {
    for (const flag of ["-version", "--version"]) {
      const r = run([flag]);
      assert.equal(r.status, 0);
      assert.equal(r.stdout, "0.6.13\n");
    }
  });

  it("an unknown flag or a bad value exits 2 with a message on stderr", () => {
    for (const args of [["--no-such-flag"], ["-nosuch"], ["--port", "abc"], ["--port", "70000"], ["--log-level", "loud"], ["stray-positional"]]) {
      const r = run(args);
      assert.equal(r.status, 2, `${args.join(" ")} exits 2`);
      assert.match(r.stderr, /^envd: .+\nRun 'envd --help' for the flags\.\n$/, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
    }
  });

  it("accepts E2B's -port N -isnotfc (and writes E2B_SANDBOX=false)", async () => {
    const port = await freePort();
    const runDir = mkdtempSync(join(tmpdir(), "envd-cli-"));
    const d = spawnRaw(["-port", String(port), "-isnotfc", "-listen", "127.0.0.1", "-run-dir", runDir]);
    try {
      await waitHealthy(port);
      assert.deepEqual(await (await fetch(`http://127.0.0.1:${port}/envs`)).json(), { E2B_SANDBOX: "false" });
      const marker = join(runDir, ".E2B_SANDBOX");
      assert.equal(readFileSync(marker, "utf8"), "false");
      assert.equal(statSync(marker).mode & 0o777, 0o444);
    } finally {
      assert.equal(await d.stop(), 0);
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("environment variables configure the daemon, flags win over them", async () => {
    const port = await freePort();
    const d = spawnRaw(["--listen", "127.0.0.1", "--run-dir", mkdtempSync(join(tmpdir(), "envd-cli-"))], { ENVD_PORT: String(port), ENVD_ACCESS_TOKEN: "from-env" });
    try {
      await waitHealthy(port);
      assert.equal((await fetch(`http://127.0.0.1:${port}/envs`)).status, 401, "ENVD_ACCESS_TOKEN is in force");
      assert.equal((await fetch(`http://127.0.0.1:${port}/envs`, { headers: { "x-access-token": "from-env" } })).status, 200);
    } finally {
      assert.equal(await d.stop(), 0);
    }
    const cfg = parseCli(["--port", "7", "--log-level", "warn"], { ENVD_PORT: "8", ENVD_LOG_LEVEL: "debug", ENVD_DEFAULT_USER: "user" });
    assert.equal(cfg.kind, "run");
    if (cfg.kind === "run") {
      assert.equal(cfg.config.port, 7);
      assert.equal(cfg.config.logLevel, "warn");
      assert.equal(cfg.config.defaultUser, "user");
    }
  });

  it("--log-level controls what is logged: warn drops request lines, -verbose keeps them", async () => {
    const quietPort = await freePort();
    const quiet = spawnRaw(["--port", String(quietPort), "--listen", "127.0.0.1", "--log-level", "warn", "--run-dir", mkdtempSync(join(tmpdir(), "envd-cli-"))]);
    const loudPort = await freePort();
    const loud = spawnRaw(["--port", String(loudPort), "--listen", "127.0.0.1", "-verbose", "--run-dir", mkdtempSync(join(tmpdir(), "envd-cli-"))]);
    try {
      await Promise.all([waitHealthy(quietPort), waitHealthy(loudPort)]);
      await (await fetch(`http://127.0.0.1:${quietPort}/no-such-path`)).text();
      await (await fetch(`http://127.0.0.1:${loudPort}/no-such-path`)).text();
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(quiet.lines(), [], "nothing at info level is printed");
      const lines = loud.lines();
      assert.ok(lines.some((l) => l.msg === "request" && l.path === "/no-such-path"));
      for (const l of lines) assert.equal(typeof l.level, "number", "every stdout line is a JSON log record");
    } finally {
      assert.equal(await quiet.stop(), 0);
      assert.equal(await loud.stop(), 0);
    }
  });
});
