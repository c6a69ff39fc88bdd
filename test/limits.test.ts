// Per-process resource limits (docs/limits-isolation.md) through real clients against a real
// daemon: cgroup v1 limits for real (the CI machine mounts v1 controllers),
// cgroup v2 placement and refusals on the empty unified hierarchy, rlimits,
// outcomes, usage, and the daemon-wide defaults seen through the e2b SDK.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { alive, e2bSandbox, grpcClients, unary, waitFor } from "./process-helpers.js";
import { CAP_SYS_RESOURCE, getProcess, haveCapability, haveCgroup2At, haveV1Controllers, health, runExt, startError } from "./limits-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const MiB = 1024 * 1024;
const ALLOC_256M = ["-e", 'my $s = "x" x (256 << 20); print length($s), "\\n"'];
const noV1 = !haveV1Controllers() && "cgroup v1 memory/pids/cpu/cpuacct controllers are not mounted";
const noUnified = !haveCgroup2At("/sys/fs/cgroup/unified") && "no cgroup2 mount at /sys/fs/cgroup/unified";

describe("limits through cgroup v1 (auto mode on a hybrid machine)", { skip: noV1 }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;

  before(async () => {
    d = await startDaemon();
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("64 MiB limit, 256 MiB allocation: OOM_KILLED in the end event and in history; the daemon keeps answering", async () => {
    const r = await runExt(g, { process: { cmd: "perl", args: ALLOC_256M }, limits: { memoryMaxBytes: 64 * MiB } }, "user");
    assert.equal(r.out, "", "the allocation never completed");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_OOM_KILLED");
    assert.equal(r.exit.status, "signal: killed");
    assert.match(r.exit.error, /OOM killer: memory limit of 67108864 bytes/);
    assert.ok(r.exit.usage.oomKills >= 1);
    assert.equal(r.exit.usage.source, "cgroup_v1");
    assert.ok(r.exit.usage.memoryPeakBytes <= 64 * MiB && r.exit.usage.memoryPeakBytes > 32 * MiB, `peak ${r.exit.usage.memoryPeakBytes}`);
    assert.ok([200, 204].includes(await health(d)));

    const info = await getProcess(g, r.id);
    assert.equal(info.exit.outcome, "EXIT_OUTCOME_OOM_KILLED");
    assert.equal(info.runs[0].exit.outcome, "EXIT_OUTCOME_OOM_KILLED");
    assert.ok(info.runs[0].exit.usage.oomKills >= 1);
    assert.ok(info.usage.memoryPeakBytes > 32 * MiB);
    assert.deepEqual(info.execution.enforcement, ["memory_max_bytes: cgroup_v1"]);
    assert.equal(Number(info.execution.limits.memoryMaxBytes), 64 * MiB);
    const memDir = info.execution.cgroups.find((p: string) => p.includes("/memory/"));
    assert.ok(memDir, "a memory cgroup was used");
    await waitFor(() => !existsSync(memDir), 5000, "the run's cgroup to be removed");
  });

  it("the same allocation without a limit succeeds (the limit is what killed it)", async () => {
    const r = await runExt(g, { process: { cmd: "perl", args: ALLOC_256M } }, "user");
    assert.equal(r.out, "268435456\n");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_EXITED");
  });

  it("a busy loop with a 500 ms CPU limit ends with CPU_LIMIT, having used about that much", async () => {
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", "while :; do :; done"] }, limits: { cpuTimeMs: 500 } }, "user");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_CPU_LIMIT");
    assert.equal(r.exit.status, "signal: killed");
    assert.match(r.exit.error, /CPU time limit of 500 ms exceeded/);
    const cpuUs = Number(r.exit.usage.cpuUserUs) + Number(r.exit.usage.cpuSystemUs);
    assert.ok(cpuUs >= 500_000, `used ${cpuUs} µs`);
    const info = await getProcess(g, r.id);
    assert.equal(info.runs[0].exit.outcome, "EXIT_OUTCOME_CPU_LIMIT");
    assert.ok(info.execution.enforcement[0].startsWith("cpu_time_ms: cgroup_v1"));
  });

  it("a fork bomb under a task limit (and half a core) is contained, /health answers, and nothing is left after", async () => {
    let id = 0;
    const bomb = runExt(
      g,
      { process: { cmd: "bash", args: ["-c", "f() { f | f & }; f; sleep 60"] }, limits: { pidsMax: 40, cpuCores: 0.5 }, timeoutMs: 4000 },
      "user",
      (m: Any) => {
        if (m.started) id = Number(m.started.id);
      },
    );
    await waitFor(() => id > 0, 5000, "the bomb to start");
    await new Promise((r) => setTimeout(r, 1000));
    let maxTasks = 0;
    for (let i = 0; i < 5; i++) {
      assert.ok([200, 204].includes(await health(d)), "the daemon answers during the bomb");
      const info = await getProcess(g, id);
      maxTasks = Math.max(maxTasks, info.usage.tasksCurrent);
      await new Promise((r) => setTimeout(r, 200));
    }
    const info = await getProcess(g, id);
    assert.ok(maxTasks > 5 && maxTasks <= 40, `tasks ${maxTasks}`);
    const cpuDir = info.execution.cgroups.find((p: string) => /\/cpu\/|\/cpu,/.test(p));
    assert.equal(readFileSync(join(cpuDir, "cpu.cfs_quota_us"), "utf8").trim(), "50000");
    const pidsDir = info.execution.cgroups.find((p: string) => p.includes("/pids/"));
    assert.equal(readFileSync(join(pidsDir, "pids.max"), "utf8").trim(), "40");
    const r = await bomb;
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_TIMED_OUT");
    await waitFor(() => !existsSync(pidsDir), 10_000, "the bomb's cgroup to be emptied and removed");
    assert.ok([200, 204].includes(await health(d)));
  });

  it("a tree kill reaches a child that left the session and was orphaned (found through the cgroup)", async () => {
    let id = 0;
    let orphan = 0;
    const run = runExt(
      g,
      { process: { cmd: "bash", args: ["-c", 'setsid bash -c "sleep 300 >/dev/null 2>&1 & echo \\$!"; sleep 300'] }, limits: { pidsMax: 20 }, stdin: false },
      "user",
      (m: Any) => {
        if (m.started) id = Number(m.started.id);
        if (m.output) orphan = Number(Buffer.from(m.output.data).toString().trim());
      },
    );
    await waitFor(() => orphan > 0, 5000, "the orphan's pid");
    assert.ok(alive(orphan));
    await unary(g.ext, "Signal", { process: { id }, name: "KILL", target: "TARGET_TREE" });
    const r = await run;
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_SIGNALED");
    await waitFor(() => !alive(orphan), 5000, "the orphan to be killed");
  });

  it("nofile sets RLIMIT_NOFILE; one above the hard limit without CAP_SYS_RESOURCE is failed_precondition", async () => {
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", "ulimit -n; ulimit -Hn"] }, limits: { nofile: 256 } }, "user");
    assert.equal(r.out, "256\n256\n");
    const info = await getProcess(g, r.id);
    assert.deepEqual(info.execution.enforcement, ["nofile: rlimit_nofile"]);
    assert.ok(info.execution.cgroups.every((p: string) => p.includes("/pids/")), "an rlimit alone needs no limiting cgroup, only the one tracking the tree");
    const hard = Number(readFileSync("/proc/self/limits", "utf8").match(/Max open files\s+\d+\s+(\d+)/)?.[1]);
    if (haveCapability(CAP_SYS_RESOURCE)) return;
    const err = await startError(g, { process: { cmd: "true" }, limits: { nofile: hard + 1000 } }, "user");
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.match(err.details, /setting rlimits.*operation not permitted/i);
  });

  it("usage: a running process without limits is sampled from /proc; one with limits reads its cgroup", async () => {
    let id = 0;
    const run = runExt(g, { process: { cmd: "sleep", args: ["1"] } }, "user", (m: Any) => {
      if (m.started) id = Number(m.started.id);
    });
    await waitFor(() => id > 0, 5000, "start");
    await new Promise((r) => setTimeout(r, 300));
    const live = await getProcess(g, id);
    assert.equal(live.usage.source, "proc");
    assert.ok(Number(live.usage.memoryCurrentBytes) > 0);
    assert.equal(live.usage.tasksCurrent, 1);
    const r = await run;
    assert.equal(r.exit.usage.source, "proc");

    const busy = await runExt(g, { process: { cmd: "bash", args: ["-c", "for i in $(seq 100000); do :; done; echo done"] }, limits: { pidsMax: 50 } }, "user");
    assert.equal(busy.out, "done\n");
    assert.equal(busy.exit.usage.source, "cgroup_v1");
    assert.ok(Number(busy.exit.usage.cpuUserUs) + Number(busy.exit.usage.cpuSystemUs) > 10_000);
    assert.ok(busy.exit.usage.tasksPeak >= 1);
  });

  it("usage: a pipe command too short for any sample reports the kernel's account at exit (wait4 rusage)", async () => {
    // ~60 ms of CPU in one process, done before the first timed sample (100 ms) could see it.
    const r = await runExt(g, { process: { cmd: "perl", args: ["-e", '$s = "x" x (32 << 20); $i = 0; $i++ while $i < 2_000_000; print "ok\\n"'] } }, "user");
    assert.equal(r.out, "ok\n");
    assert.equal(r.exit.usage.source, "proc");
    const cpuUs = Number(r.exit.usage.cpuUserUs) + Number(r.exit.usage.cpuSystemUs);
    assert.ok(cpuUs >= 20_000, `cpu ${cpuUs} µs`);
    assert.ok(r.exit.usage.tasksPeak >= 1);
    // The children it waited for count too, as wait4 reports them.
    const kids = await runExt(g, { process: { cmd: "bash", args: ["-c", "perl -e '$i = 0; $i++ while $i < 5_000_000'; true"] } }, "user");
    const kidsUs = Number(kids.exit.usage.cpuUserUs) + Number(kids.exit.usage.cpuSystemUs);
    assert.ok(kidsUs >= 20_000, `cpu with a waited-for child ${kidsUs} µs`);
  });

  it("invalid limits are invalid_argument", async () => {
    const err = await startError(g, { process: { cmd: "true" }, limits: { memoryMaxBytes: 1000 } });
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /memory_max_bytes.*minimum/);
  });

  it("the daemon protects itself from the OOM killer when it can (-1000), and says so when it cannot", () => {
    const adj = readFileSync(`/proc/${d.pid}/oom_score_adj`, "utf8").trim();
    if (haveCapability(CAP_SYS_RESOURCE)) assert.equal(adj, "-1000");
    else assert.ok(d.logs.some((l) => String(l.msg).includes("oom_score_adj")), "a log line explains why not");
  });
});

