// State that survives the daemon: what POST /init set is kept in <run-dir>/envd-state and
// restored when a daemon killed with SIGKILL (or stopped, or upgraded) starts again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request, type ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Process } from "../src/gen/process_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const AS_USER = ["setpriv", "--reuid=user", "--regid=user", "--init-groups", "--"];

/** A run directory as /run/e2b is: root's, readable by everyone, so only the state's own modes protect it. */
function makeRunDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "envd-persist-"));
  chmodSync(dir, 0o755);
  return dir;
}

/** A daemon on this run directory (the last --run-dir wins over the helper's own). */
function startOn(runDir: string, args: string[] = []): Promise<Daemon> {
  return startDaemon({ args: ["--run-dir", runDir, ...args] });
}

async function kill9(d: Daemon): Promise<void> {
  const gone = new Promise((r) => d.child.once("exit", r));
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill("SIGKILL");
  await gone;
  await d.stop();
}

/** POST /init; with a token, it goes in the body (what /init checks) and the header. */
function init(d: Daemon, body: Record<string, unknown>, token?: string): Promise<Response> {
  return fetch(`${d.url}/init`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { "x-access-token": token } : {}) },
    body: JSON.stringify(token ? { ...body, accessToken: token } : body),
  });
}

function envs(d: Daemon, token?: string): Promise<Response> {
  return fetch(`${d.url}/envs`, { headers: token ? { "x-access-token": token } : {} });
}

/** Runs a shell command as the default user (no user named) and returns its stdout. */
async function run(d: Daemon, script: string, token?: string): Promise<string> {
  const client = createClient(Process, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
  let out = "";
  const stream = client.start({ process: { cmd: "/bin/sh", args: ["-c", script], envs: {} } }, { headers: token ? { "x-access-token": token } : {} });
  for await (const ev of stream) {
    if (ev.event?.event.case === "data" && ev.event.event.value.output.case === "stdout") out += Buffer.from(ev.event.event.value.output.value).toString();
  }
  return out;
}

const at = (ms: number) => new Date(ms).toISOString();

describe("what POST /init set survives a kill -9 and a restart on the same --run-dir", () => {
  let runDir: string;
  let d: Daemon;
  const token = "persist-token-" + "x".repeat(40);
  const t0 = Date.parse("2026-01-01T00:00:00Z");

  before(async () => {
    runDir = makeRunDir();
    d = await startOn(runDir);
    const res = await init(d, { accessToken: token, envVars: { KEPT: "yes", OTHER: "1" }, defaultUser: "user", defaultWorkdir: "/tmp", timestamp: at(t0) });
    assert.equal(res.status, 204);
    await kill9(d);
    d = await startOn(runDir);
  });
  after(async () => {
    await d.stop();
    rmSync(runDir, { recursive: true, force: true });
  });

  it("still requires the access token", async () => {
    assert.equal((await envs(d)).status, 401, "no token: refused");
    assert.equal((await envs(d, "wrong")).status, 401, "a wrong token: refused");
    const res = await envs(d, token);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { KEPT: "yes", OTHER: "1", E2B_SANDBOX: "true" });
    assert.equal((await init(d, { envVars: {} })).status, 401, "/init without the token is still refused");
  });

  it("keeps the default user, workdir and environment variables for commands", async () => {
    assert.equal(await run(d, 'id -un; pwd; echo "$KEPT"', token), "user\n/tmp\nyes\n");
  });

  it("keeps the /init timestamp rule: an /init not newer than the last applied one is ignored", async () => {
    assert.equal((await init(d, { envVars: { REPLAY: "1" }, timestamp: at(t0) }, token)).status, 204);
    assert.deepEqual(await (await envs(d, token)).json(), { KEPT: "yes", OTHER: "1", E2B_SANDBOX: "true" }, "an equal timestamp is ignored");
    assert.equal((await init(d, { envVars: { NEWER: "1" }, timestamp: at(t0 + 1) }, token)).status, 204);
    assert.deepEqual(await (await envs(d, token)).json(), { NEWER: "1", E2B_SANDBOX: "true" }, "a newer one applies");
    // And the newer one is what the next daemon starts from.
    await kill9(d);
    d = await startOn(runDir);
    assert.deepEqual(await (await envs(d, token)).json(), { NEWER: "1", E2B_SANDBOX: "true" });
    assert.equal((await init(d, { envVars: { OLD: "1" }, timestamp: at(t0) }, token)).status, 204);
    assert.deepEqual(await (await envs(d, token)).json(), { NEWER: "1", E2B_SANDBOX: "true" }, "older than the restored timestamp: ignored");
  });

  it("keeps the state in a 0700 directory, in 0600 files", () => {
    const state = join(runDir, "envd-state");
    assert.equal(statSync(state).mode & 0o7777, 0o700);
    for (const f of ["access-token.json", "init.json"]) assert.equal(statSync(join(state, f)).mode & 0o7777, 0o600, f);
  });

  it("a process running as user cannot read the state", () => {
    const state = join(runDir, "envd-state");
    for (const target of [join(state, "access-token.json"), join(state, "init.json")]) {
      const r = spawnSync(AS_USER[0]!, [...AS_USER.slice(1), "cat", target], { encoding: "utf8" });
      assert.notEqual(r.status, 0, `user read ${target}`);
      assert.match(r.stderr, /Permission denied/);
      assert.ok(!r.stdout.includes(token));
    }
    const ls = spawnSync(AS_USER[0]!, [...AS_USER.slice(1), "ls", state], { encoding: "utf8" });
    assert.notEqual(ls.status, 0, "user listed the state directory");
  });
});

