// User namespaces per process (docs/limits-isolation.md) through a real daemon and real
// processes: root inside and the run-as user outside, capabilities of its own
// namespace only, PTY mode, limits and masked paths alongside, the daemon-wide
// --user-namespace flag, and the kernel's refusal as failed_precondition.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { e2bSandbox, grpcClients } from "./process-helpers.js";
import { getProcess, haveV1Controllers, runExt, startError } from "./limits-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const MiB = 1024 * 1024;
const ALLOC_256M = ["-e", 'my $s = "x" x (256 << 20); print length($s), "\\n"'];
const PTY = { size: { cols: 80, rows: 24 } };

/** uid and gid of `name` from /etc/passwd. */
function account(name: string): { uid: number; gid: number } {
  const m = new RegExp(`^${name}:[^:]*:(\\d+):(\\d+):`, "m").exec(readFileSync("/etc/passwd", "utf8"));
  if (!m) throw new Error(`no ${name} in /etc/passwd`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** gid of group `name` from /etc/group. */
function groupId(name: string): number {
  const m = new RegExp(`^${name}:[^:]*:(\\d+):`, "m").exec(readFileSync("/etc/group", "utf8"));
  if (!m) throw new Error(`no group ${name}`);
  return Number(m[1]);
}

/** "Key:\tvalue" lines of /proc/<pid>/status into a map. */
function statusFields(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split("\n").map((l) => l.split(/:\s+/) as [string, string]));
}

const sh = (script: string) => ({ cmd: "bash", args: ["-c", script] });

/** Whether this machine lets root create user namespaces at all. */
const usernsAvailable = spawnSync("unshare", ["--user", "true"]).status === 0;
const noUserns = !usernsAvailable && "user namespaces are not available here";

describe("user namespace per process", { skip: noUserns }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  let dir: string;
  const user = account("user");

  before(async () => {
    d = await startDaemon();
    g = grpcClients(d);
    dir = mkdtempSync(join(tmpdir(), "envd-userns-"));
    chmodSync(dir, 0o777);
  });
  after(async () => {
    g.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("as `user`: uid and gid 0 inside, only user's ids mapped, a namespace of its own; reported in the execution", async () => {
    const r = await runExt(g, { process: sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user"), security: { userNamespace: true } }, "user");
    const lines = r.out.trim().split("\n");
    assert.deepEqual(lines.slice(0, 2), ["0", "0"], r.out);
    assert.deepEqual(lines[2]!.trim().split(/\s+/), ["0", String(user.uid), "1"]);
    assert.deepEqual(lines[3]!.trim().split(/\s+/), ["0", String(user.gid), "1"]);
    assert.equal(lines.length, 5, "nothing else is mapped");
    assert.match(lines[4]!, /^user:\[\d+\]$/);
    assert.notEqual(lines[4], readlinkSync(`/proc/${d.pid}/ns/user`), "not the daemon's namespace");
    assert.equal(r.exit.exitCode, 0);
    const info = await getProcess(g, r.id);
    assert.equal(info.execution.userNamespace, true);
    assert.equal(info.execution.uid, user.uid, "the identity outside");
    assert.ok(info.execution.enforcement.includes(`user_namespace: uid ${user.uid} outside is 0 inside`), JSON.stringify(info.execution.enforcement));
    const plain = await runExt(g, { process: sh("id -u; readlink /proc/self/ns/user") }, "user");
    assert.equal(plain.out, `${user.uid}\n${readlinkSync(`/proc/${d.pid}/ns/user`)}\n`, "nothing changes unless asked");
    assert.equal((await getProcess(g, plain.id)).execution.userNamespace, false);
  });

  it("outside it is only the run-as user: its files are user's, a root-owned file stays closed", async () => {
    const rootFile = join(dir, "root-owned");
    writeFileSync(rootFile, "root only\n", { mode: 0o644 });
    chmodSync(rootFile, 0o644);
    const made = join(dir, "made-inside");
    const r = await runExt(g, { process: sh(`exec 2>&1; touch ${made}; echo more >> ${rootFile}; echo rc=$?; chown 0:0 ${rootFile}; echo chown=$?`), security: { userNamespace: true } }, "user");
    assert.match(r.out, /Permission denied\nrc=1\n/);
    assert.match(r.out, /chown=1\n$/, "CAP_CHOWN of its namespace does not reach an unmapped owner");
    assert.equal(readFileSync(rootFile, "utf8"), "root only\n");
    const st = statSync(made);
    assert.deepEqual([st.uid, st.gid], [user.uid, user.gid]);
    const ls = await runExt(g, { process: sh(`stat -c %u:%g ${made} ${rootFile}`), security: { userNamespace: true } }, "user");
    assert.equal(ls.out, "0:0\n65534:65534\n", "inside, user's file is root's and root's file is the overflow id");
  });

  it("it holds the capabilities of its own namespace: unshare -m and -n work inside, not for the same user without it", async () => {
    const inside = await runExt(g, { process: sh("exec 2>&1; unshare -m true && echo mount-ok; unshare -n true && echo net-ok; grep CapEff /proc/self/status"), security: { userNamespace: true } }, "user");
    assert.match(inside.out, /^mount-ok\nnet-ok\nCapEff:\s+[0-9a-f]+\n$/);
    assert.doesNotMatch(inside.out, /CapEff:\s+0{16}\n/);
    const outside = await runExt(g, { process: sh("exec 2>&1; unshare -m true; echo rc=$?") }, "user");
    assert.match(outside.out, /unshare failed: Operation not permitted\nrc=1\n/);
    const dropped = await runExt(g, { process: sh("exec 2>&1; unshare -m true; echo rc=$?; grep -E '^Cap(Eff|Bnd)' /proc/self/status"), security: { userNamespace: true, dropCapabilities: ["ALL"] } }, "user");
    assert.match(dropped.out, /unshare failed: Operation not permitted\nrc=1\n/, "dropped capabilities are gone inside too");
    const st = statusFields(dropped.out.split("\n").slice(2).join("\n"));
    assert.deepEqual([st.CapEff, st.CapBnd], ["0000000000000000", "0000000000000000"]);
    assert.deepEqual((await getProcess(g, dropped.id)).execution.capabilities, []);
    // The default seccomp profile denies unshare inside too; root of its namespace holds CAP_SYS_ADMIN there, so no_new_privs is not needed.
    const filtered = await runExt(g, { process: sh("exec 2>&1; unshare -m true; echo rc=$?; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status"), security: { userNamespace: true, seccomp: { profile: "default" } } }, "user");
    assert.match(filtered.out, /unshare failed: Operation not permitted\nrc=1\nNoNewPrivs:\s+0\nSeccomp:\s+2\n$/);
  });

  it("supplementary groups are kept: shown as the overflow gid, still opening a group's file", async () => {
    const admFile = join(dir, "adm-only");
    writeFileSync(admFile, "for adm\n");
    chownSync(admFile, 0, groupId("adm"));
    chmodSync(admFile, 0o640);
    const r = await runExt(g, { process: sh(`exec 2>&1; id -G; cat ${admFile}`), runAs: { user: "user", supplementaryGroups: ["adm"] }, security: { userNamespace: true } });
    assert.equal(r.out, "0 65534\nfor adm\n");
    const without = await runExt(g, { process: sh(`exec 2>&1; cat ${admFile}`), runAs: { user: "user", clearSupplementaryGroups: true }, security: { userNamespace: true } });
    assert.match(without.out, /Permission denied/);
  });

  it("a PTY process works in its namespace (the keeper and the command are both inside)", async () => {
    const r = await runExt(g, { process: sh("id -u; tty >/dev/null && echo tty-ok; unshare -m true && echo mount-ok"), pty: PTY, security: { userNamespace: true } }, "user");
    assert.equal(r.out.replace(/\r/g, ""), "0\ntty-ok\nmount-ok\n");
    assert.equal(r.exit.exitCode, 0);
  });

  it("with a memory limit and a masked path: the process is in its cgroup (OOM-killed) and the path is hidden", { skip: !haveV1Controllers() && "cgroup v1 controllers are not mounted" }, async () => {
    const secret = join(dir, "secret");
    writeFileSync(secret, "top secret\n");
    chmodSync(secret, 0o644);
    const masked = await runExt(g, { process: sh(`cat ${secret}; echo "[masked]"; id -u; grep memory /proc/self/cgroup`), limits: { memoryMaxBytes: 64 * MiB }, security: { userNamespace: true, maskedPaths: [secret] } }, "user");
    const info = await getProcess(g, masked.id);
    const memDir: string = info.execution.cgroups.find((p: string) => p.includes("/memory/"));
    assert.ok(memDir, "a memory cgroup was used");
    // Its cgroup is the root of its cgroup namespace.
    assert.equal(masked.out.replace(/^\d+:memory:/m, ""), `[masked]\n0\n/\n`);
    const stays = await runExt(g, { process: sh(`unshare -m sh -c 'umount ${secret} 2>/dev/null; cat ${secret}; echo "[still masked]"'`), security: { userNamespace: true, maskedPaths: [secret] } }, "user");
    assert.equal(stays.out, "[still masked]\n", "the kernel locks the mask in a mount namespace made inside");
    const oom = await runExt(g, { process: { cmd: "perl", args: ALLOC_256M }, limits: { memoryMaxBytes: 64 * MiB }, security: { userNamespace: true } }, "user");
    assert.equal(oom.exit.outcome, "EXIT_OUTCOME_OOM_KILLED");
  });
});

describe("--user-namespace: every process in its own user namespace", { skip: noUserns }, () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;

  before(async () => {
    d = await startDaemon({ args: ["--user-namespace"] });
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("an E2B command that asks nothing runs as root inside, as `user` outside", async () => {
    const { sbx } = await e2bSandbox(d);
    const r = await sbx.commands.run("id -u; cat /proc/self/uid_map", { user: "user" });
    const [id, map] = r.stdout.trim().split("\n");
    assert.equal(id, "0");
    assert.deepEqual(map!.trim().split(/\s+/), ["0", String(account("user").uid), "1"]);
  });

  it("a request cannot turn it off without --allow-override (permission_denied); with it, it can (ENVD_USER_NAMESPACE set)", async () => {
    const err = await startError(g, { process: { cmd: "true" }, security: { userNamespace: false } }, "user");
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.match(err.details, /user_namespace false is not allowed.*--allow-override/);
    const d2 = await startDaemon({ args: ["--allow-override"], env: { ENVD_USER_NAMESPACE: "true" } });
    const g2 = grpcClients(d2);
    try {
      const off = await runExt(g2, { process: { cmd: "id", args: ["-u"] }, security: { userNamespace: false } }, "user");
      assert.equal(off.out, `${account("user").uid}\n`);
      const on = await runExt(g2, { process: { cmd: "id", args: ["-u"] } }, "user");
      assert.equal(on.out, "0\n", "the default still applies to requests that do not ask");
    } finally {
      g2.close();
      await d2.stop();
    }
  });
});

// The daemon runs as root of a user namespace of its own (uid and gid 0 mapped
// to themselves, setgroups allowed) whose user.max_user_namespaces is 0: that
// limit is per namespace, so the host's stays as it is.
const NO_USERNS_WRAPPER = `
if [ "$1" = "--inside" ]; then
  shift
  while [ -z "$(cat /proc/self/uid_map)" ]; do sleep 0.02; done
  exec sh "$0" --mapped "$@"
fi
if [ "$1" = "--mapped" ]; then
  shift
  echo 0 > /proc/sys/user/max_user_namespaces || exit 1
  exec "$@"
fi
me=$$
(
  while [ "$(readlink /proc/$me/ns/user)" = "$(readlink /proc/self/ns/user)" ]; do sleep 0.02; done
  echo "0 0 1" > /proc/$me/uid_map && echo "0 0 1" > /proc/$me/gid_map
) &
exec unshare --user sh "$0" --inside "$@"
`;

describe("the kernel refuses a user namespace", () => {
  it("the start fails with failed_precondition naming the cause, pipes and PTY; the host's limit is untouched", async () => {
    const before = readFileSync("/proc/sys/user/max_user_namespaces", "utf8");
    const dir = mkdtempSync(join(tmpdir(), "envd-nouserns-"));
    const script = join(dir, "wrap.sh");
    writeFileSync(script, NO_USERNS_WRAPPER);
    // Where the host has none, the plain daemon meets the refusal already.
    const d = await startDaemon({ wrapper: usernsAvailable ? ["sh", script] : [], args: ["--no-cgroups"] });
    const g = grpcClients(d);
    try {
      for (const pty of [undefined, PTY]) {
        const err = await startError(g, { process: { cmd: "true" }, pty, security: { userNamespace: true } });
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION, err.details);
        if (usernsAvailable) assert.match(err.details, /: creating a user namespace \(user\.max_user_namespaces is 0 or reached\): no space left on device$/);
        else assert.match(err.details, /: creating a user namespace/);
      }
      const ok = await runExt(g, { process: { cmd: "echo", args: ["still works"] } });
      assert.equal(ok.out, "still works\n");
    } finally {
      g.close();
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(readFileSync("/proc/sys/user/max_user_namespaces", "utf8"), before);
  });
});
