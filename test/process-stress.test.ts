// Volume, concurrency, backpressure, tree kill and shutdown, through real clients.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { alive, collect, descendants, e2bSandbox, grpcClients, outputOf, unary, userMetadata, waitFor } from "./process-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const MiB = 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) * 1024;
}

describe("process service under load", () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    g = grpcClients(d);
    dir = mkdtempSync(join(tmpdir(), "envd-proc-"));
  });
  after(async () => {
    g.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("256 MiB of random bytes through cat arrive byte-exact (StreamInput in, Start stream out)", async () => {
    const total = 256 * MiB;
    const inHash = createHash("sha256");
    const outHash = createHash("sha256");
    let received = 0;
    let maxChunk = 0;
    const call = g.proc.Start({ process: { cmd: "/bin/cat" } }, userMetadata("user"));
    const feed = async (pid: number) => {
      const s = g.proc.StreamInput((err: Error | null) => {
        if (err) call.cancel();
      });
      s.write({ start: { process: { pid } } });
      for (let sent = 0; sent < total; ) {
        const chunk = randomBytes(Math.min(MiB, total - sent));
        inHash.update(chunk);
        sent += chunk.length;
        if (!s.write({ data: { input: { stdin: chunk } } })) await new Promise((r) => s.once("drain", r));
      }
      s.end();
      await new Promise((r) => setTimeout(r, 200));
      await unary(g.proc, "CloseStdin", { process: { pid } });
    };
    let feeding: Promise<void> | undefined;
    const events = await collect(call, (m: Any) => {
      if (m.event.start) feeding = feed(m.event.start.pid);
      else if (m.event.data) {
        outHash.update(m.event.data.stdout);
        received += m.event.data.stdout.length;
        maxChunk = Math.max(maxChunk, m.event.data.stdout.length);
      }
    });
    await feeding;
    assert.equal(received, total);
    assert.equal(outHash.digest("hex"), inHash.digest("hex"));
    assert.ok(maxChunk <= 32 * 1024);
    assert.equal(events.at(-1).event.end.status, "exit status 0");
  });

  it("stdout and stderr each arrive intact when written at the same time", async () => {
    const a = randomBytes(24 * MiB);
    const b = randomBytes(24 * MiB);
    writeFileSync(join(dir, "a"), a);
    writeFileSync(join(dir, "b"), b);
    const out = createHash("sha256");
    const err = createHash("sha256");
    let switches = 0;
    let last = "";
    await collect(g.proc.Start({ process: { cmd: "/bin/sh", args: ["-c", `cat ${dir}/a & cat ${dir}/b >&2; wait`] } }), (m: Any) => {
      const data = m.event.data;
      if (!data) return;
      const kind = data.stdout ? "out" : "err";
      if (kind !== last) switches++;
      last = kind;
      (kind === "out" ? out : err).update(kind === "out" ? data.stdout : data.stderr);
    });
    assert.equal(out.digest("hex"), createHash("sha256").update(a).digest("hex"));
    assert.equal(err.digest("hex"), createHash("sha256").update(b).digest("hex"));
    assert.ok(switches > 2, "the two streams interleaved");
  });

  it("500 concurrent short commands all finish with the right output and exit codes", async () => {
    const n = 500;
    const runs = Array.from({ length: n }, (_, i) =>
      collect(g.proc.Start({ process: { cmd: "/bin/sh", args: ["-c", 'echo "out-$1"; echo "err-$1" >&2; exit $(($1 % 7))', "sh", String(i)] }, stdin: false })).then((events: Any[]) => ({ i, events })),
    );
    const results = await Promise.all(runs);
    for (const { i, events } of results) {
      const stdout = Buffer.concat(events.filter((e: Any) => e.event.data?.stdout).map((e: Any) => e.event.data.stdout)).toString();
      const stderr = Buffer.concat(events.filter((e: Any) => e.event.data?.stderr).map((e: Any) => e.event.data.stderr)).toString();
      assert.equal(stdout, `out-${i}\n`);
      assert.equal(stderr, `err-${i}\n`);
      assert.equal(events[0].event.start.pid > 0, true);
      const end = events.at(-1).event.end;
      assert.equal(end.exitCode, i % 7);
      assert.equal(end.status, `exit status ${i % 7}`);
    }
  });

  it("kill of bash -c 'sleep 1000 & sleep 1000 & wait' leaves nothing of the tree alive, even a child that called setsid", async () => {
    const { sbx } = await e2bSandbox(d);
    const h = await sbx.commands.run("sleep 1000 & sleep 1000 & setsid sleep 1000 & wait", { user: "user", background: true, timeoutMs: 0 });
    await waitFor(() => descendants(h.pid).length >= 3, 5000, "three sleeps");
    const tree = [h.pid, ...descendants(h.pid)];
    assert.equal(await h.kill(), true);
    await waitFor(() => tree.every((p) => !alive(p)), 3000, "the whole tree to die");
    await assert.rejects(h.wait());
  });

  it("a slow client holds the child back (backpressure) and memory stays bounded", async () => {
    const total = 256 * MiB;
    const before = rssBytes(d.pid);
    const call = g.proc.Start({ process: { cmd: "/usr/bin/head", args: ["-c", String(total), "/dev/zero"] } }, userMetadata("user"));
    let received = 0;
    let pid = 0;
    call.on("data", (m: Any) => {
      if (m.event.start) pid = m.event.start.pid;
      if (m.event.data) received += m.event.data.stdout.length;
    });
    const ended = new Promise<void>((resolve, reject) => {
      call.on("end", resolve);
      call.on("error", reject);
    });
    await waitFor(() => received > 0, 5000, "first output");
    call.pause();
    await new Promise((r) => setTimeout(r, 800));
    const rss1 = rssBytes(d.pid);
    const got1 = received;
    await new Promise((r) => setTimeout(r, 800));
    // The child is blocked on a full pipe, not finished, and nothing accumulates in the daemon.
    assert.ok(alive(pid), "child still running while the client does not read");
    assert.equal(received, got1);
    assert.ok(received < 64 * MiB, `received ${received}`);
    const rss2 = rssBytes(d.pid);
    assert.ok(rss2 - rss1 < 16 * MiB, `daemon grew by ${rss2 - rss1} bytes while the client was paused`);
    assert.ok(rss2 - before < 128 * MiB, `daemon grew by ${rss2 - before} bytes`);
    call.resume();
    await ended;
    assert.equal(received, total);
  });

  it("output nobody reads is kept in a bounded ring; the replay reports what was dropped", async () => {
    const total = 40 * MiB;
    const before = rssBytes(d.pid);
    // Started, then left: the client cancels its stream right after the start.
    const call = g.ext.Start({ process: { cmd: "/bin/sh", args: ["-c", `head -c ${total} /dev/zero | tr '\\0' x; echo; echo tail-end; read x`] }, tag: "ring" }, userMetadata("user"));
    const id = await new Promise<number>((resolve) => call.on("data", (m: Any) => m.started && resolve(Number(m.started.id))));
    call.on("error", () => {});
    call.cancel();
    await waitFor(async () => Number((await unary(g.ext, "GetProcess", { process: { id } })).process.output.totalBytes) === total + 10, 20_000, "all output produced");
    assert.ok(rssBytes(d.pid) - before < 64 * MiB, "the daemon did not keep all the output");
    const replay = await new Promise<Any[]>((resolve, reject) => {
      const events: Any[] = [];
      const att = g.ext.Attach({ process: { id }, oldest: true });
      att.on("data", (m: Any) => {
        events.push(m);
        if (outputOf(events).endsWith("tail-end\n")) {
          att.cancel();
          resolve(events);
        }
      });
      att.on("error", (e: Any) => (e.code === 1 ? resolve(events) : reject(e)));
    });
    const held = 1024 * 1024;
    assert.equal(Number(replay[0].attached.droppedBytes), total + 10 - held);
    assert.equal(Number(replay[0].attached.offset), total + 10 - held);
    const text = outputOf(replay);
    assert.equal(text.length, held);
    assert.ok(text.endsWith("x\ntail-end\n"));
    assert.equal(Number(replay.find((e: Any) => e.output).output.offset), total + 10 - held);
    await unary(g.ext, "Signal", { process: { id }, name: "KILL", target: "TARGET_TREE" });
  });
});

