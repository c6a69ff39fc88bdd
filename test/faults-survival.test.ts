// The daemon survives whatever a sandboxed process does (signals to every process it may
// reach, fork bombs within the pid limit, output floods, slow clients) and whatever happens to
// its own stdout (a log reader that stalls or goes away must not stop it, nor its SIGTERM).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { connect as tcpConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { basic, daemonPidUnder, health, readProcessEvents, rssMiB, startCommand, unaryJson, waitFor } from "./helpers/hostile.js";

const ROOT = new URL("..", import.meta.url).pathname;

/** Live (non-zombie) processes whose command line contains `marker`. */
function processesMatching(marker: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
      if (cmd.includes(marker) && state !== "Z") out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function signalAll(d: Daemon, user: string): Promise<void> {
  const r = await unaryJson(d.url, "process.Process/List", {}, { authorization: basic(user) });
  for (const p of r.json.processes ?? []) await unaryJson(d.url, "process.Process/SendSignal", { process: { pid: p.pid }, signal: "SIGNAL_SIGKILL" }, { authorization: basic(user) });
}

describe("what a sandboxed process does to others", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--default-pids-max", "64"] });
  });
  after(async () => {
    assert.equal(await d?.stop(), 0);
  });

  it("`kill -9 -1` as user kills the user's processes, never the daemon (root) or root's processes", async () => {
    // In a pid namespace of its own, so that the user's processes of anything else on this
    // machine (a test running beside this one) are out of reach.
    const nd = await startDaemon({ wrapper: ["unshare", "--pid", "--fork", "--mount-proc"] });
    try {
      const marker = `envd-survive-${process.pid}-a`;
      const victims = [startCommand(nd.url, `exec -a ${marker} sleep 60`), startCommand(nd.url, `exec -a ${marker} sleep 60`)];
      const rootProc = startCommand(nd.url, `exec -a ${marker}-root sleep 60`, { user: "root" });
      await waitFor(() => processesMatching(marker).length >= 3, 5000);
      const killer = await readProcessEvents(await startCommand(nd.url, "kill -9 -1; echo still here"));
      assert.ok(killer.some((e) => e.text?.includes("still here")), "kill -1 spares the caller");
      assert.equal(await health(nd.url), 204);
      for (const v of victims) {
        const end = (await readProcessEvents(await v)).find((e) => e.kind === "end");
        assert.equal(end?.json.end.status, "signal: killed");
      }
      assert.equal(processesMatching(`${marker}-root`).length, 1, "root's process lives on");
      await signalAll(nd, "root");
      await readProcessEvents(await rootProc);
    } finally {
      // SIGTERM to the daemon itself (PID 1 inside); unshare passes its exit status on.
      process.kill(daemonPidUnder(nd.pid)!, "SIGTERM");
      assert.equal(await nd.stop(), 0);
    }
  });

  it("`kill 0` and `kill -9 0` as root reach only the command's own session", async () => {
    for (const cmd of ["kill 0", "kill -TERM 0", "kill -9 0", "kill -HUP 0; kill -INT 0; kill -TERM 0"]) {
      const ev = await readProcessEvents(await startCommand(d.url, cmd, { user: "root" }));
      assert.ok(ev.some((e) => e.kind === "end"), cmd);
      assert.equal(await health(d.url), 204, `after ${cmd}`);
    }
  });

  it("as user, signalling the daemon or its process group is refused (EPERM)", async () => {
    const ev = await readProcessEvents(
      await startCommand(d.url, `kill -9 ${d.pid} 2>&1; kill -TERM -$(ps -o pgid= -p ${d.pid} | tr -d ' ') 2>&1; kill -STOP ${d.pid} 2>&1; echo done`),
    );
    const out = ev.map((e) => e.text ?? "").join("");
    assert.match(out, /Operation not permitted/);
    assert.match(out, /done/);
    assert.equal(await health(d.url), 204);
  });

  it("a fork bomb within the pid limit (--default-pids-max 64): the daemon keeps serving, one kill ends it all", async () => {
    const marker = `envd-bomb-${process.pid}`;
    const ac = new AbortController();
    const res = await startCommand(d.url, `# ${marker}\nb() { b | b & }; b; sleep 60`, { signal: ac.signal, tag: marker });
    const events = readProcessEvents(res).catch(() => []);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(processesMatching(marker).length > 5, "the bomb is running");
    assert.ok(processesMatching(marker).length <= 64 + 5, `bounded by the pid limit: ${processesMatching(marker).length}`);
    assert.equal(await health(d.url, 5000), 204);
    const other = await readProcessEvents(await startCommand(d.url, "echo served"));
    assert.ok(other.some((e) => e.text === "served\n"), "others still get processes");
    await signalAll(d, "user");
    assert.ok(await waitFor(() => processesMatching(marker).length === 0, 10_000), `left: ${processesMatching(marker).length}`);
    ac.abort();
    await events;
  });

  it("an output flood read by a slow client stalls neither the daemon nor other clients; memory stays bounded", async () => {
    const slow = await new Promise<Socket>((resolve) => {
      const s = tcpConnect(d.port, "127.0.0.1", () => resolve(s));
    });
    const body = Buffer.from(JSON.stringify({ process: { cmd: "/bin/bash", args: ["-c", "yes flood"] } }));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(body.length, 1);
    slow.write(`POST /process.Process/Start HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\nauthorization: ${basic("user")}\r\ncontent-length: ${body.length + 5}\r\n\r\n`);
    slow.write(Buffer.concat([head, body]));
    slow.pause(); // reads nothing: the kernel buffers fill, then backpressure holds `yes`
    const rss0 = rssMiB(d.pid);
    for (let i = 0; i < 10; i++) {
      assert.equal(await health(d.url, 3000), 204);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(rssMiB(d.pid) - rss0 < 64, `RSS grew by ${(rssMiB(d.pid) - rss0).toFixed(1)} MiB`);
    slow.destroy();
    await signalAll(d, "user");
  });

  it("100 clients that send half a request and stall (slowloris) do not keep others out", async () => {
    const socks: Socket[] = [];
    for (let i = 0; i < 100; i++) {
      const s = tcpConnect(d.port, "127.0.0.1");
      s.on("error", () => {});
      s.write(i % 2 ? "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " : `POST /files?path=/tmp/slow-${i} HTTP/1.1\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\nabc`);
      socks.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await health(d.url, 3000), 204);
    const ev = await readProcessEvents(await startCommand(d.url, "echo ok"));
    assert.ok(ev.some((e) => e.text === "ok\n"));
    for (const s of socks) s.destroy();
  });
});

