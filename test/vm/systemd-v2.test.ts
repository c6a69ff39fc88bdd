// envd-ts in its real home: a Debian bookworm VM under QEMU, systemd as PID 1 starting
// deploy/envd.service, pure cgroup v2, the single executable at /usr/bin/envd. Run by
// `npm run test:vm` (after `npm test` in CI). Needs root, debootstrap and qemu-system-x86
// (scripts/vm/build-rootfs.sh installs them), ~2 min for the first root filesystem.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { bootVm, healthy, type Vm } from "../helpers/vm.js";
import type { Daemon } from "../helpers/daemon.js";
import { connectEnvelope, connectFrames, e2bSandbox, grpcClients, waitFor } from "../process-helpers.js";
import { getProcess, runExt } from "../limits-helpers.js";

const MiB = 1024 * 1024;
const TOKEN = "vm-secret-token-7f3a";

describe("envd-ts under systemd with cgroup v2 (QEMU VM)", { skip: process.getuid?.() !== 0 && "needs root" }, () => {
  let vm: Vm;
  let g: ReturnType<typeof grpcClients>;
  let sbx: Awaited<ReturnType<typeof e2bSandbox>>["sbx"];

  before(async () => {
    vm = await bootVm();
    g = grpcClients({ port: vm.port, url: vm.url } as Daemon);
    ({ sbx } = await e2bSandbox({ port: vm.port, url: vm.url } as Daemon));
  });
  after(async () => {
    g?.close();
    await vm?.stop();
  });

  // The same user actions measured on the idle VM. Under software emulation (tcg) on a shared
  // host everything is several times slower than in a hardware-virtualized sandbox (an idle
  // echo round trip 0.3-2.3 s, an idle /health p99 20-300 ms, depending on the host's load), so
  // the bounds under fire are an echo within 1 s or four times the idle figure, and a /health
  // p99 within 1 s or ten times the idle p99, whichever is larger: a daemon that stalls for
  // seconds, drops a probe (counted as 10 s) or restarts fails them; the 100 ms target of a real
  // sandbox is not shown here (the figures are printed: a memory hog's p99 was 160-400 ms).
  let idleEchoMs = 0;
  let idleHealthP99 = 0;
  const echoBound = () => Math.max(1000, 4 * idleEchoMs);
  const healthBound = () => Math.max(1000, 10 * idleHealthP99);

  /** A shell command as root through the SDK, its stdout. */
  const sh = async (cmd: string) => (await sbx.commands.run(cmd, { timeoutMs: 180_000 })).stdout;

  it("runs under systemd in envd.service, with commands in a workload tree outside the unit", async () => {
    assert.equal((await sh("cat /proc/1/comm")).trim(), "systemd");
    assert.equal((await sh("stat -f -c %T /sys/fs/cgroup")).trim(), "cgroup2fs");
    const daemonCgroup = await sh("cat /proc/$(systemctl show -p MainPID --value envd)/cgroup");
    assert.equal(daemonCgroup.trim(), "0::/system.slice/envd.service");
    // A plain command (no limits): in the workload tree, not in the unit that systemd kills.
    const own = (await sh("cat /proc/self/cgroup")).trim();
    assert.match(own, /^0::\/envd-ts\//, own);
  });

  it("the E2B SDK runs a command, writes and reads a file, and opens a PTY", async (t) => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await sbx.commands.run("echo warm", { user: "user" });
      times.push(performance.now() - t0);
    }
    idleEchoMs = median(times);
    const probe = probeHealth();
    await new Promise((r) => setTimeout(r, 3000));
    idleHealthP99 = p99(await probe.stop());
    t.diagnostic(`idle VM: echo round trips ${times.map((x) => x.toFixed(0)).join(" ")} ms, /health p99 ${idleHealthP99.toFixed(1)} ms`);
    const r = await sbx.commands.run("echo hi from $(id -un)", { user: "user" });
    assert.equal(r.stdout, "hi from user\n");
    await sbx.files.write("/home/user/vm.txt", "written through the SDK", { user: "user" });
    assert.equal(await sbx.files.read("/home/user/vm.txt", { user: "user" }), "written through the SDK");
    assert.equal((await sh("stat -c %U /home/user/vm.txt")).trim(), "user");
    const chunks: Uint8Array[] = [];
    const pty = await sbx.pty.create({ cols: 90, rows: 20, user: "user", onData: (d) => void chunks.push(d) });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("tput cols; exit 7\n"));
    const res = await pty.wait().catch((e: unknown) => e as { exitCode: number });
    assert.equal(res.exitCode, 7);
    assert.match(Buffer.concat(chunks).toString(), /[\r\n]90\r\n/);
  });

  it("a 64 MiB memory limit ends a 256 MiB allocation OOM_KILLED", async () => {
    const r = await runExt(g, { process: { cmd: "perl", args: ["-e", 'my $s = "x" x (256 << 20); print length($s), "\\n"'] }, limits: { memoryMaxBytes: 64 * MiB } }, "user");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_OOM_KILLED", JSON.stringify(r.exit));
    const info = await getProcess(g, r.id);
    assert.deepEqual(info.execution.enforcement, ["memory_max_bytes: cgroup_v2"]);
  });

  it("a pids limit contains a fork loop", async () => {
    const fork = '$| = 1; my $n = 0; for (1..40) { my $p = fork(); last unless defined $p; if ($p == 0) { sleep 30; exit 0 } $n++ } print "$n\\n"; kill 9, -$$; ';
    const r = await runExt(g, { process: { cmd: "perl", args: ["-e", fork] }, limits: { pidsMax: 8 } }, "user");
    const forked = Number(r.out.trim());
    assert.ok(forked >= 1 && forked <= 7, `forked ${r.out}`);
  });

  it("a CPU bandwidth limit of 0.2 cores holds a busy loop to about a fifth of the wall time", async () => {
    const busy = "my $t = time + 3; 1 while time < $t;";
    const r = await runExt(g, { process: { cmd: "perl", args: ["-e", busy] }, limits: { cpuCores: 0.2 } }, "user");
    const cpuMs = (Number(r.exit.usage.cpuUserUs) + Number(r.exit.usage.cpuSystemUs)) / 1000;
    assert.equal(r.exit.usage.source, "cgroup_v2");
    assert.ok(cpuMs > 100 && cpuMs < 1500, `cpu ${cpuMs} ms in 3 s of wall time`);
  });

  it("a CPU time limit ends the tree with CPU_LIMIT", async () => {
    const r = await runExt(g, { process: { cmd: "perl", args: ["-e", "1 while 1"] }, limits: { cpuTimeMs: 300 } }, "user");
    assert.equal(r.exit.outcome, "EXIT_OUTCOME_CPU_LIMIT", JSON.stringify(r.exit));
  });

  it("a root command with limits cannot leave its cgroup", async () => {
    const escape = "echo $$ > /sys/fs/cgroup/cgroup.procs 2>&1; echo $$ > /sys/fs/cgroup/system.slice/cgroup.procs 2>&1; cat /proc/self/cgroup";
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", escape] }, limits: { pidsMax: 64 } }, "root");
    const before = r.out.trim().split("\n").at(-1)!;
    const info = await getProcess(g, r.id);
    assert.ok(info.execution.cgroups[0], "has a cgroup");
    // Inside a cgroup namespace the process sees its own cgroup as "/": what matters is that it is still there.
    assert.ok(before === "0::/" || before.startsWith("0::/envd-ts/"), `after the attempt: ${before}`);
  });

  it("a root command cannot lift its masked or read-only paths", async () => {
    await sh("mkdir -p /srv/m /srv/ro && echo top-secret > /srv/m/secret && rm -f /srv/ro/planted");
    const attack = "umount /srv/m/secret; umount -l /srv/m/secret; cat /srv/m/secret; mount -o remount,rw /srv/ro; mount -o remount,rw,bind /srv/ro; touch /srv/ro/planted; echo done";
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", attack] }, security: { maskedPaths: ["/srv/m/secret"], readonlyPaths: ["/srv/ro"] } }, "root");
    assert.match(r.out, /done/);
    assert.doesNotMatch(r.out, /top-secret/);
    assert.equal((await sh("test -e /srv/ro/planted && echo planted || echo clean")).trim(), "clean");
  });

  it("a command survives `systemctl kill -s KILL envd`, and the restarted daemon answers", async () => {
    const h = await sbx.commands.run("sleep 600", { background: true, user: "user", timeoutMs: 0 });
    const pidBefore = (await sh("systemctl show -p MainPID --value envd")).trim();
    // The kill takes the daemon down under this very call: its answer may never come.
    await sbx.commands.run("systemctl kill -s KILL envd", { timeoutMs: 10_000 }).catch(() => undefined);
    await waitFor(async () => (await healthy(vm.url)) && (await sh("systemctl show -p MainPID --value envd").catch(() => pidBefore)).trim() !== pidBefore, 60_000, "systemd to restart envd");
    assert.equal((await sh(`kill -0 ${h.pid} && echo alive`)).trim(), "alive");
    await sh(`kill -9 ${h.pid}`);
  });

  it("a command survives `systemctl restart envd` (the unit keeps processes on stop)", async () => {
    const h = await sbx.commands.run("sleep 602", { background: true, user: "user", timeoutMs: 0 });
    const pidBefore = (await sh("systemctl show -p MainPID --value envd")).trim();
    await sbx.commands.run("(systemctl restart envd &)", { timeoutMs: 10_000 }).catch(() => undefined);
    await waitFor(async () => (await healthy(vm.url)) && (await sh("systemctl show -p MainPID --value envd").catch(() => pidBefore)).trim() !== pidBefore, 120_000, "envd to restart");
    assert.equal((await sh(`kill -0 ${h.pid} && echo alive`)).trim(), "alive");
    await sh(`kill -9 ${h.pid}`);
  });

  /** The daemon's main pid and systemd's restart count, to see that nothing of it restarted. */
  const daemonLife = async () => (await sh("systemctl show -p MainPID -p NRestarts --value envd")).trim();

  /** GET /health every 50 ms until stopped; the latencies in ms (a failure counts as 10 s). */
  function probeHealth(): { stop(): Promise<number[]> } {
    const lat: number[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const t = performance.now();
        lat.push((await healthy(vm.url)) ? performance.now() - t : 10_000);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return lat;
      },
    };
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

  /** What a user does while the sandbox is under fire: a new command, an upload, a download. */
  async function stillServes(tag: string): Promise<number> {
    const t = performance.now();
    const r = await sbx.commands.run(`echo ${tag}`, { user: "user" });
    const echoMs = performance.now() - t;
    assert.equal(r.stdout, `${tag}\n`);
    assert.ok(echoMs < echoBound(), `echo took ${echoMs.toFixed(0)} ms (bound ${echoBound().toFixed(0)} ms)`);
    const data = `${tag}-`.repeat(100_000);
    await sbx.files.write(`/home/user/${tag}.txt`, data, { user: "user" });
    assert.equal(await sbx.files.read(`/home/user/${tag}.txt`, { user: "user" }), data);
    return echoMs;
  }

  it("under a memory hog with no limits the daemon stays responsive and the kernel ends the hog inside the workload", async (t) => {
    const life = await daemonLife();
    const probe = probeHealth();
    const hog = await sbx.commands.run(`perl -e 'my @a; while (1) { push @a, "x" x (8 << 20) }'`, { background: true, user: "user", timeoutMs: 0 });
    // While it allocates up to the workload's ceiling, a user goes on working.
    await waitFor(async () => Number(await sh("cat /sys/fs/cgroup/envd-ts/memory.current")) > 256 * MiB, 60_000, "the hog to grow");
    const echoMs = await stillServes("hog");
    const end = await hog.wait().then(
      (r) => r,
      (e: unknown) => e as { exitCode: number; error?: string },
    );
    const lat = await probe.stop();
    t.diagnostic(`memory hog: echo ${echoMs.toFixed(0)} ms, /health p99 ${p99(lat).toFixed(1)} ms over ${lat.length} probes`);
    assert.notEqual(end.exitCode, 0, "the hog was ended");
    assert.match((await sh("cat /sys/fs/cgroup/envd-ts/memory.events")), /oom_kill [1-9]/);
    assert.ok(p99(lat) < healthBound(), `/health p99 ${p99(lat).toFixed(1)} ms over ${lat.length} probes (bound ${healthBound().toFixed(0)} ms)`);
    assert.equal(await daemonLife(), life, "the daemon did not restart");
  });

  it("under a CPU storm on every core with a thousand tasks the daemon stays responsive, and the storm can be killed", async (t) => {
    const life = await daemonLife();
    // Four busy loops (two per core) and a thousand sleeping tasks, forked without exec (cheap under emulation).
    const storm = await sbx.commands.run(`perl -e 'for (1..4) { fork or do { 1 while 1 } } for (1..1000) { fork or do { sleep 600; exit } } sleep 600'`, { background: true, user: "user", timeoutMs: 0 });
    const tasks = async () => Number(await sh("cat /sys/fs/cgroup/envd-ts/pids.current"));
    await waitFor(async () => (await tasks()) > 1000, 300_000, "the storm's tasks to start");
    const probe = probeHealth();
    const echoMs = await stillServes("storm");
    await new Promise((r) => setTimeout(r, 3000));
    const lat = await probe.stop();
    t.diagnostic(`CPU storm: echo ${echoMs.toFixed(0)} ms, /health p99 ${p99(lat).toFixed(1)} ms over ${lat.length} probes`);
    assert.equal(await storm.kill(), true);
    await waitFor(async () => (await tasks()) < 10, 60_000, "the storm's tasks to die");
    assert.ok(p99(lat) < healthBound(), `/health p99 ${p99(lat).toFixed(1)} ms over ${lat.length} probes (bound ${healthBound().toFixed(0)} ms)`);
    assert.equal(await daemonLife(), life, "the daemon did not restart");
  });

  it("the access token is not in /proc/<pid>/cmdline of a daemon started with --access-token", async () => {
    await sh(
      "mkdir -p /etc/systemd/system/envd.service.d && printf '[Service]\\nExecStart=\\nExecStart=/usr/bin/envd --isnotfc --port 49983 --access-token " +
        TOKEN +
        "\\n' > /etc/systemd/system/envd.service.d/token.conf && systemctl daemon-reload && (systemctl restart envd &)",
    ).catch(() => undefined);
    const authed = { "X-Access-Token": TOKEN, "Content-Type": "application/json" };
    // The restart runs in the background: the old daemon (no token) may still answer for a while.
    await waitFor(async () => (await fetch(`${vm.url}/envs`).catch(() => undefined))?.status === 401, 120_000, "the daemon to restart with a token");
    assert.equal((await fetch(`${vm.url}/envs`, { headers: authed })).status, 200, "requests with the token are served");
    // Read the daemon's command line as `user`, as an attacker inside the sandbox would.
    const start = await fetch(`${vm.url}/process.Process/Start`, {
      method: "POST",
      headers: { ...authed, "Content-Type": "application/connect+json", Authorization: `Basic ${Buffer.from("user:").toString("base64")}` },
      body: new Uint8Array(connectEnvelope({ process: { cmd: "bash", args: ["-c", "tr '\\0' ' ' < /proc/$(pgrep -o -x envd)/cmdline"] } })),
    });
    const text = stdoutOf(Buffer.from(await start.arrayBuffer()));
    assert.match(text, /^\/usr\/bin\/envd --isnotfc --port 49983 --access-token /);
    assert.doesNotMatch(text, new RegExp(TOKEN));
  });

  it("/init's timestamp sets the guest clock, as E2B's envd does", async () => {
    const ahead = Date.now() + 3600_000;
    const res = await fetch(`${vm.url}/init`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Access-Token": TOKEN },
      body: JSON.stringify({ accessToken: TOKEN, timestamp: new Date(ahead).toISOString() }),
    });
    assert.equal(res.status, 204);
    const start = await fetch(`${vm.url}/process.Process/Start`, {
      method: "POST",
      headers: { "X-Access-Token": TOKEN, "Content-Type": "application/connect+json" },
      body: new Uint8Array(connectEnvelope({ process: { cmd: "date", args: ["+%s"] } })),
    });
    const guest = Number(stdoutOf(Buffer.from(await start.arrayBuffer())).trim());
    assert.ok(Math.abs(guest * 1000 - ahead) < 120_000, `guest clock ${guest}, wanted about ${Math.round(ahead / 1000)}`);
  });
});

/** The stdout bytes of a Connect JSON process.Process/Start stream. */
function stdoutOf(body: Buffer): string {
  return connectFrames(body)
    .map((f) => (f.json as { event?: { data?: { stdout?: string } } }).event?.data?.stdout ?? "")
    .map((b64) => Buffer.from(b64, "base64").toString())
    .join("");
}
