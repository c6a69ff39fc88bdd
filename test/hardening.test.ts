// Hardening against local users and hostile clients: the access token stays secret from other
// processes, user-given durations cannot overflow timers, and connections cannot exhaust the daemon.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import http2 from "node:http2";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { envelope } from "./helpers/connect-wire.js";
import { basic, health, readProcessEvents, startCommand, unaryJson, waitFor } from "./helpers/hostile.js";
import { e2bSandbox } from "./process-helpers.js";
import { ensureRelease, RELEASE, startCommand as startReleaseCommand } from "./helpers/release.js";

const MAIN = new URL("../dist/main.js", import.meta.url).pathname;

/** Runs `sh -c script` as the unprivileged `user`, as a local attacker would. */
function asUser(script: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync("setpriv", ["--reuid", "user", "--regid", "user", "--init-groups", "sh", "-c", script], { encoding: "latin1", timeout: 20_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** What a local user learns of a process from /proc: its command line and, if allowed, its environment. */
function spyOn(pid: number): string {
  const r = asUser(`tr '\\0' ' ' < /proc/${pid}/cmdline; echo; tr '\\0' ' ' < /proc/${pid}/environ`);
  return r.stdout + r.stderr;
}

/** The output of a command run through the API (Connect JSON), as `user` unless told otherwise. */
async function commandOutput(d: { url: string }, script: string, opts: { user?: string; token?: string } = {}): Promise<string> {
  const res = await startCommand(d.url, script, { user: opts.user, headers: opts.token ? { "x-access-token": opts.token } : {} });
  assert.equal(res.status, 200, `Start answered ${res.status}`);
  const events = await readProcessEvents(res);
  return events.map((e) => e.text ?? "").join("");
}

describe("the access token is hidden from other processes", () => {
  const FLAG_TOKEN = "flag-token-1b7e0c2a9d";
  const ENV_TOKEN = "env-token-5f3a8e61c4";
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--access-token", FLAG_TOKEN], env: { ENVD_ACCESS_TOKEN: ENV_TOKEN } });
  });
  after(async () => {
    await d.stop();
  });

  it("a local user reading /proc/<daemon>/cmdline and environ finds no token", () => {
    const seen = spyOn(d.pid);
    assert.match(seen, /--access-token/, "the command line is still readable, only the value is hidden");
    assert.ok(!seen.includes(FLAG_TOKEN), `the flag's token leaked: ${seen}`);
    assert.ok(!seen.includes(ENV_TOKEN), `the variable's token leaked: ${seen}`);
  });

  it("even root reading /proc/<daemon>/cmdline and environ through a command finds no token", async () => {
    const out = await commandOutput(d, `tr '\\0' '\\n' < /proc/${d.pid}/cmdline; tr '\\0' '\\n' < /proc/${d.pid}/environ`, { user: "root", token: FLAG_TOKEN });
    assert.match(out, /--access-token/);
    assert.ok(!out.includes(FLAG_TOKEN) && !out.includes(ENV_TOKEN), out);
  });

  it("commands do not inherit ENVD_ACCESS_TOKEN", async () => {
    for (const user of ["user", "root"]) {
      const out = await commandOutput(d, "env; tr '\\0' '\\n' < /proc/self/environ", { user, token: FLAG_TOKEN });
      assert.match(out, /^PATH=/m, "the command's environment was printed");
      assert.ok(!out.includes("ENVD_ACCESS_TOKEN") && !out.includes(FLAG_TOKEN) && !out.includes(ENV_TOKEN), out);
    }
  });

  it("the token still works, and the value a spy could read does not", async () => {
    assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": FLAG_TOKEN } })).status, 200);
    const masked = "*".repeat(FLAG_TOKEN.length);
    assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": masked } })).status, 401);
  });
});

describe("a short token that is also part of other words", () => {
  it("hides only the token: PATH and the other arguments stay as they were", async () => {
    // "bin" is in PATH and in the daemon's own path: those must not be touched.
    const d = await startDaemon({ args: ["--access-token", "bin"], env: { ENVD_ACCESS_TOKEN: "bin" } });
    try {
      const cmdline = readFileSync(`/proc/${d.pid}/cmdline`, "latin1").split("\0");
      assert.deepEqual(cmdline.slice(cmdline.indexOf("--access-token"), cmdline.indexOf("--access-token") + 2), ["--access-token", "***"]);
      assert.ok(cmdline.some((a) => a.endsWith("dist/main.js")), cmdline.join(" "));
      const out = await commandOutput(d, "echo \"$PATH\"; ls -d /usr/bin", { token: "bin" });
      assert.match(out, /^[^\n]*\/usr\/bin/, out);
      assert.match(out, /^\/usr\/bin$/m, out);
    } finally {
      await d.stop();
    }
  });
});

describe("--access-token-file", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "envd-token-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the token once at start, without its trailing newline", async () => {
    const file = join(dir, "token");
    writeFileSync(file, "file-token-77c1\n", { mode: 0o600 });
    const d = await startDaemon({ args: ["--access-token-file", file] });
    try {
      // Read once: changing the file later changes nothing.
      writeFileSync(file, "another\n");
      assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": "file-token-77c1" } })).status, 200);
      assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": "another" } })).status, 401);
      assert.equal((await fetch(`${d.url}/envs`)).status, 401);
      assert.ok(!spyOn(d.pid).includes("file-token-77c1"));
    } finally {
      await d.stop();
    }
  });

  it("also comes from ENVD_ACCESS_TOKEN_FILE", async () => {
    const file = join(dir, "token-env");
    writeFileSync(file, "env-file-token\r\n");
    const d = await startDaemon({ env: { ENVD_ACCESS_TOKEN_FILE: file } });
    try {
      assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": "env-file-token" } })).status, 200);
      assert.equal((await fetch(`${d.url}/envs`)).status, 401);
    } finally {
      await d.stop();
    }
  });

  it("an empty, missing or unreadable file, or both a token and a file, exit 2 with a message", () => {
    const empty = join(dir, "empty");
    writeFileSync(empty, "\n");
    const secret = join(dir, "root-only");
    writeFileSync(secret, "x\n");
    chmodSync(secret, 0o600);
    const cases: [string[], RegExp, boolean?][] = [
      [["--access-token-file", empty], /--access-token-file: '.*empty' is empty/],
      [["--access-token-file", join(dir, "missing")], /--access-token-file: cannot read '.*missing'.*ENOENT/],
      [["--access-token-file", dir], /--access-token-file: cannot read/],
      [["--access-token-file", secret], /--access-token-file: cannot read '.*root-only'.*EACCES/, true],
      [["--access-token", "a", "--access-token-file", empty], /not both/],
    ];
    for (const [args, message, asUnprivileged] of cases) {
      const argv = ["--port", "0", "--listen", "127.0.0.1", ...args];
      const r = asUnprivileged
        ? asUser(`exec ${process.execPath} ${MAIN} ${argv.join(" ")}`)
        : spawnSync(process.execPath, [MAIN, ...argv], { encoding: "utf8", timeout: 20_000 });
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
    }
  });

  it("--help says to prefer the file", () => {
    const r = spawnSync(process.execPath, [MAIN, "--help"], { encoding: "utf8" });
    assert.match(r.stdout, /--access-token-file VALUE .*\[ENVD_ACCESS_TOKEN_FILE\]/);
    assert.match(r.stdout, /--access-token VALUE .*prefer --access-token-file/);
  });
});

