// WatchDir and the polling watchers against a real daemon through a Connect
// client: event mapping and order for real shell commands, recursion,
// validation errors, keepalives, bounded queues, and no fd leaks.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EventType, Filesystem, type WatchDirResponse } from "../src/gen/filesystem_pb.js";
import { envelope, splitFrames } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

type Ev = [string, string];

function label(t: EventType): string {
  return EventType[t]!;
}

/** A running WatchDir stream that collects its events. */
class Watch {
  readonly events: Ev[] = [];
  readonly responses: WatchDirResponse[] = [];
  readonly ended: Promise<ConnectError | undefined>;
  private readonly ac = new AbortController();
  private waiters: (() => void)[] = [];
  readonly started: Promise<void>;

  constructor(fs: Client<typeof Filesystem>, req: { path: string; recursive?: boolean; includeEntry?: boolean }, headers: Record<string, string> = {}) {
    let onStart!: () => void;
    this.started = new Promise((r) => (onStart = r));
    this.ended = (async () => {
      try {
        for await (const res of fs.watchDir(req, { signal: this.ac.signal, headers })) {
          this.responses.push(res);
          if (res.event.case === "start") onStart();
          if (res.event.case === "filesystem") this.events.push([label(res.event.value.type), res.event.value.name]);
          for (const w of this.waiters.splice(0)) w();
        }
        return undefined;
      } catch (err) {
        onStart();
        return ConnectError.from(err);
      } finally {
        for (const w of this.waiters.splice(0)) w();
      }
    })();
  }