describe("limits through cgroup v2 forced on the empty unified hierarchy", { skip: noUnified }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;

  before(async () => {
    d = await startDaemon({ args: ["--cgroup-mode", "v2", "--cgroup-root", "/sys/fs/cgroup/unified"] });
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("the process is placed in its own v2 cgroup before it runs, and the CPU limit works from cpu.stat", async () => {
    const placed = await runExt(g, { process: { cmd: "grep", args: ["^0::", "/proc/self/cgroup"] }, limits: { cpuTimeMs: 10_000 } }, "user");
    // In its cgroup namespace the run's cgroup is the root; the daemon's view names it.
    assert.equal(placed.out, "0::/\n");
    assert.match((await getProcess(g, placed.id)).execution.cgroups[0], /\/envd-ts\/\d+\/\d+-1$/);
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", "while :; do :; done"] }, limits: { cpuTimeMs: 500 } }, "user");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_CPU_LIMIT");
    assert.equal(r.exit.usage.source, "cgroup_v2");
    assert.ok(Number(r.exit.usage.cpuUserUs) + Number(r.exit.usage.cpuSystemUs) >= 500_000);
    const info = await getProcess(g, r.id);
    assert.ok(info.execution.cgroups[0].startsWith("/sys/fs/cgroup/unified/envd-ts/"));
    await waitFor(() => !existsSync(info.execution.cgroups[0]), 5000, "cgroup removal");
  });

  it("a controller the hierarchy lacks is failed_precondition, naming it, memory included (no RLIMIT_AS fallback)", async () => {
    const pids = await startError(g, { process: { cmd: "true" }, limits: { pidsMax: 10 } });
    assert.equal(pids.code, grpc.status.FAILED_PRECONDITION);
    assert.match(pids.details, /pids_max cannot be applied: the pids controller is not enabled/);
    const cpu = await startError(g, { process: { cmd: "true" }, limits: { cpuCores: 0.5 } });
    assert.equal(cpu.code, grpc.status.FAILED_PRECONDITION);
    assert.match(cpu.details, /cpu_cores cannot be applied: the cpu controller/);

    const mem = await startError(g, { process: { cmd: "perl", args: ALLOC_256M }, limits: { memoryMaxBytes: 64 * MiB } }, "user");
    assert.equal(mem.code, grpc.status.FAILED_PRECONDITION);
    assert.match(mem.details, /memory_max_bytes cannot be applied: the memory controller is not enabled/);
  });

  it("a tree kill reaches an orphaned child through the v2 cgroup", async () => {
    let id = 0;
    let orphan = 0;
    const run = runExt(
      g,
      { process: { cmd: "bash", args: ["-c", 'setsid bash -c "sleep 300 >/dev/null 2>&1 & echo \\$!"; sleep 300'] }, limits: { cpuTimeMs: 60_000 }, stdin: false },
      "user",
      (m: Any) => {
        if (m.started) id = Number(m.started.id);
        if (m.output) orphan = Number(Buffer.from(m.output.data).toString().trim());
      },
    );
    await waitFor(() => orphan > 0, 5000, "the orphan's pid");
    await unary(g.ext, "Signal", { process: { id }, name: "KILL", target: "TARGET_TREE" });
    await run;
    await waitFor(() => !alive(orphan), 5000, "the orphan to be killed");
  });
});

