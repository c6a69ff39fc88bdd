// Clients that vanish mid-request: during a process stream, an upload, a download and a watch,
// by FIN, by RST and by h2 stream cancel. The process keeps running and can be re-attached, the
// old file stays intact, and nothing leaks: descriptors (counted in /proc/<pid>/fd), watchers,
// output subscribers and connections (counted by the daemon's Prometheus gauges).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as h2connect, constants as h2c } from "node:http2";
import { request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectStream, envelope } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { eventually, httpRequest, leftoverTemps } from "./helpers/files-http.js";
import { basic, fdKinds, health, prometheus, readProcessEvents, startCommand, unaryJson, waitFor } from "./helpers/hostile.js";

const MIB = 1024 * 1024;
let d: Daemon;
let dir: string;
let base: ReturnType<typeof fdKinds>;

/** Everything that must return to its idle value once clients are gone. */
async function snapshot() {
  const m = await prometheus(d.url);
  return {
    fds: fdKinds(d.pid),
    subscribers: m.get("envd_process_subscribers") ?? NaN,
    watchers: m.get("envd_watchers_active") ?? NaN,
    processes: m.get("envd_processes_active") ?? NaN,
  };
}

/** Waits until no client resource is held and the descriptors are back at the baseline. */
async function assertNoLeaks(what: string): Promise<void> {
  let last = await snapshot();
  const ok = await waitFor(async () => {
    last = await snapshot();
    // Sockets are left out: this test's own fetch pool keeps idle keep-alive connections.
    const nonSocket = last.fds.total - last.fds.socket;
    return last.subscribers === 0 && last.watchers === 0 && last.processes === 0 && nonSocket <= base.total - base.socket && last.fds.inotify === base.inotify && last.fds.pipe <= base.pipe;
  }, 8000, 100);
  assert.ok(ok, `${what}: leaked ${JSON.stringify(last)} (baseline fds ${JSON.stringify(base)})`);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "envd-faults-disc-"));
  d = await startDaemon();
  // Warm up every path once (lazy descriptors: /dev/null, cgroup files, the inotify addon).
  const res = await startCommand(d.url, "echo warm");
  await readProcessEvents(res);
  await httpRequest(`${d.url}/files?path=${join(dir, "warm")}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "w" });
  await httpRequest(`${d.url}/files?path=${join(dir, "warm")}`);
  const w = await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: dir });
  await unaryJson(d.url, "filesystem.Filesystem/RemoveWatcher", { watcherId: w.json.watcherId });
  await new Promise((r) => setTimeout(r, 300));
  base = fdKinds(d.pid);
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  assert.equal(await d?.stop(), 0);
});

const TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done";

async function killByPid(pid: number): Promise<void> {
  const r = await unaryJson(d.url, "process.Process/SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" }, { authorization: basic("user") });
  assert.equal(r.status, 200, JSON.stringify(r.json));
}

async function listedPids(): Promise<number[]> {
  const r = await unaryJson(d.url, "process.Process/List", {}, { authorization: basic("user") });
  return (r.json.processes ?? []).map((p: { pid: number }) => p.pid);
}

describe("a client that disconnects from a process stream", () => {
  for (const pty of [false, true]) {
    it(`${pty ? "PTY" : "pipes"}: the process keeps running, can be re-attached twice, and nothing leaks`, async () => {
      const ac = new AbortController();
      const res = await startCommand(d.url, TICKER, { pty, signal: ac.signal, tag: `ticker-${pty}` });
      const first = await readProcessEvents(res, (ev) => ev.filter((e) => e.text?.includes("tick")).length >= 3);
      const pid = first.find((e) => e.kind === "start")!.json.start.pid as number;
      ac.abort();
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((await listedPids()).includes(pid), "still running after the client left");
      for (let round = 0; round < 2; round++) {
        const ac2 = new AbortController();
        const again = await connectStream(`${d.url}/process.Process/Connect`, { process: { pid } }, { authorization: basic("user") }, ac2.signal);
        const events = await readProcessEvents(again, (ev) => ev.filter((e) => e.text?.includes("tick")).length >= 2);
        assert.equal(events[0]!.kind, "start");
        assert.ok(events.some((e) => e.text?.includes("tick")), "output flows again after re-attaching");
        ac2.abort();
      }
      await killByPid(pid);
      await assertNoLeaks("after killing the re-attached process");
    });
  }

  it("a connection reset (RST) and an h2 stream cancel mid-stream leave nothing behind either", async () => {
    // RST: destroy the socket with unread data.
    const sock = tcpConnect(d.port, "127.0.0.1");
    const body = envelope({ process: { cmd: "/bin/bash", args: ["-c", TICKER] } });
    sock.write(`POST /process.Process/Start HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\nauthorization: ${basic("user")}\r\ncontent-length: ${body.length}\r\n\r\n`);
    sock.write(body);
    let seen = "";
    // Output is base64 inside the frames: wait for the first stdout event.
    await new Promise<void>((r) => sock.on("data", (b) => (seen += b.toString("latin1")).includes('"stdout"') && r()));
    sock.resetAndDestroy();
    // h2: cancel the stream, keep the session.
    const s = h2connect(d.url);
    const req = s.request({ ":method": "POST", ":path": "/process.Process/Start", "content-type": "application/connect+json", authorization: basic("user") });
    req.end(body);
    let h2seen = "";
    await new Promise<void>((r) => req.on("data", (b: Buffer) => (h2seen += b.toString("latin1")).includes('"stdout"') && r()));
    req.close(h2c.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 300));
    const pids = await listedPids();
    assert.equal(pids.length, 2, "both commands run on without their clients");
    for (const pid of pids) await killByPid(pid);
    s.close();
    await assertNoLeaks("after RST and h2 cancel");
  });

  it("a process whose client left long ago still reports its end to a new Connect", async () => {
    const ac = new AbortController();
    const res = await startCommand(d.url, "echo begin; sleep 0.5; echo done; exit 7", { signal: ac.signal });
    const first = await readProcessEvents(res, (ev) => ev.some((e) => e.text?.includes("begin")));
    const pid = first.find((e) => e.kind === "start")!.json.start.pid as number;
    ac.abort();
    await new Promise((r) => setTimeout(r, 1000));
    // Exited meanwhile: E2B's 30 s retained end.
    const again = await connectStream(`${d.url}/process.Process/Connect`, { process: { pid } }, { authorization: basic("user") });
    const events = await readProcessEvents(again);
    const end = events.find((e) => e.kind === "end");
    assert.equal(end?.json.end.exitCode, 7);
    await assertNoLeaks("after the retained end");
  });
});

/** Starts an upload of `total` bytes, sends `sent` of them, then drops the connection. */
function abortedUpload(path: string, total: number, sent: number, how: "fin" | "rst", contentType = "application/octet-stream", prefix = Buffer.alloc(0)): Promise<void> {
  return new Promise((resolve) => {
    const sock = tcpConnect(d.port, "127.0.0.1");
    sock.on("error", () => {});
    sock.write(`POST /files?path=${encodeURIComponent(path)} HTTP/1.1\r\nhost: x\r\ncontent-type: ${contentType}\r\ncontent-length: ${total}\r\n\r\n`);
    sock.write(prefix);
    sock.write(Buffer.alloc(sent, 0x41), () => {
      setTimeout(() => {
        if (how === "rst") sock.resetAndDestroy();
        else sock.end();
        resolve();
      }, 100);
    });
  });
}

describe("a client that disconnects in the middle of an upload", () => {
  for (const how of ["fin", "rst"] as const) {
    it(`(${how}) leaves the old file intact and no temporary file`, async () => {
      const target = join(dir, `up-${how}.txt`);
      writeFileSync(target, "old content\n");
      await abortedUpload(target, 64 * MIB, 4 * MIB, how);
      const boundary = "xyz";
      const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${target}"\r\n\r\n`);
      await abortedUpload(target, 64 * MIB, 4 * MIB, how, `multipart/form-data; boundary=${boundary}`, head);
      await assertNoLeaks(`upload ${how}`);
      assert.equal(readFileSync(target, "utf8"), "old content\n");
      // The daemon removes the temporary file once it sees the connection go; give it a moment.
      await eventually(() => leftoverTemps(dir).length === 0);
      assert.deepEqual(leftoverTemps(dir), []);
    });
  }

  it("20 uploads dropped at once: same, and the daemon still takes a full upload after", async () => {
    const target = join(dir, "many.txt");
    writeFileSync(target, "keep\n");
    await Promise.all(Array.from({ length: 20 }, (_, i) => abortedUpload(target, 16 * MIB, MIB, i % 2 ? "rst" : "fin")));
    await assertNoLeaks("20 dropped uploads");
    assert.equal(readFileSync(target, "utf8"), "keep\n");
    await eventually(() => leftoverTemps(dir).length === 0);
    assert.deepEqual(leftoverTemps(dir), []);
    const ok = await httpRequest(`${d.url}/files?path=${encodeURIComponent(target)}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "new\n" });
    assert.equal(ok.status, 200);
    assert.equal(readFileSync(target, "utf8"), "new\n");
  });
});

describe("a client that disconnects in the middle of a download", () => {
  it("identity and gzip, FIN and RST, 24 at once: no file descriptor stays open", async () => {
    const big = join(dir, "big.bin");
    writeFileSync(big, Buffer.alloc(32 * MIB, 0x61));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        new Promise<void>((resolve) => {
          const req = request(`${d.url}/files?path=${encodeURIComponent(big)}`, { agent: false, headers: i % 2 ? { "accept-encoding": "gzip" } : {} }, (res) => {
            res.once("data", () => {
              if (i % 4 < 2) res.socket.resetAndDestroy();
              else res.destroy();
              resolve();
            });
          });
          req.on("error", () => resolve());
          req.end();
        }),
      ),
    );
    await assertNoLeaks("24 dropped downloads");
    assert.equal((await httpRequest(`${d.url}/files?path=${encodeURIComponent(big)}`)).body.length, 32 * MIB);
  });
});

describe("disconnects racing new connections (descriptor reuse)", () => {
  it("3 s of downloads and uploads dropped mid-transfer while connections keep arriving: the daemon never aborts", async () => {
    // A stream over a FileHandle's descriptor used to close it on destroy, and the handle closed
    // the number again: by then often a connection just accepted, and libuv aborted the daemon.
    const big = join(dir, "race.bin");
    writeFileSync(big, Buffer.alloc(16 * MIB, 0x62));
    const target = join(dir, "race-up.txt");
    writeFileSync(target, "race\n");
    let exited = "";
    d.child.once("exit", (code, sig) => (exited = `${code} ${sig}`));
    const deadline = Date.now() + 3000;
    const download = () =>
      new Promise<void>((resolve) => {
        const req = request(`${d.url}/files?path=${encodeURIComponent(big)}`, { agent: false, headers: Math.random() < 0.5 ? { "accept-encoding": "gzip" } : {} }, (res) => {
          setTimeout(() => {
            res.socket.resetAndDestroy();
            resolve();
          }, Math.random() * 50);
        });
        req.on("error", () => resolve());
        req.end();
      });
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        while (Date.now() < deadline && !exited) {
          if (i % 4 === 3) await abortedUpload(target, 8 * MIB, 256 * 1024, "rst");
          else await download();
        }
      }),
    );
    assert.equal(exited, "", "the daemon died");
    assert.equal(await health(d.url), 204);
    await assertNoLeaks("racing drops");
    assert.equal(readFileSync(target, "utf8"), "race\n");
  });
});

describe("a client that disconnects from a watch", () => {
  it("WatchDir streams (recursive, over a tree) dropped by FIN, RST and h2 cancel: the inotify instances are closed", async () => {
    const tree = join(dir, "tree");
    for (let i = 0; i < 20; i++) mkdirSync(join(tree, `d${i}`, "sub"), { recursive: true });
    const acs: AbortController[] = [];
    for (let i = 0; i < 10; i++) {
      const ac = new AbortController();
      const res = await connectStream(`${d.url}/filesystem.Filesystem/WatchDir`, { path: tree, recursive: true }, {}, ac.signal);
      const reader = res.body!.getReader();
      await reader.read(); // start
      acs.push(ac);
    }
    const s = h2connect(d.url);
    const streams = Array.from({ length: 5 }, () => {
      const req = s.request({ ":method": "POST", ":path": "/filesystem.Filesystem/WatchDir", "content-type": "application/connect+json" });
      req.end(envelope({ path: tree, recursive: true }));
      return req;
    });
    await Promise.all(streams.map((r) => new Promise((ok) => r.once("data", ok))));
    const during = await snapshot();
    assert.equal(during.watchers, 15);
    assert.equal(during.fds.inotify, base.inotify + 15);
    writeFileSync(join(tree, "d0", "sub", "event"), "x"); // events pending for gone clients
    for (const ac of acs) ac.abort();
    for (const r of streams) r.close(h2c.NGHTTP2_CANCEL);
    s.close();
    await assertNoLeaks("dropped watch streams");
  });

  it("polling watchers live until RemoveWatcher, then leave nothing", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await unaryJson(d.url, "filesystem.Filesystem/CreateWatcher", { path: dir, recursive: true })).json.watcherId);
    assert.equal((await snapshot()).watchers, 10);
    for (const id of ids) assert.equal((await unaryJson(d.url, "filesystem.Filesystem/RemoveWatcher", { watcherId: id })).status, 200);
    await assertNoLeaks("removed polling watchers");
    assert.equal(await health(d.url), 204);
  });
});
