// Kernel limits of inotify: the watch limit (ENOSPC from inotify_add_watch) and
// the kernel queue overflow (IN_Q_OVERFLOW) become resource_exhausted errors a
// client can act on. The watch limit is lowered for real inside a user namespace
// (/proc/sys/user/max_inotify_watches is per namespace), so the rest of the
// machine is not affected.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Filesystem } from "../src/gen/filesystem_pb.js";
import { createLogger } from "../src/log.js";
import { DirWatcher } from "../src/filesystem/watch/dir-watcher.js";
import { IN, parseInotifyBatch } from "../src/filesystem/watch/inotify.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const WATCH_LIMIT = 3;
const userns = spawnSync("unshare", ["--user", "--map-root-user", "sh", "-c", `echo ${WATCH_LIMIT} > /proc/sys/user/max_inotify_watches`]).status === 0;

async function firstError(stream: AsyncIterable<unknown>): Promise<ConnectError | undefined> {
  try {
    for await (const _ of stream) {
      /* drain */
    }
    return undefined;
  } catch (err) {
    return ConnectError.from(err);
  }
}

describe("inotify watch limit", { skip: userns ? false : "user namespaces are not available here" }, () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let dir: string;

  before(async () => {
    d = await startDaemon({
      wrapper: ["unshare", "--user", "--map-root-user", "sh", "-c", `echo ${WATCH_LIMIT} > /proc/sys/user/max_inotify_watches && exec "$@"`, "sh"],
    });
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    dir = mkdtempSync(join(tmpdir(), "watch-limit-"));
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("a recursive watch over more directories than the limit fails before start, naming the sysctl", async () => {
    const base = join(dir, "wide");
    for (let i = 0; i < WATCH_LIMIT + 2; i++) mkdirSync(join(base, `d${i}`), { recursive: true });
    const err = await firstError(fs.watchDir({ path: base, recursive: true }));
    assert.equal(err?.code, Code.ResourceExhausted);
    assert.match(err!.rawMessage, /fs\.inotify\.max_user_watches/);
    const poll = await fs.createWatcher({ path: base, recursive: true }).catch((e) => ConnectError.from(e));
    assert.ok(poll instanceof ConnectError);
    assert.equal(poll.code, Code.ResourceExhausted);
    // The failed attempts released their watches: a plain watch still works.
    const { watcherId } = await fs.createWatcher({ path: base });
    await fs.removeWatcher({ watcherId });
  });

  it("a running recursive watch that hits the limit ends with the same error", async () => {
    const base = join(dir, "grow");
    mkdirSync(base);
    const ac = new AbortController();
    const stream = fs.watchDir({ path: base, recursive: true }, { signal: ac.signal });
    const it = stream[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.event.case, "start");
    for (let i = 0; i < WATCH_LIMIT + 1; i++) mkdirSync(join(base, `n${i}`));
    let err: ConnectError | undefined;
    try {
      for (;;) if ((await it.next()).done) break;
    } catch (e) {
      err = ConnectError.from(e);
    }
    ac.abort();
    assert.equal(err?.code, Code.ResourceExhausted);
    assert.match(err!.rawMessage, /fs\.inotify\.max_user_watches/);
  });
});

describe("kernel queue overflow", () => {
  it("IN_Q_OVERFLOW ends the watcher with resource_exhausted", () => {
    const dir = mkdtempSync(join(tmpdir(), "qoverflow-"));
    const watcher = new DirWatcher({ root: dir, recursive: false, includeEntry: false, queueMax: 100, log: createLogger("silent") });
    try {
      watcher.start();
      // What the kernel sends when its queue (fs.inotify.max_queued_events) overflowed: wd -1, no name.
      const record = Buffer.alloc(16);
      record.writeInt32LE(-1, 0);
      record.writeUInt32LE(IN.Q_OVERFLOW, 4);
      const events = parseInotifyBatch(record);
      assert.deepEqual(events, [{ wd: -1, mask: IN.Q_OVERFLOW, cookie: 0, name: Buffer.alloc(0) }]);
      (watcher as unknown as { tree: { onBatch(e: unknown, drained: boolean): void } }).tree.onBatch(events, true);
      assert.throws(
        () => watcher.drain(),
        (e: unknown) => e instanceof ConnectError && e.code === Code.ResourceExhausted && e.rawMessage.startsWith("watcher event queue overflowed"),
      );
    } finally {
      watcher.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("parses batches with NUL-padded names", () => {
    const name = Buffer.from("file.txt\0\0\0\0\0\0\0\0");
    const rec = Buffer.alloc(16 + name.length);
    rec.writeInt32LE(7, 0);
    rec.writeUInt32LE(IN.CREATE, 4);
    rec.writeUInt32LE(0, 8);
    rec.writeUInt32LE(name.length, 12);
    name.copy(rec, 16);
    const two = Buffer.concat([rec, rec]);
    const events = parseInotifyBatch(two);
    assert.equal(events.length, 2);
    assert.equal(events[1]!.name.toString(), "file.txt");
    assert.equal(events[1]!.wd, 7);
  });
});