describe("daemon shutdown", () => {
  it("kills every process tree (SIGTERM, then SIGKILL for those that ignore it) and ends the streams", async () => {
    const d = await startDaemon();
    const g = grpcClients(d);
    try {
      const events: Any[] = [];
      const done = collect(g.proc.Start({ process: { cmd: "/bin/bash", args: ["-c", "sleep 60 & sleep 60; echo never"] } }), (m: Any) => events.push(m)).then(() => null, (e: Any) => e);
      const ignoring: Any[] = [];
      const done2 = collect(g.proc.Start({ process: { cmd: "/bin/bash", args: ["-c", "trap '' TERM; echo ready; sleep 60 & wait"] } }), (m: Any) => ignoring.push(m)).then(() => null, (e: Any) => e);
      await waitFor(() => events.length > 0 && ignoring.some((e) => e.event.data), 5000, "both started");
      const pids = [events[0].event.start.pid, ...descendants(events[0].event.start.pid), ignoring[0].event.start.pid, ...descendants(ignoring[0].event.start.pid)];
      assert.equal(await d.stop(), 0);
      // The server ends every stream with unavailable on shutdown.
      assert.equal((await done)?.code, 14);
      assert.equal((await done2)?.code, 14);
      for (const p of pids) assert.equal(alive(p), false, `pid ${p} survived the shutdown`);
    } finally {
      g.close();
      await d.stop();
    }
  });
});