describe("a damaged or changed state", () => {
  let runDir: string;
  before(() => {
    runDir = makeRunDir();
  });
  after(() => rmSync(runDir, { recursive: true, force: true }));

  it("a corrupt /init file is a warning: the daemon serves the flags' defaults, the token is still required", async () => {
    let d = await startOn(runDir);
    assert.equal((await init(d, { accessToken: "tok-a", envVars: { A: "1" }, defaultUser: "user" })).status, 204);
    await kill9(d);
    writeFileSync(join(runDir, "envd-state", "init.json"), "{ not json", { mode: 0o600 });
    d = await startOn(runDir);
    try {
      assert.ok(d.logs.some((l) => l.level === 40 && String(l.msg).includes("stored /init state cannot be read")), "warned at start");
      assert.equal((await envs(d)).status, 401, "the token is still required");
      assert.deepEqual(await (await envs(d, "tok-a")).json(), { E2B_SANDBOX: "true" });
      assert.equal(await run(d, "id -un", "tok-a"), "root\n", "the flag's default user");
    } finally {
      await d.stop();
    }
  });

  it("an access token file that cannot be read: the daemon refuses to start (fails closed)", async () => {
    const file = join(runDir, "envd-state", "access-token.json");
    writeFileSync(file, '{"v":1,"tok', { mode: 0o600 });
    await assert.rejects(startOn(runDir), /exited early with 1/);
    // Planted by someone else: not trusted either.
    writeFileSync(file, JSON.stringify({ v: 1, flagTokenSha256: null, token: "planted" }), { mode: 0o600 });
    chownSync(file, 1000, 1000);
    await assert.rejects(startOn(runDir), /exited early with 1/);
    rmSync(file);
    const d = await startOn(runDir);
    try {
      assert.equal((await envs(d)).status, 200, "removed by the operator: no token until /init sets one");
    } finally {
      await d.stop();
    }
  });

  it("an --access-token flag changed since the token was stored wins (rotating a leaked token)", async () => {
    let d = await startOn(runDir);
    assert.equal((await init(d, { accessToken: "from-init" })).status, 204);
    await kill9(d);
    d = await startOn(runDir, ["--access-token", "from-flag"]);
    try {
      assert.equal((await envs(d, "from-init")).status, 401);
      assert.equal((await envs(d, "from-flag")).status, 200);
    } finally {
      await kill9(d);
    }
    d = await startOn(runDir, ["--access-token", "from-flag"]);
    try {
      assert.equal((await envs(d, "from-flag")).status, 200, "the same flag again: still its token");
    } finally {
      await kill9(d);
    }
    // The flag removed again: the flag (none) applies; the token it replaced does not come back.
    d = await startOn(runDir);
    try {
      assert.equal((await envs(d)).status, 200, "no flag, no /init since: no token");
      assert.equal((await init(d, { accessToken: "new-init" })).status, 204, "/init may set one again");
      assert.equal((await envs(d)).status, 401);
    } finally {
      await d.stop();
    }
  });
});

