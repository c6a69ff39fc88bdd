// Hardening against local users and hostile clients: the access token stays secret from other
// processes, user-given durations cannot overflow timers, and connections cannot exhaust the daemon.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { readProcessEvents, startCommand } from "./helpers/hostile.js";
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