/** Starts dist/main.js with stdout on a pipe this test controls; resolves once it listens. */
async function spawnWithStdout(): Promise<{ child: ReturnType<typeof spawn>; port: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "envd-survive-log-"));
  const child = spawn(process.execPath, [join(ROOT, "dist/main.js"), "--port", "0", "--listen", "127.0.0.1", "--run-dir", dir], { stdio: ["ignore", "pipe", "ignore"] });
  let seen = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (b: Buffer) => {
      seen += b.toString();
      const m = /"port":(\d+).*"msg":"listening"/.exec(seen);
      if (m) {
        child.stdout!.off("data", onData);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (c) => reject(new Error(`exited ${c}`)));
  });
  return { child, port, dir };
}

function hammer(port: number, n: number): Promise<Record<string, number>> {
  const codes: Record<string, number> = {};
  const one = () =>
    new Promise<void>((resolve) => {
      const r = request({ host: "127.0.0.1", port, path: "/health?" + "x".repeat(400) }, (res) => {
        res.resume();
        res.on("end", () => {
          codes[res.statusCode!] = (codes[res.statusCode!] ?? 0) + 1;
          resolve();
        });
      });
      r.on("error", (e: NodeJS.ErrnoException) => {
        codes[e.code ?? "error"] = (codes[e.code ?? "error"] ?? 0) + 1;
        resolve();
      });
      r.end();
    });
  return (async () => {
    for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, one));
    return codes;
  })();
}

function exitWithin(child: ReturnType<typeof spawn>, ms: number): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("still running"), ms);
    child.once("exit", (code, sig) => {
      clearTimeout(t);
      resolve(code ?? String(sig));
    });
  });
}

describe("the daemon's own stdout (the orphaned-daemon bug)", () => {
  for (const reader of ["stalled", "gone"] as const) {
    it(`a log reader that is ${reader}: every request is served, memory stays bounded, SIGTERM exits 0 at once`, async () => {
      const { child, port, dir } = await spawnWithStdout();
      try {
        if (reader === "stalled") child.stdout!.pause();
        else child.stdout!.destroy();
        // ~2000 request log lines of ~600 bytes: far more than a pipe holds.
        const codes = await hammer(port, 2000);
        assert.deepEqual(codes, { 204: 2000 });
        assert.ok(rssMiB(child.pid!) < 200, `RSS ${rssMiB(child.pid!).toFixed(0)} MiB`);
        child.kill("SIGTERM");
        assert.equal(await exitWithin(child, 5000), 0);
      } finally {
        child.kill("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
