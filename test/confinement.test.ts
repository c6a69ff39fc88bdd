// Isolation that holds in production, attacked for real through real clients
// against a real daemon: root (the e2b SDK's default user) inside a process with
// limits or masked / read-only paths tries to leave its cgroup, lift its limits,
// unmount its masks and remount its read-only paths; and every command tree is
// tracked, so kill and timeout reach descendants that left the session and were
// orphaned (double fork, setsid), with a cgroup or, without one, a subreaper.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { alive, e2bSandbox, grpcClients, unary, waitFor } from "./process-helpers.js";
import { getProcess, haveV1Controllers, runExt, startError } from "./limits-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** What confinement takes, as documented: dac_read_search, sys_module, sys_rawio, sys_ptrace, sys_admin, setfcap. */
const CONFINE_DROP_CAPS = [2n, 16n, 17n, 19n, 21n, 31n].reduce((m, b) => m | (1n << b), 0n);

/** A pure cgroup v2 machine (systemd) whose root offers the pids controller; else the v1 hierarchies of a hybrid one. */
const V2 = (() => {
  try {
    return readFileSync("/sys/fs/cgroup/cgroup.controllers", "utf8").split(/\s+/).includes("pids");
  } catch {
    return false;
  }
})();
const noCgroups = !V2 && !haveV1Controllers() && "neither cgroup v1 controllers nor a cgroup v2 root with pids";

/** The run's cgroup of `pid` as the host (the test) sees it: the v1 pids line, or the v2 one. */
function pidsCgroupOf(pid: number): string {
  const text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  return (V2 ? /^0::(.*)$/m : /^\d+:pids:(.*)$/m).exec(text)?.[1] ?? "";
}

/** The pids.max file of a run from ProcessInfo.execution.cgroups. */
function pidsMaxFile(cgroups: string[]): string {
  return V2 ? join(cgroups[0]!, "pids.max") : join(cgroups.find((p) => p.includes("/pids/"))!, "pids.max");
}

/** Where the script tries to move itself: the root cgroup.procs of the pids hierarchy (v1) or of the unified one (v2). */
const ROOT_PROCS = V2 ? "/sys/fs/cgroup/cgroup.procs" : "/sys/fs/cgroup/pids/cgroup.procs";

/**
 * Every way out a root process has tried, in one script: cgroup.procs of the hierarchy's
 * root, the same through the daemon's /proc/<pid>/root, a fresh cgroupfs in a user namespace
 * mapping root, unmounting a mask, remounting a read-only path read-write. Prints "tried"
 * and its pid, then waits, so that the test looks at it from outside.
 */
function escapeScript(masked: string, ro: string): string {
  return [
    "exec 2>/dev/null",
    `echo $$ > ${ROOT_PROCS}`,
    `echo $$ > /proc/$PPID/root${ROOT_PROCS}`,
    "mkdir -p /tmp/envd-cg-$$",
    V2
      ? `unshare -U -r -C -m sh -c 'mount -t cgroup2 none /tmp/envd-cg-$$ && echo 100000 > /tmp/envd-cg-$$/pids.max'`
      : `unshare -U -r -C -m sh -c 'mount -t cgroup -o pids none /tmp/envd-cg-$$ && echo 100000 > /tmp/envd-cg-$$/pids.max'`,
    `umount ${masked}; umount -l ${masked}`,
    `mount -o remount,rw ${ro}; mount -o remount,bind,rw ${ro}`,
    `echo "masked: $(cat ${masked})"`,
    `touch ${ro}/escaped`,
    "echo tried $$",
    "sleep 300",
  ].join("\n");
}