describe("the single executable hides the token too", () => {
  it("release/envd --access-token X: /proc/<pid>/cmdline shows no X", async () => {
    ensureRelease();
    const runDir = mkdtempSync(join(tmpdir(), "envd-run-"));
    const token = "sea-token-90af3e";
    const d = await startReleaseCommand([join(RELEASE, "envd"), `--access-token=${token}`], { runDir });
    try {
      const seen = spyOn(d.child.pid!);
      assert.match(seen, /--access-token=\*+/);
      assert.ok(!seen.includes(token), seen);
      assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": token } })).status, 200);
    } finally {
      await d.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});

describe("user-given durations cannot overflow timers", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d.stop();
  });

  /** process.Process/Start with a Connect or gRPC-Web deadline header; the command's output and end. */
  async function runWithDeadline(headers: Record<string, string>, contentType = "application/connect+json"): Promise<{ status: number; body: string }> {
    const res = await fetch(`${d.url}/process.Process/Start`, {
      method: "POST",
      headers: { "content-type": contentType, authorization: basic("user"), ...headers },
      body: envelope({ process: { cmd: "/bin/sh", args: ["-c", "sleep 1; echo still-alive"] } }),
    });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()).toString("latin1") };
  }

  it("Connect-Timeout-Ms 3e9 and 2^31+5 neither abort the call nor kill the command", async () => {
    for (const value of ["3000000000", String(2 ** 31 + 5), "9999999999"]) {
      const { status, body } = await runWithDeadline({ "connect-timeout-ms": value });
      assert.equal(status, 200, value);
      assert.match(body, new RegExp(Buffer.from("still-alive\n").toString("base64")), `${value}: ${body}`);
      assert.ok(!body.includes("deadline_exceeded"), `${value}: ${body}`);
      assert.match(body, /"exited":true/, `${value}: ${body}`);
    }
  });

  it("a gRPC-Web grpc-timeout of 99999999 hours does not abort the call", async () => {
    const { status, body } = await runWithDeadline({ "grpc-timeout": "99999999H" }, "application/grpc-web+json");
    assert.equal(status, 200);
    assert.match(body, new RegExp(Buffer.from("still-alive\n").toString("base64")), body);
    assert.match(body, /grpc-status:\s*0/, body);
  });

  /** Starts envdts.v1.ProcessControl/Start and leaves its stream open; returns a way to end it. */
  function extStart(request: unknown): AbortController {
    const abort = new AbortController();
    void fetch(`${d.url}/envdts.v1.ProcessControl/Start`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", authorization: basic("user") },
      body: envelope(request),
      signal: abort.signal,
    })
      .then((res) => res.arrayBuffer())
      .catch(() => {});
    return abort;
  }

  async function getProcess(tag: string): Promise<any> {
    const r = await unaryJson(d.url, "envdts.v1.ProcessControl/GetProcess", { process: { tag } });
    return r.status === 200 ? r.json.process : undefined;
  }

  async function stop(tag: string, stream: AbortController): Promise<void> {
    await unaryJson(d.url, "envdts.v1.ProcessControl/Signal", { process: { tag }, name: "SIGKILL", stopRestarts: true });
    stream.abort();
  }

  it("the extension's timeout_ms of 3e9 does not kill the command", async () => {
    const stream = extStart({ process: { cmd: "/bin/sleep", args: ["30"] }, tag: "long-timeout", timeoutMs: 3_000_000_000 });
    try {
      const running = await waitFor(async () => (await getProcess("long-timeout"))?.state === "PROCESS_STATE_RUNNING", 10_000);
      assert.ok(running, "the command started");
      // Give an overflowed timer (1 ms) ample time to fire.
      await new Promise((r) => setTimeout(r, 1500));
      const info = await getProcess("long-timeout");
      assert.equal(info.state, "PROCESS_STATE_RUNNING", JSON.stringify(info));
      assert.equal(info.timeoutMs, 3_000_000_000);
    } finally {
      await stop("long-timeout", stream);
    }
  });

  it("a restart backoff of 3e9 ms does not restart in a loop", async () => {
    const stream = extStart({ process: { cmd: "/bin/true" }, tag: "long-backoff", restart: { mode: "MODE_ALWAYS", backoffMs: 3_000_000_000, maxBackoffMs: 4_000_000_000 } });
    try {
      const exited = await waitFor(async () => (await getProcess("long-backoff"))?.runs?.[0]?.exit, 10_000);
      assert.ok(exited, "the first run ended");
      await new Promise((r) => setTimeout(r, 1500));
      const info = await getProcess("long-backoff");
      assert.equal(info.restartCount ?? 0, 0, `restarted ${info.restartCount} times in 1.5 s`);
      assert.equal(info.runs.length, 1);
    } finally {
      await stop("long-backoff", stream);
    }
  });

  it("a process's run history stays bounded under a fast restart loop", async () => {
    const stream = extStart({ process: { cmd: "/bin/true" }, tag: "fast-loop", restart: { mode: "MODE_ALWAYS", backoffMs: 1, maxBackoffMs: 1 } });
    try {
      const looped = await waitFor(async () => ((await getProcess("fast-loop"))?.restartCount ?? 0) >= 150, 120_000, 200);
      assert.ok(looped, "the process restarted 150 times");
      const info = await getProcess("fast-loop");
      assert.ok(info.runs.length <= 100, `${info.runs.length} runs kept`);
      assert.ok(info.runs.length >= 50, `${info.runs.length} runs kept: the latest are still there`);
      // The newest runs are kept: their start times increase, and the last is the current or last pid.
      const starts = info.runs.map((r: any) => Date.parse(r.startedAt));
      assert.deepEqual(starts, [...starts].sort((a, b) => a - b));
      assert.equal(info.runs.at(-1).pid, info.pid);
    } finally {
      await stop("fast-loop", stream);
    }
  });
});

