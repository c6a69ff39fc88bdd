// Faults of the machine and of the children: a child killed by SIGKILL, children that close
// their output early, a disk that fills up mid-upload, running out of file descriptors under a
// low open-files limit, and the inotify instance and watch limits. Each gives a clean error and
// the daemon recovers once the resource is free again.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect as tcpConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectStream, envelope, splitFrames } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest, leftoverTemps, multipart } from "./helpers/files-http.js";
import { basic, fdKinds, health, readProcessEvents, startCommand, unaryJson, waitFor } from "./helpers/hostile.js";

const MIB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;

describe("children that misbehave", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d?.stop(), 0);
  });

  it("a child killed by SIGKILL from outside: the stream ends with 'signal: killed'", async () => {
    const res = await startCommand(d.url, "echo up; exec sleep 30");
    let pid = 0;
    const events = await readProcessEvents(res, (ev) => {
      const start = ev.find((e) => e.kind === "start");
      if (start && !pid && ev.some((e) => e.text?.includes("up"))) {
        pid = start.json.start.pid;
        process.kill(pid, "SIGKILL");
      }
      return ev.some((e) => e.kind === "end");
    });
    const end = events.find((e) => e.kind === "end")!.json.end;
    assert.equal(end.status, "signal: killed");
    assert.equal(end.exited, undefined);
    assert.equal(await health(d.url), 204);
  });

  it("a child that closes stdout early but keeps running: stderr still flows, the end comes when it exits", async () => {
    const res = await startCommand(d.url, "exec 1>&-; echo first >&2; sleep 0.7; echo last >&2; exit 3");
    const events = await readProcessEvents(res);
    const stderr = events.filter((e) => e.kind === "stderr").map((e) => e.text).join("");
    assert.equal(stderr, "first\nlast\n");
    const endAt = events.findIndex((e) => e.kind === "end");
    assert.ok(endAt > events.findIndex((e) => e.text?.includes("last")));
    assert.equal(events[endAt]!.json.end.exitCode, 3);
  });

  it("a child that closes stdin, stdout and stderr, and a PTY child that closes its terminal: both end with their codes", async () => {
    const piped = await readProcessEvents(await startCommand(d.url, "exec 0<&- 1>&- 2>&-; sleep 0.5; exit 5"));
    assert.equal(piped.find((e) => e.kind === "end")?.json.end.exitCode, 5);
    const pty = await readProcessEvents(await startCommand(d.url, "exec 0<&- 1>&- 2>&-; sleep 0.5; exit 6", { pty: true }));
    assert.equal(pty.find((e) => e.kind === "end")?.json.end.exitCode, 6);
  });

  it("a child that floods a client that does not read is held back (backpressure), and others are served meanwhile", async () => {
    const ac = new AbortController();
    const res = await startCommand(d.url, "cat /dev/zero", { signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read(); // started, then nothing is read any more
    const before = process.memoryUsage().rss;
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await health(d.url, 3000), 204);
    const other = await readProcessEvents(await startCommand(d.url, "echo other client"));
    assert.ok(other.some((e) => e.text === "other client\n"));
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.pid}/status`, "utf8"))![1]) / 1024;
    assert.ok(rss < 400, `daemon RSS ${rss.toFixed(0)} MiB while a child floods`);
    void before;
    ac.abort();
    const r = await unaryJson(d.url, "process.Process/List", {}, { authorization: basic("user") });
    for (const p of r.json.processes ?? []) await unaryJson(d.url, "process.Process/SendSignal", { process: { pid: p.pid }, signal: "SIGNAL_SIGKILL" }, { authorization: basic("user") });
  });
});

describe("a disk that fills up", { skip: isRoot ? false : "needs root to mount a small tmpfs" }, () => {
  let d: Daemon;
  let dir: string;
  let small: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "envd-faults-disk-"));
    small = join(dir, "small");
    mkdirSync(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
    d = await startDaemon();
  });
  after(async () => {
    const code = await d?.stop();
    spawnSync("umount", [small]);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0);
  });

  it("mid-upload: 507, the old file intact, no temporary left, no descriptor leaked", async () => {
    const target = join(small, "data.txt");
    writeFileSync(target, "old\n");
    const fdsBefore = fdKinds(d.pid).file;
    const raw = await httpRequest(`${d.url}/files?path=${encodeURIComponent(target)}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(8 * MIB, 1) });
    assert.equal(raw.status, 507, raw.text);
    const { body, contentType } = multipart([{ name: "file", filename: target, content: Buffer.alloc(8 * MIB, 2) }]);
    const mp = await httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": contentType }, body });
    assert.equal(mp.status, 507, mp.text);
    assert.equal(readFileSync(target, "utf8"), "old\n");
    assert.deepEqual(leftoverTemps(small), []);
    assert.ok(await waitFor(() => fdKinds(d.pid).file <= fdsBefore, 3000));
  });

  it("a sandboxed command fills the disk: it gets ENOSPC, uploads get 507, and all works again once space is freed", async () => {
    const events = await readProcessEvents(await startCommand(d.url, `head -c 8M /dev/zero > ${small}/fill; echo rc=$?`, { user: "root" }));
    assert.ok(events.some((e) => e.kind === "stderr" && /No space left/.test(e.text ?? "")));
    assert.ok(events.some((e) => e.text?.includes("rc=1")));
    const up = await httpRequest(`${d.url}/files?path=${encodeURIComponent(join(small, "more"))}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(64 * 1024) });
    assert.equal(up.status, 507);
    assert.equal((await unaryJson(d.url, "filesystem.Filesystem/Remove", { path: join(small, "fill") })).status, 200);
    const again = await httpRequest(`${d.url}/files?path=${encodeURIComponent(join(small, "more"))}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(64 * 1024) });
    assert.equal(again.status, 200, again.text);
  });
});