  /** Waits until `pred` holds for the events so far. */
  async until(pred: (events: Ev[]) => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.events)) {
      if (Date.now() > deadline) throw new Error(`timed out; events so far: ${JSON.stringify(this.events)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  stop(): void {
    this.ac.abort();
  }
}

/** Each event of `seen` appears in `canonical`, in the same order (a subsequence). */
function isSubsequence(seen: Ev[], canonical: Ev[]): boolean {
  let i = 0;
  for (const e of seen) {
    while (i < canonical.length && (canonical[i]![0] !== e[0] || canonical[i]![1] !== e[1])) i++;
    if (i === canonical.length) return false;
    i++;
  }
  return true;
}

function inotifyFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:inotify") n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

async function settle(ms = 150): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

describe("WatchDir", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    dir = mkdtempSync(join(tmpdir(), "watch-test-"));
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  // The canonical history of the command; a watcher may miss the parts that happen
  // before it has caught up with a new directory, but never reorders or invents.
  const CANONICAL: Ev[] = [
    ["CREATE", "a"],
    ["CREATE", "a/b"],
    ["CREATE", "a/b/c"],
    ["CREATE", "a/b/c/f"],
    ["CHMOD", "a/b/c/f"],
    ["CHMOD", "a/b/c/f"],
    ["RENAME", "a/b/c/f"],
    ["CREATE", "a/g"],
    ["REMOVE", "a/g"],
  ];

  it("a recursive watcher sees `mkdir -p a/b/c && touch … && chmod … && mv … && rm …` in order", async () => {
    const base = mkdtempSync(join(dir, "order-"));
    const w = new Watch(fs, { path: base, recursive: true });
    await w.started;
    execFileSync("sh", ["-c", "mkdir -p a/b/c && touch a/b/c/f && chmod 600 a/b/c/f && mv a/b/c/f a/g && rm a/g"], { cwd: base });
    await w.until((ev) => ev.some(([, n]) => n === "a/b/c"));
    await settle(300);
    w.stop();
    assert.equal((await w.ended)?.code, Code.Canceled, "only our own abort ends it");
    assert.equal(w.responses[0]!.event.case, "start", "start{} comes first");
    assert.deepEqual(w.events[0], ["CREATE", "a"]);
    assert.ok(isSubsequence(w.events, CANONICAL), `out of order or unexpected: ${JSON.stringify(w.events)}`);
    for (const n of ["a/b", "a/b/c"]) assert.ok(w.events.some((e) => e[0] === "CREATE" && e[1] === n), `missing CREATE ${n}: ${JSON.stringify(w.events)}`);
  });

  it("with the steps spaced out, the watcher sees every event exactly once, in order", async () => {
    const base = mkdtempSync(join(dir, "spaced-"));
    const w = new Watch(fs, { path: base, recursive: true });
    await w.started;
    const steps = ["mkdir -p a/b/c", "touch a/b/c/f", "chmod 600 a/b/c/f", "mv a/b/c/f a/g", "rm a/g"];
    for (const step of steps) {
      execFileSync("sh", ["-c", step], { cwd: base });
      await settle(120);
    }
    await w.until((ev) => ev.some((e) => e[0] === "REMOVE"));
    await settle(100);
    w.stop();
    assert.deepEqual(w.events, CANONICAL);
  });

  it("synthetic CREATEs cover what a new directory already holds; renamed-in directories get none", async () => {
    const base = mkdtempSync(join(dir, "synthetic-"));
    const outside = mkdtempSync(join(dir, "outside-"));
    mkdirSync(join(outside, "moved/inner"), { recursive: true });
    writeFileSync(join(outside, "moved/inner/x"), "");
    const w = new Watch(fs, { path: base, recursive: true });
    await w.started;
    // Built elsewhere and renamed in: one CREATE, but its subdirectories are watched.
    execFileSync("mv", [join(outside, "moved"), join(base, "moved")]);
    await w.until((ev) => ev.length >= 1);
    await settle();
    execFileSync("sh", ["-c", "echo more >> moved/inner/x"], { cwd: base });
    await w.until((ev) => ev.some((e) => e[0] === "WRITE"));
    // Renamed inside the tree: RENAME old, CREATE new, and the watches follow.
    execFileSync("mv", [join(base, "moved"), join(base, "renamed")]);
    await settle();
    writeFileSync(join(base, "renamed/inner/y"), "");
    await w.until((ev) => ev.some((e) => e[1] === "renamed/inner/y"));
    await settle();
    w.stop();
    assert.deepEqual(w.events, [
      ["CREATE", "moved"],
      ["WRITE", "moved/inner/x"],
      ["RENAME", "moved"],
      ["CREATE", "renamed"],
      ["CREATE", "renamed/inner/y"],
    ]);
  });

  it("without recursion only the directory's own entries are reported; names are relative", async () => {
    const base = mkdtempSync(join(dir, "flat-"));
    mkdirSync(join(base, "sub"));
    const w = new Watch(fs, { path: base, includeEntry: true });
    await w.started;
    writeFileSync(join(base, "sub/ignored"), "x");
    writeFileSync(join(base, "top.txt"), "x");
    execFileSync("chmod", ["700", base]);
    await w.until((ev) => ev.some((e) => e[0] === "CHMOD" && e[1] === "."));
    await settle();
    w.stop();
    assert.deepEqual(w.events, [
      ["CREATE", "top.txt"],
      ["WRITE", "top.txt"],
      ["CHMOD", "."],
    ]);
    const create = w.responses.find((r) => r.event.case === "filesystem" && r.event.value.type === EventType.CREATE);
    assert.equal(create?.event.case === "filesystem" && create.event.value.entry?.path, join(base, "top.txt"));
  });

  it("includeEntry attaches entries to CREATE, WRITE and CHMOD only", async () => {
    const base = mkdtempSync(join(dir, "entries-"));
    const w = new Watch(fs, { path: base, includeEntry: true });
    await w.started;
    execFileSync("sh", ["-c", "echo x > f && chmod 600 f"], { cwd: base });
    await w.until((ev) => ev.some((e) => e[0] === "CHMOD"));
    execFileSync("sh", ["-c", "mv f g && rm g"], { cwd: base });
    await w.until((ev) => ev.some((e) => e[0] === "REMOVE"));
    w.stop();
    for (const r of w.responses) {
      if (r.event.case !== "filesystem") continue;
      const ev = r.event.value;
      if (ev.type === EventType.REMOVE || ev.type === EventType.RENAME) assert.equal(ev.entry, undefined, `${label(ev.type)} ${ev.name}`);
    }
    const chmod = w.responses.find((r) => r.event.case === "filesystem" && r.event.value.type === EventType.CHMOD);
    assert.equal(chmod?.event.case === "filesystem" && chmod.event.value.entry?.permissions, "-rw-------");
  });

  it("rejects missing paths and files with envd's codes and texts", async () => {
    const missing = join(dir, "missing");
    const w1 = new Watch(fs, { path: missing });
    const e1 = await w1.ended;
    assert.equal(e1?.code, Code.NotFound);
    assert.match(e1!.rawMessage, new RegExp(`^path ${missing} not found: stat ${missing}: no such file or directory$`));
    const file = join(dir, "plain-file");
    writeFileSync(file, "");
    const e2 = await new Watch(fs, { path: file }).ended;
    assert.equal(e2?.code, Code.InvalidArgument);
    assert.equal(e2!.rawMessage, `path ${file} not a directory: %!w(<nil>)`);
    assert.equal(w1.responses.length, 0, "nothing, not even start, before a validation error");
  });

  it("sends keepalives on an idle stream at the client's interval", async () => {
    const base = mkdtempSync(join(dir, "idle-"));
    const w = new Watch(fs, { path: base }, { "keepalive-ping-interval": "1" });
    await w.started;
    const deadline = Date.now() + 4000;
    while (!w.responses.some((r) => r.event.case === "keepalive") && Date.now() < deadline) await settle(100);
    w.stop();
    assert.ok(w.responses.some((r) => r.event.case === "keepalive"));
    assert.equal(w.responses[0]!.event.case, "start");
  });

  it("closes the inotify fd when the client goes away", async () => {
    const base = mkdtempSync(join(dir, "leak-"));
    // Streams the earlier tests aborted close their fds a moment later.
    const settleDeadline = Date.now() + 3000;
    while (inotifyFds(d.pid) !== 0 && Date.now() < settleDeadline) await settle(50);
    const before = inotifyFds(d.pid);
    assert.equal(before, 0, "no watcher is left open by the earlier tests");
    const watches = [new Watch(fs, { path: base, recursive: true }), new Watch(fs, { path: base })];
    await Promise.all(watches.map((w) => w.started));
    assert.equal(inotifyFds(d.pid), before + 2);
    for (const w of watches) w.stop();
    await Promise.all(watches.map((w) => w.ended));
    const deadline = Date.now() + 3000;
    while (inotifyFds(d.pid) !== before && Date.now() < deadline) await settle(50);
    assert.equal(inotifyFds(d.pid), before);
  });

  it("CreateWatcher / GetWatcherEvents / RemoveWatcher", async () => {
    const base = mkdtempSync(join(dir, "poll-"));
    const { watcherId } = await fs.createWatcher({ path: base, recursive: true });
    assert.match(watcherId, /^w[a-z0-9]{20}$/);
    mkdirSync(join(base, "d"));
    await settle();
    writeFileSync(join(base, "d/f"), "x");
    await settle();
    const first = await fs.getWatcherEvents({ watcherId });
    assert.deepEqual(
      first.events.map((e) => [label(e.type), e.name]),
      [
        ["CREATE", "d"],
        ["CREATE", "d/f"],
        ["WRITE", "d/f"],
      ],
    );
    assert.deepEqual((await fs.getWatcherEvents({ watcherId })).events, [], "events are handed out once");
    await fs.removeWatcher({ watcherId });
    const gone = await fs.getWatcherEvents({ watcherId }).catch((e) => ConnectError.from(e));
    assert.ok(gone instanceof ConnectError);
    assert.equal(gone.code, Code.NotFound);
    assert.equal(gone.rawMessage, `watcher with id ${watcherId} not found`);
    const removed = await fs.removeWatcher({ watcherId }).then(
      () => undefined,
      (e) => ConnectError.from(e),
    );
    assert.equal(removed?.code, Code.NotFound);
  });
});

describe("bounded watchers", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let dir: string;

  before(async () => {
    d = await startDaemon({ args: ["--watch-queue-max", "20"] });
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    dir = mkdtempSync(join(tmpdir(), "watch-bound-"));
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("a polling watcher that overflows reports resource_exhausted on every call", async () => {
    const base = mkdtempSync(join(dir, "poll-"));
    const { watcherId } = await fs.createWatcher({ path: base });
    const few = mkdtempSync(join(dir, "few-"));
    const { watcherId: calm } = await fs.createWatcher({ path: few });
    for (let i = 0; i < 30; i++) writeFileSync(join(base, `f${i}`), "");
    writeFileSync(join(few, "one"), "");
    await settle(200);
    for (let i = 0; i < 2; i++) {
      const err = await fs.getWatcherEvents({ watcherId }).catch((e) => ConnectError.from(e));
      assert.ok(err instanceof ConnectError, "must fail, not return a truncated list");
      assert.equal(err.code, Code.ResourceExhausted);
      assert.equal(err.rawMessage, "watcher event queue overflowed");
    }
    assert.deepEqual(
      (await fs.getWatcherEvents({ watcherId: calm })).events.map((e) => [label(e.type), e.name]),
      [["CREATE", "one"]],
      "other watchers are unaffected",
    );
    await fs.removeWatcher({ watcherId });
    await fs.removeWatcher({ watcherId: calm });
  });

  it("a stream whose client stops reading ends with resource_exhausted", async () => {
    const base = mkdtempSync(join(dir, "stream-"));
    const ac = new AbortController();
    const stream = fs.watchDir({ path: base, includeEntry: true }, { signal: ac.signal })[Symbol.asyncIterator]();
    assert.equal((await stream.next()).value?.event.case, "start");
    // Many events (~300 bytes each with entries) while we do not read: the socket
    // buffers fill, backpressure stops the stream, then the bounded queue overflows.
    execFileSync("sh", ["-c", "i=0; while [ $i -lt 10000 ]; do : > f$i; i=$((i+1)); done"], { cwd: base });
    await settle(300);
    let err: ConnectError | undefined;
    let n = 0;
    try {
      for (;;) {
        const r = await stream.next();
        if (r.done) break;
        n++;
      }
    } catch (e) {
      err = ConnectError.from(e);
    }
    ac.abort();
    assert.equal(err?.code, Code.ResourceExhausted, `got ${n} events and ${String(err)}`);
    assert.match(err?.rawMessage ?? "", /^watcher event queue overflowed/);
    assert.ok(n < 10000, "events were dropped, and the client was told");
  });
});

describe("WatchDir lifetime", () => {
  it("ends with deadline_exceeded at the client's deadline", async () => {
    const d = await startDaemon();
    const dir = mkdtempSync(join(tmpdir(), "watch-deadline-"));
    try {
      const started = Date.now();
      const raw = await fetch(`${d.url}/filesystem.Filesystem/WatchDir`, {
        method: "POST",
        headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-timeout-ms": "400" },
        body: new Uint8Array(envelope({ path: dir })),
      });
      const frames = splitFrames(Buffer.from(await raw.arrayBuffer())).frames;
      assert.ok(Date.now() - started >= 350);
      assert.equal(frames.at(-1)?.flags, 2, "the stream ends with an end-stream frame");
      const end = frames.at(-1)!.data.toString();
      assert.match(end, /"code":"deadline_exceeded"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      assert.equal(await d.stop(), 0);
    }
  });

  it("daemon shutdown ends open streams and the daemon exits cleanly", async () => {
    const d = await startDaemon();
    const dir = mkdtempSync(join(tmpdir(), "watch-shutdown-"));
    try {
      const fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
      const w = new Watch(fs, { path: dir, recursive: true });
      await w.started;
      await fs.createWatcher({ path: dir });
      const code = await d.stop();
      assert.equal(code, 0);
      const err = await w.ended;
      assert.ok(err === undefined || err.code === Code.Unavailable || err.code === Code.Canceled || err.code === Code.Unknown, String(err));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