describe("the /proxy/<port>/ gateway does not forward to the daemon itself", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d.stop();
  });

  it("the daemon's own port is refused with a clear error, also nested in one long URL", async () => {
    const res = await fetch(`${d.url}/proxy/${d.port}/health`);
    assert.equal(res.status, 400);
    assert.match((await res.json()).message, new RegExp(`does not forward to port ${d.port}: that is the daemon's own port`));
    const nested = `/proxy/${d.port}`.repeat(1300) + "/health";
    const started = Date.now();
    const deep = await fetch(`${d.url}${nested}`);
    assert.equal(deep.status, 400);
    await deep.arrayBuffer();
    assert.ok(Date.now() - started < 5000);
    assert.equal((await health(d.url)), 204);
  });

  it("a WebSocket upgrade to the daemon's own port is refused", async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const sock = connect(d.port, "127.0.0.1", () => {
        sock.write(`GET /proxy/${d.port}/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      });
      let buf = "";
      sock.on("data", (c) => (buf += c));
      sock.on("close", () => resolve(buf));
      sock.on("error", reject);
    });
    assert.match(out, /^HTTP\/1.1 400 /);
    assert.match(out, /the daemon's own port/);
  });
});

describe("deeply nested JSON", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d.stop();
  });

  it("65 levels is invalid_argument; a normal request still works", async () => {
    const deep = `{"x":${"[".repeat(65)}${"]".repeat(65)}}`;
    const res = await fetch(`${d.url}/process.Process/List`, { method: "POST", headers: { "content-type": "application/json" }, body: deep });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /JSON nests deeper than 64 levels/);
    assert.equal((await unaryJson(d.url, "process.Process/List", {})).status, 200);
  });

  it("a 16 MB nested message is refused at once while another client's calls keep answering", async () => {
    const half = 7_900_000;
    const body = Buffer.alloc(2 * half + 6);
    body.write('{"x":', 0);
    body.fill("[", 5, 5 + half);
    body.fill("]", 5 + half, 5 + 2 * half);
    body.write("}", 5 + 2 * half);
    let worst = 0;
    let calls = 0;
    let stop = false;
    const other = (async () => {
      while (!stop) {
        const t0 = Date.now();
        const r = await unaryJson(d.url, "process.Process/List", {});
        assert.equal(r.status, 200);
        worst = Math.max(worst, Date.now() - t0);
        calls++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const res = await fetch(`${d.url}/process.Process/List`, { method: "POST", headers: { "content-type": "application/json" }, body });
    const answer = await res.json();
    await waitFor(() => calls >= 5, 10_000);
    stop = true;
    await other;
    assert.equal(res.status, 400);
    assert.equal(answer.code, "invalid_argument");
    assert.match(answer.message, /deeper than 64/);
    assert.ok(worst < 1500, `another client waited ${worst} ms`);
  });

  it("POST /init with deeply nested JSON is a 400, answered at once", async () => {
    const t0 = Date.now();
    // Just under the 1 MiB /init takes; JSON.parse of it holds the thread for most of a second.
    const res = await fetch(`${d.url}/init`, { method: "POST", body: `{"envVars":${"[".repeat(524_000)}${"]".repeat(524_000)}}` });
    assert.equal(res.status, 400);
    assert.ok(Date.now() - t0 < 500, `${Date.now() - t0} ms`);
  });
});

/**
 * A separate process (its own, raised descriptor limit) that opens `count` TCP connections to
 * the daemon and holds them without sending a byte. Resolves once all were attempted; `opened`
 * counts those accepted before the daemon closed them.
 */
async function idleFlood(port: number, count: number): Promise<{ opened: () => number; stop: () => void }> {
  const script = `
    const net = require("node:net");
    let opened = 0, done = 0;
    const socks = [];
    for (let i = 0; i < ${count}; i++) {
      const s = net.connect(${port}, "127.0.0.1");
      s.on("connect", () => { opened++; finish(); });
      s.on("error", () => finish());
      socks.push(s);
    }
    function finish() { if (++done === ${count}) process.stdout.write("attempted " + opened + "\\n"); }
    setInterval(() => process.stdout.write("opened " + opened + "\\n"), 500);
  `;
  const child = spawn("prlimit", [`--nofile=${count + 1000}:${count + 1000}`, process.execPath, "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let opened = 0;
  let attempted = false;
  child.stdout!.on("data", (b: Buffer) => {
    for (const line of b.toString().split("\n")) {
      const m = /^(opened|attempted) (\d+)/.exec(line);
      if (m) opened = Math.max(opened, Number(m[2]));
      if (m?.[1] === "attempted") attempted = true;
    }
  });
  const ok = await waitFor(() => attempted, 120_000, 100);
  assert.ok(ok, "the flood did not finish connecting");
  return { opened: () => opened, stop: () => child.kill("SIGKILL") };
}

describe("idle connections cannot exhaust the daemon", () => {
  let d: Daemon;
  before(async () => {
    // The descriptor limit of the original report: 1,100 idle connections were enough.
    d = await startDaemon({ wrapper: ["prlimit", "--nofile=1024:1024", "--"] });
  });
  after(async () => {
    await d.stop();
  });

  it("under 10,000 idle connections /health answers fast and an E2B SDK command runs", async () => {
    const flood = await idleFlood(d.port, 10_000);
    try {
      assert.ok(flood.opened() >= 1000, `only ${flood.opened()} connections were accepted`);
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        assert.equal(await health(d.url, 3000), 204, `GET /health under ${flood.opened()} connections`);
        assert.ok(Date.now() - t0 < 2000, `GET /health took ${Date.now() - t0} ms`);
      }
      const { sbx } = await e2bSandbox(d);
      const out = await sbx.commands.run("echo flood-survived");
      assert.equal(out.stdout, "flood-survived\n");
      // The daemon held no more sockets than its cap (three quarters of 1024).
      const sockets = readdirSync(`/proc/${d.pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${d.pid}/fd/${fd}`).startsWith("socket:");
        } catch {
          return false;
        }
      }).length;
      assert.ok(sockets <= 768 + 32, `${sockets} sockets open`);
    } finally {
      flood.stop();
    }
  });

  it("a connection that sends no authenticated request is closed after ~10 s; an authenticated one stays", async () => {
    const d = await startDaemon({ args: ["--access-token", "conn-token"] });
    const closedAfter = (sock: Socket) => new Promise<number>((resolve) => {
      const t0 = Date.now();
      sock.on("close", () => resolve(Date.now() - t0));
      sock.on("error", () => {});
    });
    // Silent, dribbling headers a byte a second, and one authenticated keep-alive request.
    const silent = connect(d.port, "127.0.0.1");
    const dribble = connect(d.port, "127.0.0.1");
    const header = Buffer.from("GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + "a".repeat(100));
    let i = 0;
    const dribbler = setInterval(() => dribble.writable && dribble.write(header.subarray(i, ++i)), 1000);
    const authed = connect(d.port, "127.0.0.1");
    let authedClosed = false;
    authed.on("close", () => (authedClosed = true));
    authed.on("error", () => {});
    authed.write("GET /envs HTTP/1.1\r\nHost: x\r\nX-Access-Token: conn-token\r\n\r\n");
    // The same over h2c: a session that opens no stream, and one with an authenticated stream.
    const h2Silent = http2.connect(d.url);
    h2Silent.on("error", () => {});
    const h2SilentClosed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      h2Silent.on("close", () => resolve(Date.now() - t0));
    });
    const h2Authed = http2.connect(d.url);
    h2Authed.on("error", () => {});
    let h2AuthedClosed = false;
    h2Authed.on("close", () => (h2AuthedClosed = true));
    await new Promise<void>((resolve, reject) => {
      const req = h2Authed.request({ ":path": "/envs", "x-access-token": "conn-token" });
      req.on("response", (h) => (h[":status"] === 200 ? resolve() : reject(new Error(`status ${h[":status"]}`))));
      req.on("error", reject);
      req.resume();
      req.end();
    });
    try {
      const [silentMs, dribbleMs, h2SilentMs] = await Promise.all([closedAfter(silent), closedAfter(dribble), h2SilentClosed]);
      assert.ok(h2SilentMs >= 8000 && h2SilentMs < 20_000, `silent h2c session closed after ${h2SilentMs} ms`);
      assert.equal(h2AuthedClosed, false, "the authenticated h2c session stays open");
      assert.ok(silentMs >= 8000 && silentMs < 20_000, `silent connection closed after ${silentMs} ms`);
      assert.ok(dribbleMs >= 8000 && dribbleMs < 20_000, `dribbling connection closed after ${dribbleMs} ms`);
      assert.equal(authedClosed, false, "the authenticated keep-alive connection stays open");
    } finally {
      clearInterval(dribbler);
      authed.destroy();
      h2Silent.destroy();
      h2Authed.destroy();
      await d.stop();
    }
  });
});