describe("EMFILE under a low open-files limit (prlimit --nofile=192:192)", () => {
  // 192, not 64: Node's ESM loader opens ~150 module files at once while the daemon starts.
  const LIMIT = 192;
  let d: Daemon;
  let agent: Agent;
  const held: Socket[] = [];
  const file = join(tmpdir(), `envd-emfile-${process.pid}.txt`);

  before(async () => {
    writeFileSync(file, "download me\n");
    // The connection cap (which would evict idle connections before they fill the table) is lifted:
    // this test fills the descriptor table with connections on purpose.
    d = await startDaemon({ wrapper: ["prlimit", `--nofile=${LIMIT}:${LIMIT}`, "--"], args: ["--max-connections", "100000", "--unauthenticated-idle-seconds", "600"] });
    // One keep-alive connection opened before the descriptors run out: requests can still arrive on it.
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal(await call("GET", "/health").then((r) => r.status), 204);
  });
  after(async () => {
    for (const s of held) s.destroy();
    agent?.destroy();
    rmSync(file, { force: true });
    rmSync(`${file}.up`, { force: true });
    assert.equal(await d?.stop(), 0);
  });

  function call(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<{ status: number | string; body: Buffer }> {
    return new Promise((resolve) => {
      const req = request(`${d.url}${path}`, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      });
      req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? "error", body: Buffer.alloc(0) }));
      req.setTimeout(10_000, () => req.destroy(Object.assign(new Error("timeout"), { code: "TIMEOUT" })));
      req.end(body);
    });
  }

  const startBody = (pty: boolean) => envelope({ process: { cmd: "/bin/echo", args: ["hi"] }, ...(pty ? { pty: { size: { cols: 80, rows: 24 } } } : {}) });
  const streamHeaders = { "content-type": "application/connect+json", authorization: basic("user") };
  const endError = (body: Buffer) => {
    const end = splitFrames(body).frames.find((f) => f.flags & 2);
    return end ? JSON.parse(end.data.toString()).error : undefined;
  };

  async function assertStartsFailExhausted(): Promise<void> {
    for (const pty of [false, true]) {
      const r = await call("POST", "/process.Process/Start", streamHeaders, startBody(pty));
      assert.equal(r.status, 200);
      const err = endError(r.body);
      assert.equal(err?.code, "resource_exhausted", `${pty ? "PTY" : "pipe"} start: ${JSON.stringify(err)}`);
    }
  }

  /** Descriptors below the limit: the slots the kernel can hand out (an inherited one may sit above it). */
  const slotsUsed = () => readdirSync(`/proc/${d.pid}/fd`).filter((fd) => Number(fd) < LIMIT).length;

  /** Opens connections to the daemon until it holds every descriptor its limit allows. */
  async function takeEveryDescriptor(): Promise<void> {
    for (let opened = 0; slotsUsed() < LIMIT && opened < LIMIT * 2; opened++) {
      const s = tcpConnect(d.port, "127.0.0.1");
      s.on("error", () => {});
      held.push(s);
      await new Promise((r) => s.once("connect", r).once("error", r));
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  it("with every descriptor taken: new connections are refused, requests on an open one get clean errors", async () => {
    await takeEveryDescriptor();
    assert.equal(slotsUsed(), LIMIT, `the daemon holds ${slotsUsed()} of ${LIMIT} descriptors`);
    // A new connection is accepted and closed at once (libuv's EMFILE reserve), never left hanging.
    const fresh = await health(d.url, 5000);
    assert.notEqual(fresh, "timeout");
    // On the open connection: processes fail with resource_exhausted, the rest answers or fails cleanly.
    await assertStartsFailExhausted();
    // /etc/passwd looks changed, so the daemon re-reads it and fails: the last good tables still name `user`.
    const passwd = statSync("/etc/passwd");
    utimesSync("/etc/passwd", passwd.atime, new Date(passwd.mtimeMs + 1000));
    try {
      await new Promise((r) => setTimeout(r, 1100));
      await assertStartsFailExhausted();
    } finally {
      utimesSync("/etc/passwd", passwd.atime, passwd.mtime);
    }
    // Each request runs with every slot taken again: it succeeds or says what ran out, with the status its route uses.
    for (const [method, path, body, failure] of [
      ["GET", `/files?path=${encodeURIComponent(file)}`, undefined, 500],
      ["POST", `/files?path=${encodeURIComponent(file)}.up`, "x", 500],
      ["POST", "/filesystem.Filesystem/ListDir", '{"path":"/tmp"}', 429],
      ["POST", "/filesystem.Filesystem/CreateWatcher", '{"path":"/tmp"}', 429],
      ["GET", "/metrics", undefined, 500],
    ] as const) {
      await takeEveryDescriptor();
      const r = await call(method, path, body ? { "content-type": path.startsWith("/files?") ? "application/octet-stream" : "application/json" } : {}, body);
      const text = r.body.toString();
      if (r.status === 200) continue;
      assert.equal(r.status, failure, `${method} ${path}: ${r.status} ${text}`);
      assert.match(text, /too many open files/, `${method} ${path}`);
      if (failure === 429) assert.equal(JSON.parse(text).code, "resource_exhausted");
    }
  });

  it("once descriptors free up, everything works again: connections, pipes, PTYs, uploads, multipart, downloads", async () => {
    for (const s of held.splice(0)) s.destroy();
    assert.ok(await waitFor(() => fdKinds(d.pid).total < 60, 5000), JSON.stringify(fdKinds(d.pid)));
    assert.equal(await health(d.url), 204);
    for (const pty of [false, true]) {
      const res = await connectStream(`${d.url}/process.Process/Start`, pty ? { process: { cmd: "/bin/echo", args: ["hi"] }, pty: { size: { cols: 80, rows: 24 } } } : { process: { cmd: "/bin/echo", args: ["hi"] } }, { authorization: basic("user") });
      const events = await readProcessEvents(res);
      assert.ok(events.some((e) => e.text?.includes("hi")), `${pty ? "PTY" : "pipe"}: ${JSON.stringify(events)}`);
    }
    const up = await httpRequest(`${d.url}/files?path=${encodeURIComponent(file)}.up`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "up\n" });
    assert.equal(up.status, 200);
    const { body, contentType } = multipart([{ name: "file", filename: `${file}.up`, content: "multipart\n" }]);
    assert.equal((await httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": contentType }, body })).status, 200);
    const down = await httpRequest(`${d.url}/files?path=${encodeURIComponent(file)}`);
    assert.equal(down.text, "download me\n");
    assert.equal(down.headers["content-type"], "text/plain; charset=utf-8");
    assert.ok(!d.logs.some((l) => /uncaught|unhandled/.test(String(l.msg))), "no uncaught errors");
  });
});

const INSTANCES = 3;
const userns = spawnSync("unshare", ["--user", "--map-root-user", "sh", "-c", `echo ${INSTANCES} > /proc/sys/user/max_inotify_instances`]).status === 0;

describe("inotify instance and watch limits (lowered in a user namespace)", { skip: userns ? false : "user namespaces are not available here" }, () => {
  let d: Daemon;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "envd-faults-inotify-"));
    for (let i = 0; i < 8; i++) mkdirSync(join(dir, `d${i}`));
    d = await startDaemon({
      wrapper: ["unshare", "--user", "--map-root-user", "sh", "-c", `echo ${INSTANCES} > /proc/sys/user/max_inotify_instances && echo 6 > /proc/sys/user/max_inotify_watches && exec "$@"`, "sh"],
    });
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d?.stop(), 0);
  });

  it("past the instance limit: resource_exhausted naming fs.inotify.max_user_instances, for polling and streaming watchers; recovers after RemoveWatcher", async () => {
    const ids: string[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      const r = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: join(dir, `d${i}`) });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      ids.push(r.json.watcherId);
    }
    const over = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: dir });
    assert.equal(over.json.code, "resource_exhausted");
    assert.match(over.json.message, /fs\.inotify\.max_user_instances/);
    const res = await connectStream(`${d.url}/filesystem.Filesystem/WatchDir`, { path: dir });
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(endError(body)?.code, "resource_exhausted");
    await unaryJson(d.url, "filesystem.Filesystem/RemoveWatcher", { watcherId: ids.pop() });
    const again = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: dir });
    assert.equal(again.status, 200);
    ids.push(again.json.watcherId);
    for (const id of ids) await unaryJson(d.url, "filesystem.Filesystem/RemoveWatcher", { watcherId: id });
  });

  it("past the watch limit: a recursive watch fails naming fs.inotify.max_user_watches, and a smaller one works right after", async () => {
    const over = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: dir, recursive: true });
    assert.equal(over.json.code, "resource_exhausted");
    assert.match(over.json.message, /fs\.inotify\.max_user_watches/);
    const ok = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: join(dir, "d0"), recursive: true });
    assert.equal(ok.status, 200);
    await unaryJson(d.url, "filesystem.Filesystem/RemoveWatcher", { watcherId: ok.json.watcherId });
    // libuv closes the descriptor once it lets go of the poll handle: shortly after.
    assert.ok(await waitFor(() => fdKinds(d.pid).inotify === 0, 3000), `inotify fds: ${fdKinds(d.pid).inotify}`);
  });

  function endError(body: Buffer) {
    const end = splitFrames(body).frames.find((f) => f.flags & 2);
    return end ? JSON.parse(end.data.toString()).error : undefined;
  }
});
