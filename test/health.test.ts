// envdts.v1.System/HealthCheck per component, /health, and the pressure and headroom gauges,
// against a real daemon (one held near its descriptor limit by real connections).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statfsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { HealthCheckResponse_Status as Status, System } from "../src/gen/envdts/v1/system_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const COMPONENTS = ["process_supervision", "cgroups", "disk", "descriptors", "inotify", "memory_pressure", "cpu_pressure"];

function health(d: Daemon) {
  // A fresh connection each time: the check itself must get a descriptor.
  return createClient(System, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" })).healthCheck({});
}

async function waitFor<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe("health check", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("reports every component with a status and a reason, in a fixed order", async () => {
    const h = await health(d);
    assert.deepEqual(
      h.components.map((c) => c.name),
      COMPONENTS,
    );
    for (const c of h.components) {
      assert.ok([Status.SERVING, Status.NOT_SERVING, Status.UNKNOWN].includes(c.status), c.name);
      assert.ok(c.reason.length > 0, c.name);
    }
    const by = Object.fromEntries(h.components.map((c) => [c.name, c]));
    assert.equal(by.process_supervision!.status, Status.SERVING);
    assert.match(by.process_supervision!.reason, /^\d+ processes running; orphans are reaped$/);
    // Headroom as the kernel reports it.
    const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${d.pid}/limits`, "utf8"))![1]);
    assert.match(by.descriptors!.reason, new RegExp(`^\\d+ of ${limit} descriptors open`));
    assert.equal(by.descriptors!.status, Status.SERVING);
    assert.equal(by.descriptors!.threshold, 0.9);
    const maxWatches = readFileSync("/proc/sys/fs/inotify/max_user_watches", "utf8").trim();
    assert.match(by.inotify!.reason, new RegExp(`^the daemon holds \\d+ of \\d+ instances and \\d+ of ${maxWatches} watches`));
    const root = statfsSync("/");
    // The used share of the fullest of / and the temporary directory.
    assert.ok(by.disk!.value >= (root.blocks - root.bavail) / root.blocks - 0.01 && by.disk!.value <= 1, String(by.disk!.value));
    assert.match(by.disk!.reason, /^\/: \d+ MiB free of \d+ MiB/);
    // Pressure where the kernel has it: the status follows the figure it reports.
    for (const [name, resource] of [
      ["memory_pressure", "memory"],
      ["cpu_pressure", "cpu"],
    ] as const) {
      const c = by[name]!;
      if (!existsSync(`/proc/pressure/${resource}`)) {
        assert.equal(c.status, Status.UNKNOWN);
        assert.match(c.reason, /no pressure stall information/);
        continue;
      }
      assert.ok(c.value >= 0 && c.value <= 100, `${name} ${c.value}`);
      assert.equal(c.status, c.value >= c.threshold ? Status.NOT_SERVING : Status.SERVING, `${name}: ${c.reason}`);
      assert.match(c.reason, new RegExp(c.value.toFixed(2).replace(".", "\\.")));
    }
    assert.equal(by.memory_pressure!.threshold, 20);
    assert.equal(by.cpu_pressure!.threshold, 90);
    // The overall verdict: CPU pressure and cgroups inform only.
    const critical = h.components.filter((c) => c.name !== "cpu_pressure" && c.name !== "cgroups");
    assert.equal(h.status, critical.every((c) => c.status !== Status.NOT_SERVING) ? Status.SERVING : Status.NOT_SERVING);
  });

  it("exports pressure and headroom gauges to Prometheus", async () => {
    const text = await (await fetch(`${d.url}/metrics/prometheus`)).text();
    if (existsSync("/proc/pressure/cpu")) {
      assert.match(text, /^envd_pressure_stall_percent\{resource="cpu",kind="some",window="10s"\} \d+(\.\d+)?$/m);
      assert.match(text, /^envd_pressure_stall_seconds_total\{resource="memory",kind="full"\} \d+(\.\d+)?(e[-+]\d+)?$/m);
    }
    const maxWatches = readFileSync("/proc/sys/fs/inotify/max_user_watches", "utf8").trim();
    assert.match(text, new RegExp(`^envd_inotify_max_user_watches ${maxWatches}$`, "m"));
    assert.match(text, /^envd_inotify_watches \d+$/m);
    assert.match(text, /^envd_disk_free_bytes\{path="\/"\} \d+$/m);
    assert.match(text, /^envd_disk_free_inodes\{path="\/"\} \d+$/m);
    assert.match(text, /^envd_system_file_handles_max \d+$/m);
  });
});

describe("health check near the descriptor limit", () => {
  const LIMIT = 256;
  let d: Daemon;
  const held: Socket[] = [];
  before(async () => {
    // The connection cap (three quarters of the limit) and the idle timeout of unauthenticated
    // connections would close the idle connections this test holds to use up descriptors: lifted
    // here, so descriptors run out as they would from elsewhere.
    d = await startDaemon({ wrapper: ["prlimit", `--nofile=${LIMIT}:${LIMIT}`, "--"], args: ["--max-connections", "100000", "--unauthenticated-idle-seconds", "600"] });
  });
  after(async () => {
    for (const s of held) s.destroy();
    assert.equal(await d.stop(), 0);
  });

  it("says NOT_SERVING with the figures while descriptors run out, /health stays 204, and recovers", async () => {
    const before = await health(d);
    assert.equal(before.components.find((c) => c.name === "descriptors")!.status, Status.SERVING);
    // Idle keep-alive connections are descriptors the daemon holds: take it past 90% of its limit,
    // leaving room for the checks' own connections.
    while (openFds(d.pid) < LIMIT * 0.9 + 8) {
      const s = connect(d.port, "127.0.0.1");
      s.on("error", () => {});
      held.push(s);
      await new Promise<void>((r) => s.once("connect", () => r()));
      await waitFor(async () => (openFds(d.pid) >= held.length ? true : undefined), 10_000, "the daemon to accept");
    }
    assert.ok(openFds(d.pid) < LIMIT - 8, `${openFds(d.pid)} open`);
    const h = await health(d);
    const fd = h.components.find((c) => c.name === "descriptors")!;
    assert.equal(fd.status, Status.NOT_SERVING, fd.reason);
    assert.match(fd.reason, new RegExp(`^\\d+ of ${LIMIT} descriptors open \\(\\d+\\.\\d%\\): new connections, uploads and commands will fail`));
    assert.ok(fd.value >= 0.9 && fd.value < 1, String(fd.value));
    assert.equal(h.status, Status.NOT_SERVING);
    // E2B's /health keeps its meaning: the daemon is up.
    assert.equal((await fetch(`${d.url}/health`)).status, 204);
    for (const s of held.splice(0)) s.destroy();
    const again = await waitFor(async () => {
      const r = await health(d);
      return r.components.find((c) => c.name === "descriptors")!.status === Status.SERVING ? r : undefined;
    }, 15_000, "descriptors to recover");
    assert.match(again.components.find((c) => c.name === "descriptors")!.reason, new RegExp(`^\\d+ of ${LIMIT} descriptors open`));
  });
});