describe("daemon-wide defaults (--default-*) seen through the e2b SDK and the extension", { skip: noV1 }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;

  before(async () => {
    d = await startDaemon({ args: ["--default-memory-max", "64M", "--default-pids-max", "100"] });
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("an E2B command gets the default limits: the OOM kill looks as in E2B, the extension history says OOM_KILLED", async () => {
    const { e2b, sbx } = await e2bSandbox(d);
    const cg = await sbx.commands.run("cat /proc/self/cgroup; sleep 30", { user: "user", background: true });
    await waitFor(() => existsSync(`/proc/${cg.pid}`), 5000, "the command");
    await waitFor(() => /memory:.*\/envd-ts\/\d+\/\d+-1/.test(readFileSync(`/proc/${cg.pid}/cgroup`, "utf8")), 5000, "the command in its cgroups");
    const seen = readFileSync(`/proc/${cg.pid}/cgroup`, "utf8");
    assert.match(seen, /pids:.*\/envd-ts\/\d+\/\d+-1/);
    await cg.kill();
    let pid = 0;
    await assert.rejects(
      sbx.commands.run(`perl ${ALLOC_256M.map((a) => `'${a}'`).join(" ")}`, { user: "user", onStdout: () => {} }).catch((err: Any) => {
        assert.ok(err instanceof e2b.CommandExitError);
        assert.equal(err.exitCode, -1);
        assert.equal(err.error, "signal: killed");
        throw err;
      }),
    );
    const hist = await unary(g.ext, "ListProcesses", { filter: "FILTER_FINISHED" });
    const oom = hist.processes.find((p: Any) => p.config.args.join(" ").includes("perl"));
    pid = oom.pid;
    assert.ok(pid > 0);
    assert.equal(oom.exit.outcome, "EXIT_OUTCOME_OOM_KILLED");
    assert.ok([200, 204].includes(await health(d)));
  });

  it("a request may lower a default but not raise or remove it without --allow-override", async () => {
    const low = await runExt(g, { process: { cmd: "true" }, limits: { memoryMaxBytes: 32 * MiB } }, "user");
    const info = await getProcess(g, low.id);
    assert.equal(Number(info.execution.limits.memoryMaxBytes), 32 * MiB);
    assert.equal(info.execution.limits.pidsMax, 100, "the other default still applies");
    for (const memoryMaxBytes of [128 * MiB, 0]) {
      const err = await startError(g, { process: { cmd: "true" }, limits: { memoryMaxBytes } });
      assert.equal(err.code, grpc.status.PERMISSION_DENIED);
      assert.match(err.details, /memory_max_bytes .* --allow-override/);
    }
  });

  it("with --allow-override a request may raise a default", async () => {
    const d2 = await startDaemon({ args: ["--default-memory-max", "64M", "--allow-override"] });
    const g2 = grpcClients(d2);
    try {
      const r = await runExt(g2, { process: { cmd: "perl", args: ALLOC_256M }, limits: { memoryMaxBytes: 1024 * MiB } }, "user");
      assert.equal(r.out, "268435456\n");
      const none = await runExt(g2, { process: { cmd: "true" }, limits: { memoryMaxBytes: 0 } }, "user");
      const info = await getProcess(g2, none.id);
      assert.equal(info.execution.limits.memoryMaxBytes, undefined);
    } finally {
      g2.close();
      await d2.stop();
    }
  });

  it("a bad default stops the daemon with a clear message", async () => {
    await assert.rejects(startDaemon({ args: ["--default-memory-max", "lots"] }), /exited early with 2/);
    await assert.rejects(startDaemon({ args: ["--cgroup-mode", "v3"] }), /exited early with 2/);
  });
});

// Everything the daemon needs must be readable by `user` (a checkout under /root is not).
const AS_USER = ["setpriv", "--reuid=user", "--regid=user", "--init-groups", "--"];
const userCannotRun = spawnSync(AS_USER[0]!, [...AS_USER.slice(1), "test", "-r", join(process.cwd(), "dist/main.js")]).status !== 0 && "user cannot read this checkout's dist/main.js";

describe("a daemon that is not root", { skip: userCannotRun }, () => {
  it("starts without cgroups when it may not create its cgroup directories, runs its own user's commands, and refuses limits and other users clearly", async () => {
    // A run directory the daemon's own user may write (its state directory lives there).
    const runDir = mkdtempSync(join(tmpdir(), "envd-run-user-"));
    chownSync(runDir, Number(spawnSync("id", ["-u", "user"]).stdout), Number(spawnSync("id", ["-g", "user"]).stdout));
    const d = await startDaemon({ wrapper: AS_USER, args: ["--default-user", "user", "--run-dir", runDir] });
    const g = grpcClients(d);
    try {
      const why = d.logs.map((l) => String(l.cgroups ?? "")).find((c) => c.startsWith("no cgroups"));
      assert.match(why ?? "", /^no cgroups \(cannot create .*(EACCES|EPERM|EROFS)/);
      const own = await runExt(g, { process: { cmd: "id", args: ["-u"] } }, "user");
      assert.equal(own.out, `${spawnSync("id", ["-u", "user"]).stdout.toString()}`);
      const limited = await startError(g, { process: { cmd: "true" }, limits: { pidsMax: 10 } }, "user");
      assert.equal(limited.code, grpc.status.FAILED_PRECONDITION);
      assert.match(limited.details, /pids_max cannot be applied/);
      const asRoot = await startError(g, { process: { cmd: "true" } }, "root");
      assert.notEqual(asRoot.code, grpc.status.OK);
      assert.match(asRoot.details, /operation not permitted/);
      assert.equal(await health(d), 204);
    } finally {
      g.close();
      assert.equal(await d.stop(), 0);
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});