describe(`root cannot lift its limits or isolation (cgroup ${V2 ? "v2" : "v1"})`, { skip: noCgroups }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  let dir: string;

  before(async () => {
    d = await startDaemon({ args: ["--default-pids-max", "64"] });
    g = grpcClients(d);
    dir = mkdtempSync(join(tmpdir(), "envd-confine-"));
    writeFileSync(join(dir, "secret"), "top secret\n");
    mkdirSync(join(dir, "ro"));
  });
  after(async () => {
    g.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  /** Runs the escape script until it says "tried"; returns its pid, output and process id. */
  async function attack(req: Any): Promise<{ pid: number; out: () => string; id: number; done: Promise<unknown> }> {
    let out = "";
    let id = 0;
    const done = runExt(g, { ...req, process: { cmd: "bash", args: ["-c", escapeScript(join(dir, "secret"), join(dir, "ro"))] }, stdin: false }, "root", (m: Any) => {
      if (m.started) id = Number(m.started.id);
      if (m.output) out += Buffer.from(m.output.data).toString();
    }).catch((err) => err);
    await waitFor(() => /tried \d+/.test(out), 20_000, "the escape attempts");
    return { pid: Number(/tried (\d+)/.exec(out)![1]), out: () => out, id, done };
  }

  it("an E2B command as root under the default pids limit stays in its cgroup; its limit holds", async () => {
    const { sbx } = await e2bSandbox(d);
    let out = "";
    // No masks here: the paths are only for the script's shape.
    const h = await sbx.commands.run(escapeScript("/nonexistent/secret", "/nonexistent/ro"), { background: true, user: "root", onStdout: (s: string) => void (out += s) });
    try {
      await waitFor(() => /tried \d+/.test(out), 20_000, "the escape attempts");
      const pid = Number(/tried (\d+)/.exec(out)![1]);
      assert.match(pidsCgroupOf(pid), /\/envd-ts\/\d+\/\d+-1$/, "still in the run's cgroup");
      const info = (await unary(g.ext, "ListProcesses", { filter: "FILTER_RUNNING" })).processes.find((p: Any) => p.pid === h.pid);
      assert.equal(readFileSync(pidsMaxFile(info.execution.cgroups), "utf8").trim(), "64", "the limit was not lifted");
    } finally {
      await h.kill();
    }
  });

  it("limits and masks hold for root with every capability dropped, no_new_privs and the default seccomp profile too", async () => {
    const a = await attack({ limits: { pidsMax: 30 }, security: { noNewPrivs: true, dropCapabilities: ["ALL"], seccomp: { profile: "default" }, maskedPaths: [join(dir, "secret")], readonlyPaths: [join(dir, "ro")] } });
    try {
      assert.match(pidsCgroupOf(a.pid), /\/envd-ts\/\d+\/\d+-1$/);
      assert.match(a.out(), /^masked: $/m);
      assert.equal(existsSync(join(dir, "ro", "escaped")), false);
    } finally {
      await unary(g.ext, "Signal", { process: { id: a.id }, name: "KILL", target: "TARGET_TREE" });
      await a.done;
    }
  });

  it("root with its default capabilities and limits, masked and read-only paths: nothing is lifted, nothing escapes", async () => {
    const a = await attack({ limits: { pidsMax: 30, memoryMaxBytes: 256 * 1024 * 1024 }, security: { maskedPaths: [join(dir, "secret")], readonlyPaths: [join(dir, "ro")] } });
    try {
      assert.match(pidsCgroupOf(a.pid), /\/envd-ts\/\d+\/\d+-1$/, "still in the run's cgroup");
      const info = await getProcess(g, a.id);
      assert.equal(readFileSync(pidsMaxFile(info.execution.cgroups), "utf8").trim(), "30", "the limit was not lifted");
      assert.match(a.out(), /^masked: $/m, "the mask is still there");
      assert.equal(existsSync(join(dir, "ro", "escaped")), false, "the read-only path stayed read-only");
      // What root keeps and loses, as documented: the run's cgroup is its root, cgroupfs is read-only.
      const seen = await runExt(g, { process: { cmd: "bash", args: ["-c", `grep ${V2 ? "^0::" : "pids"} /proc/self/cgroup; grep -E '^CapBnd' /proc/self/status; echo $$ > ${ROOT_PROCS} 2>&1`] }, limits: { pidsMax: 30 } });
      assert.match(seen.out, V2 ? /^0::\/$/m : /^\d+:pids:\/$/m, "the run's cgroup is the root of its cgroup namespace");
      const ours = BigInt("0x" + /CapBnd:\s+([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]);
      const bnd = BigInt("0x" + /CapBnd:\s+([0-9a-f]+)/.exec(seen.out)![1]);
      assert.equal(bnd, ours & ~CONFINE_DROP_CAPS, "exactly the confinement capabilities are gone");
      assert.match(seen.out, /Read-only file system/);
    } finally {
      await unary(g.ext, "Signal", { process: { id: a.id }, name: "KILL", target: "TARGET_TREE" });
      await a.done;
    }
  });

  it("a confined root cannot write the kernel's settings (a core_pattern or modprobe helper would run outside its cgroup)", async () => {
    // Writes the value a knob already has: harmless where it succeeds, which it must not.
    const script = "v=$(cat /proc/sys/kernel/core_uses_pid); echo $v > /proc/sys/kernel/core_uses_pid 2>&1 && echo wrote || echo refused";
    const confined = await runExt(g, { process: { cmd: "bash", args: ["-c", script] }, limits: { pidsMax: 30 } });
    assert.match(confined.out, /refused/, confined.out);
    assert.match(confined.out, /Read-only file system/);
  });

  it("a root command that asked for nothing keeps every capability and is tracked without a cgroup namespace (least surprise)", async () => {
    const d2 = await startDaemon();
    const g2 = grpcClients(d2);
    try {
      const plain = await runExt(g2, { process: { cmd: "bash", args: ["-c", `grep CapBnd /proc/self/status; grep ${V2 ? "^0::" : "pids"} /proc/self/cgroup`] } });
      const bnd = BigInt("0x" + /CapBnd:\s+([0-9a-f]+)/.exec(plain.out)![1]);
      assert.equal((bnd >> 21n) & 1n, 1n, "CAP_SYS_ADMIN stays");
      assert.match(plain.out, V2 ? /^0::.*\/envd-ts\/\d+\/\d+-1$/m : /pids:.*\/envd-ts\/\d+\/\d+-1$/m, "tracked in a cgroup, without a cgroup namespace");
    } finally {
      g2.close();
      await d2.stop();
    }
  });

  it("a capability that would lift limits or masks cannot be added to such a process: invalid_argument", async () => {
    const err = await startError(g, { process: { cmd: "true" }, limits: { pidsMax: 10 }, security: { addCapabilities: ["CAP_SYS_ADMIN"] } });
    assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
    assert.match(err.details, /CAP_SYS_ADMIN cannot be added to a process with limits or masked\/read-only paths/);
  });
});

/** A command whose grandchild leaves the session and is orphaned; prints the grandchild's pid. */
const ESCAPING = `(setsid sh -c 'echo gc=$$; exec sleep 300 >/dev/null 2>&1' &); sleep 300`;

function trackingSuite(name: string, args: string[]): void {
  describe(name, () => {
    let d: Daemon;
    const stray: number[] = [];

    before(async () => {
      d = await startDaemon({ args });
    });
    after(async () => {
      for (const pid of stray) {
        try {
          process.kill(pid, 9);
        } catch {
          /* gone */
        }
      }
      assert.equal(await d.stop(), 0);
    });

    for (const pty of [false, true]) {
      const how = pty ? "a PTY" : "a plain";
      it(`the timeout of ${how} command reaches its setsid grandchild`, async () => {
        const { sbx } = await e2bSandbox(d);
        let out = "";
        const onData = (s: string | Uint8Array) => void (out += typeof s === "string" ? s : Buffer.from(s).toString());
        const run = pty
          ? sbx.pty.create({ cols: 80, rows: 24, onData, timeoutMs: 15_000 }).then(async (h: Any) => {
              await sbx.pty.sendInput(h.pid, new TextEncoder().encode(`${ESCAPING}\n`));
              return h.wait();
            })
          : sbx.commands.run(ESCAPING, { timeoutMs: 15_000, onStdout: onData });
        const settled = run.catch((e: Any) => e);
        await waitFor(() => /gc=\d+/.test(out), 30_000, "the grandchild's pid");
        const gc = Number(/gc=(\d+)/.exec(out)![1]);
        stray.push(gc);
        assert.ok(alive(gc));
        await settled;
        await waitFor(() => !alive(gc), 30_000, "the grandchild to be killed by the timeout");
      });
    }

    it("kill() of a plain command reaches its setsid grandchild", async () => {
      const { sbx } = await e2bSandbox(d);
      let out = "";
      const h = await sbx.commands.run(ESCAPING, { background: true, onStdout: (s: string) => void (out += s) });
      await waitFor(() => /gc=\d+/.test(out), 30_000, "the grandchild's pid");
      const gc = Number(/gc=(\d+)/.exec(out)![1]);
      stray.push(gc);
      assert.ok(alive(gc));
      assert.equal(await h.kill(), true);
      await waitFor(() => !alive(gc), 10_000, "the grandchild to be killed");
    });

    it("a background process of a command that exits normally lives on, as with E2B's envd", async () => {
      const { sbx } = await e2bSandbox(d);
      const r = await sbx.commands.run("nohup sleep 300 >/dev/null 2>&1 & echo bg=$!");
      const bg = Number(/bg=(\d+)/.exec(r.stdout)![1]);
      stray.push(bg);
      // With a cgroup, the run's is released: what it left moves to the shared leftover cgroup.
      if (!args.includes("--no-cgroups") && !noCgroups) await waitFor(() => pidsCgroupOf(bg).endsWith("/leftover"), 10_000, "the background process to move to the leftover cgroup");
      assert.ok(alive(bg), "left running");
    });
  });
}

trackingSuite("every command tree is tracked: a cgroup per command", []);
trackingSuite("every command tree is tracked without cgroups (--no-cgroups): the command is a subreaper", ["--no-cgroups"]);