/** Starts a raw upload of `size` bytes to path, sends the first chunk and keeps the request open. */
function startUpload(d: Daemon, path: string, size: number): ClientRequest {
  const req = request(`${d.url}/files?path=${encodeURIComponent(path)}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream", "content-length": String(size) },
  });
  req.on("error", () => {});
  req.write(Buffer.alloc(64 * 1024, 0x61));
  return req;
}

function tempsIn(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes(".envd-upload.") || n.includes(".envd-replace.") || n.includes(".envd-copy-") || n.includes(".e2b-compose."));
}

/** Polls until check() is true; fails with what() after the deadline. */
async function until(check: () => boolean, what: () => string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(what());
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("one daemon per state directory", () => {
  it("a second daemon on the same --run-dir refuses to start; the first keeps serving its state", async () => {
    const runDir = makeRunDir();
    const first = await startOn(runDir);
    try {
      assert.equal((await init(first, { accessToken: "first-token" })).status, 204);
      await assert.rejects(startOn(runDir), /exited early with 1/);
      assert.equal((await envs(first, "first-token")).status, 200);
    } finally {
      await kill9(first);
    }
    // Once the first is gone, the directory is free again (and its token still applies).
    const next = await startOn(runDir);
    try {
      assert.equal((await envs(next)).status, 401);
      assert.equal((await envs(next, "first-token")).status, 200);
    } finally {
      await next.stop();
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});

describe("temporary files of interrupted transfers do not outlive the daemon", () => {
  let runDir: string;
  let work: string;
  before(() => {
    runDir = makeRunDir();
    work = mkdtempSync(join(tmpdir(), "envd-persist-work-"));
  });
  after(() => {
    rmSync(runDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it("an upload cut off (client gone, then the daemon killed -9) leaves no temporary file after the next start", async () => {
    const dir = join(work, "killed");
    let d = await startOn(runDir);
    const req = startUpload(d, join(dir, "big.bin"), 64 * 1024 * 1024);
    await until(() => existsSync(dir) && tempsIn(dir).length === 1, () => `no temporary file in ${dir}`);
    // The daemon dies before it can see the client go.
    d.child.kill("SIGKILL");
    req.destroy();
    await kill9(d);
    assert.equal(tempsIn(dir).length, 1, "the killed daemon left its temporary file (what the next start must clean)");
    // Leftovers of a killed copy and compose in the same directory, and files that only look alike.
    writeFileSync(join(dir, ".envd-copy-0123456789ab"), "x");
    writeFileSync(join(dir, "out.txt.e2b-compose.01234567-89ab-cdef-0123-456789abcdef.tmp"), "x");
    writeFileSync(join(dir, ".envd-copy-mine"), "user data");
    writeFileSync(join(dir, "notes.envd-upload.tmp"), "user data");
    d = await startOn(runDir);
    try {
      await until(() => tempsIn(dir).length === 2, () => `left: ${tempsIn(dir).join(", ")}`);
      assert.deepEqual(tempsIn(dir).sort(), [".envd-copy-mine", "notes.envd-upload.tmp"], "only the daemon's own temporaries are removed");
      assert.ok(!existsSync(join(dir, "big.bin")), "the cut-off upload never became the target");
      // The directory stays on record for the run after: a new leftover there is removed too.
      const again = startUpload(d, join(dir, "big.bin"), 64 * 1024 * 1024);
      await until(() => tempsIn(dir).length === 3, () => "no second temporary file");
      d.child.kill("SIGKILL");
      again.destroy();
      await kill9(d);
      d = await startOn(runDir);
      await until(() => tempsIn(dir).length === 2, () => `left after the second restart: ${tempsIn(dir).join(", ")}`);
    } finally {
      await d.stop();
    }
  });

  it("a graceful SIGTERM mid-upload leaves no temporary file", async () => {
    const dir = join(work, "sigterm");
    const d = await startOn(runDir);
    const req = startUpload(d, join(dir, "big.bin"), 64 * 1024 * 1024);
    await until(() => existsSync(dir) && tempsIn(dir).length === 1, () => `no temporary file in ${dir}`);
    // The client stays connected and silent: the daemon has to end the upload itself.
    assert.equal(await d.stop(), 0);
    req.destroy();
    assert.deepEqual(tempsIn(dir), [], "the stopped daemon removed what it interrupted");
  });
});

/** The envd-ts directories (one per hierarchy) a daemon said it uses: <top>/envd-ts/<pid> → <top>/envd-ts. */
function cgroupTops(d: Daemon): string[] {
  const line = d.logs.find((l) => l.msg === "process limits");
  const text = String(line?.cgroups ?? "");
  return [...new Set([...text.matchAll(/(\/\S+?\/envd-ts)\/(?:pidns\d+-)?\d+/g)].map((m) => m[1]!))];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("cgroup directories of a daemon that is gone", () => {
  it("are removed once empty; a command still in one keeps it and is not killed", async (t) => {
    const runDir = makeRunDir();
    const probe = await startOn(runDir, ["--default-pids-max", "100000"]);
    const tops = cgroupTops(probe);
    await probe.stop();
    if (tops.length === 0) return t.skip("the daemon uses no cgroup hierarchy here");
    // A daemon pid that is certainly dead: a process that has exited and been reaped.
    const dead = spawnSync("true").pid!;
    assert.ok(!alive(dead));
    const gone = tops.map((top) => join(top, String(dead)));
    for (const g of gone) {
      mkdirSync(join(g, "empty-run"), { recursive: true });
      mkdirSync(join(g, "busy-run"));
    }
    // A command that outlived its daemon, in the old daemon's cgroup (the lead's re-adoption relies on it living on).
    const survivor = spawn("sleep", ["600"], { stdio: "ignore" });
    try {
      for (const g of gone) writeFileSync(join(g, "busy-run", "cgroup.procs"), String(survivor.pid));
      let d = await startOn(runDir, ["--default-pids-max", "100000"]);
      try {
        for (const g of gone) {
          assert.ok(!existsSync(join(g, "empty-run")), `${g}/empty-run is removed`);
          assert.ok(existsSync(join(g, "busy-run")), `${g}/busy-run, which holds a task, stays`);
        }
        assert.ok(alive(survivor.pid!), "the command in the old cgroup was not killed");
      } finally {
        await d.stop();
      }
      const ended = new Promise((r) => survivor.once("exit", r));
      survivor.kill("SIGKILL");
      await ended;
      d = await startOn(runDir, ["--default-pids-max", "100000"]);
      try {
        // The kernel empties a cgroup a moment after its last task died.
        for (const g of gone) assert.ok(!existsSync(g), `${g} is removed once empty`);
      } finally {
        await d.stop();
      }
    } finally {
      survivor.kill("SIGKILL");
      for (const g of gone) {
        for (const dir of [join(g, "busy-run"), join(g, "empty-run"), g]) {
          try {
            rmdirSync(dir);
          } catch {
            /* removed by the daemon, as it should */
          }
        }
      }
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});

describe("the clean-up at start cannot be turned against other files", () => {
  it("a recorded directory that a user swapped for a symlink is skipped", async () => {
    const runDir = makeRunDir();
    const work = mkdtempSync(join(tmpdir(), "envd-persist-swap-"));
    chmodSync(work, 0o755);
    const own = join(work, "own");
    mkdirSync(own);
    chownSync(own, 1001, 1001);
    const rootDir = join(work, "root-only");
    mkdirSync(rootDir);
    const decoy = join(rootDir, ".passwd.envd-upload.0123456789ab.tmp");
    writeFileSync(decoy, "root's file that only looks like a temporary");
    try {
      let d = await startOn(runDir);
      const res = await fetch(`${d.url}/files?path=${encodeURIComponent(join(own, "d", "f.txt"))}&username=user`, {
        method: "POST",
        headers: { "content-type": "application/octet-stream" },
        body: "x",
      });
      assert.equal(res.status, 200);
      await kill9(d);
      // The user moves the recorded directory away and puts a symlink to a root-only directory in its place.
      const swap = spawnSync(AS_USER[0]!, [...AS_USER.slice(1), "sh", "-c", `mv ${own}/d ${own}/d.old && ln -s ${rootDir} ${own}/d`], { encoding: "utf8" });
      assert.equal(swap.status, 0, swap.stderr);
      d = await startOn(runDir);
      try {
        await until(() => d.logs.some((l) => String(l.msg).includes("transfers a previous daemon interrupted")), () => "the clean-up did not run");
        assert.ok(existsSync(decoy), "a file outside the recorded directory was removed");
      } finally {
        await d.stop();
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
