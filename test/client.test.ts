// envd-ts/client, the TypeScript client of the extension services, as a user gets it: imported
// by package name (dist/ built by tsc), connected through a real `e2b` Sandbox in debug mode or
// by URL and token, against a real daemon.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, EnvdError, type EnvdClient, type ProcessEvent } from "envd-ts/client";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { e2bSandbox, waitFor } from "./process-helpers.js";
import { haveV1Controllers } from "./limits-helpers.js";

const MiB = 1024 * 1024;
const noV1 = !haveV1Controllers() && "cgroup v1 memory/pids/cpu/cpuacct controllers are not mounted";

/** The EnvdError a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<EnvdError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EnvdError, `an EnvdError, not ${String(err)}`);
    return err;
  }
  assert.fail("the call succeeded");
}

describe("envd-ts/client through an e2b Sandbox (debug mode)", () => {
  let d: Daemon;
  let envd: EnvdClient;
  let asUser: EnvdClient;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    const { sbx } = await e2bSandbox(d);
    envd = connect(sbx);
    asUser = connect(sbx, { user: "user" });
    dir = mkdtempSync(join(tmpdir(), "envd-client-"));
    chmodSync(dir, 0o777);
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("connect(sandbox) reaches the sandbox's daemon, as the SDK's default user or the one given", async () => {
    assert.equal(envd.target.url, d.url);
    const root = await envd.processes.run({ cmd: "id", args: ["-un"] });
    assert.equal(root.stdout, "root\n");
    const user = await asUser.processes.run({ cmd: "id", args: ["-un"] });
    assert.equal(user.stdout, "user\n");
    const health = await envd.system.health();
    assert.equal(health.version.length > 0, true);
  });

  it("a command limited to 64M that allocates 256M ends oom_killed, with its usage", { skip: noV1 }, async () => {
    const r = await asUser.processes.run({ cmd: "perl", args: ["-e", 'my $s = "x" x (256 << 20); print length($s), "\\n"'], limits: { memory: "64M" } });
    assert.equal(r.stdout, "", "the allocation never completed");
    assert.equal(r.exit.outcome, "oom_killed");
    assert.equal(r.exit.signalName, "SIGKILL");
    assert.ok(r.exit.usage.oomKills >= 1);
    assert.ok(r.exit.usage.memoryPeakBytes <= 64 * MiB && r.exit.usage.memoryPeakBytes > 32 * MiB, `peak ${r.exit.usage.memoryPeakBytes}`);
    const [finished] = await asUser.processes.list({ filter: "finished" });
    assert.equal(finished!.exit!.outcome, "oom_killed");
    assert.equal(finished!.execution!.enforcement[0], "memory_max_bytes: cgroup_v1");
  });

  it("re-attaching with replay from the oldest byte returns every byte, in order, on both streams", async () => {
    // 300 KiB of every byte value, split across stdout and stderr, interleaved.
    const file = join(dir, "pattern");
    const script = `for i in $(seq 1 30); do head -c 5120 ${file}; head -c 5120 ${file} >&2; done`;
    const pattern = Buffer.alloc(5120);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + 3) & 0xff;
    writeFileSync(file, pattern);
    const live = await envd.processes.start({ cmd: "bash", args: ["-c", script], tag: "replay-all", stdin: false });
    const first = await live.wait();
    assert.equal(first.exit.outcome, "exited");
    assert.equal(first.output.length, 300 * 1024);

    const again = await envd.processes.attach("replay-all", { from: "oldest" });
    assert.equal(again.offset, 0);
    assert.equal(again.droppedBytes, 0);
    assert.equal(again.info!.state, "stopped");
    const replay = await again.wait();
    assert.ok(Buffer.from(replay.output).equals(Buffer.from(first.output)), "replayed bytes equal the live ones");
    assert.equal(replay.stdout, first.stdout);
    assert.equal(replay.stderr, first.stderr);
    assert.equal(replay.exit.outcome, "exited");
  });

  it("attach to a running process from the oldest byte, then follow it live to its exit", async () => {
    const marker = join(dir, "go");
    const p = await envd.processes.start({ cmd: "bash", args: ["-c", `echo before; while [ ! -e ${marker} ]; do sleep 0.05; done; echo after`], tag: "follow-me", stdin: false });
    await waitFor(async () => (await envd.processes.get("follow-me")).output.totalBytes >= 7, 10_000, "the first line");
    const attached = await envd.processes.attach({ tag: "follow-me" }, { from: "oldest" });
    assert.equal(attached.id, p.id);
    assert.equal(attached.info!.state, "running");
    // Released only once the replayed line arrived, so "after" can only come live.
    const r = await attached.wait((_s, data) => {
      if (Buffer.from(data).toString().includes("before")) writeFileSync(marker, "");
    });
    assert.equal(r.stdout, "before\nafter\n");
    assert.equal(r.exit.exitCode, 0);
    await p.wait();
  });

  it("a restart policy restarts on failure up to its limit; history shows runs, outcome and usage", async () => {
    const p = await envd.processes.start({ cmd: "bash", args: ["-c", "echo run; exit 3"], tag: "flaky", stdin: false, restart: { mode: "on-failure", backoffMs: 10, maxRestarts: 2 } });
    const events: ProcessEvent[] = [];
    for await (const ev of p) events.push(ev);
    assert.deepEqual(events.filter((e) => e.type === "started").map((e) => (e as { restartCount: number }).restartCount), [0, 1, 2]);
    const exits = events.filter((e) => e.type === "exited") as Extract<ProcessEvent, { type: "exited" }>[];
    assert.deepEqual(exits.map((e) => e.final), [false, false, true]);
    const info = (await envd.processes.list({ filter: "finished", tag: "flaky" }))[0]!;
    assert.equal(info.state, "stopped");
    assert.equal(info.restart, "on-failure");
    assert.equal(info.restartCount, 2);
    assert.equal(info.runs.length, 3);
    assert.deepEqual(info.runs.map((r) => r.exit!.exitCode), [3, 3, 3]);
    assert.equal(info.exit!.outcome, "exited");
    assert.equal(info.exit!.exitCode, 3);
    assert.ok(info.usage.source !== "", "usage was read");
    assert.equal(info.cmd, "bash");
  });

  it("any signal by name, and the outcome names it", async () => {
    const p = await envd.processes.start({ cmd: "sleep", args: ["600"], tag: "sleeper", stdin: false });
    const running = await envd.processes.list({ filter: "running", tag: "sleeper" });
    assert.equal(running.length, 1);
    await envd.processes.signal("sleeper", "USR1");
    const r = await p.wait();
    assert.equal(r.exit.outcome, "signaled");
    assert.equal(r.exit.signalName, "SIGUSR1");
  });

  it("errors are EnvdErrors with the Connect code: not_found, invalid_argument", async () => {
    const nf = await rejection(envd.processes.get({ tag: "no-such-process" }));
    assert.equal(nf.code, "not_found");
    assert.equal(nf.connectCode, 5);
    const bad = await rejection(envd.processes.start({ cmd: "true", limits: { memory: "lots" } }));
    assert.equal(bad.code, "invalid_argument");
    const sig = await rejection(envd.processes.signal({ pid: 999_999_999 }, "TERM"));
    assert.equal(sig.code, "not_found");
  });

  it("an AbortSignal cancels a follow; the process runs on", async () => {
    const p = await envd.processes.start({ cmd: "sleep", args: ["600"], tag: "abort-me", stdin: false });
    const ac = new AbortController();
    const attached = await envd.processes.attach("abort-me", { signal: ac.signal });
    const it = attached[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.type, "attached");
    const pending = it.next();
    ac.abort();
    const err = await rejection(pending);
    assert.equal(err.code, "canceled");
    assert.equal((await envd.processes.get("abort-me")).state, "running");
    await envd.processes.signal("abort-me", "KILL");
    assert.equal((await p.wait()).exit.outcome, "signaled");
  });

  it("copies a tree, changes modes, lists it page by page", async () => {
    const src = join(dir, "src");
    mkdirSync(join(src, "sub"), { recursive: true });
    for (let i = 0; i < 25; i++) writeFileSync(join(src, `f${String(i).padStart(2, "0")}`), `file ${i}`);
    writeFileSync(join(src, "sub", "deep"), "deep");
    chmodSync(join(src, "sub", "deep"), 0o750);
    symlinkSync("sub/deep", join(src, "link"));
    const copied = await envd.files.copy(src, join(dir, "dst"));
    assert.deepEqual([copied.files, copied.directories, copied.symlinks], [26, 2, 1]);
    assert.equal(readFileSync(join(dir, "dst", "sub", "deep"), "utf8"), "deep");
    assert.equal(statSync(join(dir, "dst", "sub", "deep")).mode & 0o7777, 0o750);
    assert.equal(readlinkSync(join(dir, "dst", "link")), "sub/deep");
    const exists = await rejection(envd.files.copy(src, join(dir, "dst")));
    assert.equal(exists.code, "already_exists");

    const changed = await envd.files.chmod(join(dir, "dst"), 0o700, { recursive: true });
    assert.ok(changed.changed >= 27);
    assert.equal(statSync(join(dir, "dst", "f00")).mode & 0o777, 0o700);

    const page = await envd.files.listPage(join(dir, "dst"), { limit: 10 });
    assert.equal(page.entries.length, 10);
    assert.equal(page.total, 27);
    assert.notEqual(page.nextPageToken, "");
    const names: string[] = [];
    for await (const e of envd.files.list(join(dir, "dst"), { pageSize: 10 })) names.push(e.name);
    assert.equal(names.length, 27);
    assert.deepEqual(names, [...names].sort());
  });

  it("creates a proxy to a server started in the sandbox, after waiting for its port", async () => {
    const server = await envd.processes.start({
      cmd: "node",
      args: ["-e", "require('http').createServer((q, s) => s.end('hello ' + q.url)).listen(0, '127.0.0.1', function () { console.log(this.address().port) })"],
      tag: "web",
      stdin: false,
    });
    let port = 0;
    for await (const ev of server) {
      if (ev.type === "output") {
        port = Number(Buffer.from(ev.data).toString().trim());
        break;
      }
    }
    assert.ok(port > 0);
    const waited = await envd.proxies.waitForPort(port, { waitMs: 10_000 });
    assert.ok(waited.attempts >= 1);
    const listening = await envd.proxies.listeningPorts();
    assert.ok(listening.some((l) => l.port === port));
    const proxy = await envd.proxies.create({ id: "web-proxy", type: "http", local: "127.0.0.1:0", remote: `http://127.0.0.1:${port}/base` });
    assert.match(proxy.boundAddress, /^127\.0\.0\.1:\d+$/);
    const res = await fetch(`http://${proxy.boundAddress}/x`);
    assert.equal(await res.text(), "hello /base/x");
    const listed = (await envd.proxies.list()).find((p) => p.id === "web-proxy");
    assert.equal(listed?.stats.requests, 1);
    await envd.proxies.delete("web-proxy");
    assert.equal((await rejection(envd.proxies.delete("web-proxy"))).code, "not_found");
    await envd.processes.signal("web", "TERM");
  });

  it("streams resource usage samples until the consumer stops", async () => {
    const samples = [];
    for await (const u of envd.system.watchUsage({ intervalMs: 100 })) {
      samples.push(u);
      if (samples.length === 3) break;
    }
    assert.equal(samples.length, 3);
    assert.ok(samples.every((s) => s.memoryTotalBytes > 0n && s.cpuCount > 0));
    const info = await envd.system.info();
    assert.ok(info.cpu!.count > 0);
  });
});

describe("envd-ts/client by URL and access token", () => {
  let d: Daemon;

  before(async () => {
    d = await startDaemon({ args: ["--access-token", "s3cret"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("sends the token; without it every call is unauthenticated", async () => {
    const good = connect({ url: d.url, accessToken: "s3cret", user: "user" });
    assert.equal((await good.processes.run({ cmd: "id", args: ["-un"] })).stdout, "user\n");
    const bad = connect({ url: d.url, accessToken: "wrong" });
    assert.equal((await rejection(bad.processes.list())).code, "unauthenticated");
    assert.equal((await rejection(bad.system.info())).code, "unauthenticated");
  });

  it("an unreachable daemon is unavailable", async () => {
    const gone = connect({ url: "http://127.0.0.1:1" });
    assert.equal((await rejection(gone.processes.list())).code, "unavailable");
  });
});
