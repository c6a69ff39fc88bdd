// Identity and hardening per process (docs/limits-isolation.md) through real clients against a
// real daemon: run-as user and groups, no_new_privs, capabilities, seccomp,
// masked and read-only paths, the daemon-wide policy through the e2b SDK, and
// launcher failures reported as failed_precondition. User namespaces: userns.test.ts.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { e2bSandbox, grpcClients } from "./process-helpers.js";
import { SYSCALL_TABLE } from "../src/isolation/syscall-table.js";
import { CAP_SYS_RESOURCE, getProcess, haveCapability, runExt, startError } from "./limits-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const STATUS = ["-E", "^(NoNewPrivs|CapEff|CapBnd|CapAmb|Seccomp):", "/proc/self/status"];

/** "Key:\tvalue" lines of /proc/<pid>/status into a map. */
function statusFields(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split("\n").map((l) => l.split(/:\s+/) as [string, string]));
}

describe("isolation per process", () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    g = grpcClients(d);
    dir = mkdtempSync(join(tmpdir(), "envd-iso-"));
  });
  after(async () => {
    g.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("no_new_privs and dropping every capability, as root: NoNewPrivs 1, CapEff and CapBnd 0", async () => {
    const r = await runExt(g, { process: { cmd: "grep", args: STATUS }, security: { noNewPrivs: true, dropCapabilities: ["ALL"] } });
    const st = statusFields(r.out);
    assert.equal(st.NoNewPrivs, "1");
    assert.equal(st.CapEff, "0000000000000000");
    assert.equal(st.CapBnd, "0000000000000000");
    assert.equal(st.Seccomp, "0");
    const plain = statusFields((await runExt(g, { process: { cmd: "grep", args: STATUS } })).out);
    assert.equal(plain.NoNewPrivs, "0", "nothing is applied unless asked");
    assert.notEqual(plain.CapEff, "0000000000000000");
    const info = await getProcess(g, r.id);
    assert.equal(info.execution.noNewPrivs, true);
    assert.deepEqual(info.execution.capabilities, []);
    assert.equal(info.execution.capabilitiesUnchanged, false);
  });

  it("dropping one capability removes only it (CAP_NET_RAW is bit 13)", async () => {
    const r = await runExt(g, { process: { cmd: "grep", args: STATUS }, security: { dropCapabilities: ["net_raw"] } });
    const st = statusFields(r.out);
    assert.equal((BigInt("0x" + st.CapBnd) >> 13n) & 1n, 0n);
    assert.equal((BigInt("0x" + st.CapEff) >> 0n) & 1n, 1n, "CAP_CHOWN stays");
  });

  it("the default seccomp profile makes unshare fail with EPERM, even for root; without it the same command works", async () => {
    const denied = await runExt(g, { process: { cmd: "unshare", args: ["-m", "true"] }, security: { seccomp: { profile: "default" } } });
    assert.match(denied.out, /unshare failed: Operation not permitted/);
    assert.equal(denied.exit.exitCode, 1);
    const st = statusFields((await runExt(g, { process: { cmd: "grep", args: STATUS }, security: { seccomp: { profile: "default" } } })).out);
    assert.equal(st.Seccomp, "2", "filter mode");
    assert.equal(st.NoNewPrivs, "0", "root keeps CAP_SYS_ADMIN, so no_new_privs is not needed");
    const ok = await runExt(g, { process: { cmd: "unshare", args: ["-m", "true"] } });
    assert.equal(ok.exit.exitCode, 0, ok.out);
    const mnt = await runExt(g, { process: { cmd: "mount", args: ["-t", "tmpfs", "none", dir] }, security: { seccomp: { profile: "default" } } });
    assert.match(mnt.out, /Operation not permitted|permission denied/i);
    assert.notEqual(mnt.exit.exitCode, 0);
  });

  it("a custom deny list (chdir) and an allow list: what is left out fails with EPERM", async () => {
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", "exec 2>&1; cd /tmp; echo rc=$?"] }, security: { seccomp: { deny: ["chdir"] } } }, "user");
    assert.match(r.out, /cd: \/tmp: Operation not permitted\nrc=1\n/);
    const st = statusFields((await runExt(g, { process: { cmd: "grep", args: STATUS }, security: { seccomp: { deny: ["chdir"] } } }, "user")).out);
    assert.equal(st.NoNewPrivs, "1", "a non-root user's filter implies no_new_privs (the kernel requires it)");
    // Allow-list mode with every syscall but chdir listed: the unlisted one fails with EPERM, the rest works.
    const everyButChdir = Object.keys(SYSCALL_TABLE[process.arch as "x64" | "arm64"]).filter((n) => n !== "chdir");
    const allowOnly = await runExt(g, { process: { cmd: "bash", args: ["-c", "exec 2>&1; echo hi; cd /tmp; echo rc=$?"] }, security: { seccomp: { allowOnly: everyButChdir } } }, "user");
    assert.match(allowOnly.out, /^hi\n.*cd: \/tmp: Operation not permitted\nrc=1\n$/s);
    const info = await getProcess(g, allowOnly.id);
    assert.equal(info.execution.seccompProfile, "custom");
  });

  it("unknown syscalls and capabilities are invalid_argument", async () => {
    const sys = await startError(g, { process: { cmd: "true" }, security: { seccomp: { deny: ["no_such_call"] } } });
    assert.equal(sys.code, grpc.status.INVALID_ARGUMENT);
    assert.match(sys.details, /unknown syscalls: no_such_call/);
    const cap = await startError(g, { process: { cmd: "true" }, security: { dropCapabilities: ["CAP_FLY"] } });
    assert.equal(cap.code, grpc.status.INVALID_ARGUMENT);
    assert.match(cap.details, /unknown capabilities: CAP_FLY/);
  });

  it("run as a user and groups given by name or id: id shows them", async () => {
    const named = await runExt(g, { process: { cmd: "id" }, runAs: { user: "user", group: "root", supplementaryGroups: ["adm", "100"] } });
    const uid = Number(readFileSync("/etc/passwd", "utf8").match(/^user:[^:]*:(\d+):/m)?.[1]);
    assert.equal(named.out, `uid=${uid}(user) gid=0(root) groups=0(root),4(adm),100(users)\n`);
    const byId = await runExt(g, { process: { cmd: "id", args: ["-u"] }, runAs: { user: String(uid), clearSupplementaryGroups: true } });
    assert.equal(byId.out, `${uid}\n`);
    const groups = await runExt(g, { process: { cmd: "id", args: ["-G"] }, runAs: { user: "user", clearSupplementaryGroups: true } });
    assert.equal(groups.out.trim().split(" ").length, 1);
    const home = await runExt(g, { process: { cmd: "bash", args: ["-c", 'echo "$USER $HOME $PWD"'] }, runAs: { user: "user" } });
    assert.equal(home.out, "user /home/user /home/user\n", "the run-as user's environment and home apply");
    const info = await getProcess(g, named.id);
    assert.equal(info.user, "user");
    assert.deepEqual([info.execution.uid, info.execution.gid, info.execution.groups], [uid, 0, [0, 4, 100]]);
    const bad = await startError(g, { process: { cmd: "id" }, runAs: { user: "nobody-here" } });
    assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
  });

  it("masked and read-only paths apply to that process only", async () => {
    const secret = join(dir, "secret.txt");
    const secretDir = join(dir, "secret-dir");
    const ro = join(dir, "ro");
    writeFileSync(secret, "top secret\n");
    mkdirSync(secretDir);
    writeFileSync(join(secretDir, "key"), "k\n");
    mkdirSync(ro);
    const script = [`cat ${secret}; echo "[file]"`, `ls -A ${secretDir}; echo "[dir]"`, `cat ${secretDir}/key`, `touch ${ro}/x && echo wrote-ro`, `touch ${dir}/y && echo wrote-rw`].join("; ");
    const r = await runExt(g, { process: { cmd: "bash", args: ["-c", script + " 2>&1"] }, security: { maskedPaths: [secret, secretDir], readonlyPaths: [ro] } });
    assert.match(r.out, /^\[file\]\n\[dir\]\n/, "the masked file reads empty and the masked directory is empty");
    assert.match(r.out, /No such file or directory/);
    assert.match(r.out, /Read-only file system/);
    assert.doesNotMatch(r.out, /top secret|wrote-ro/);
    assert.match(r.out, /wrote-rw/);
    // The daemon and other processes still see and write everything.
    assert.equal(readFileSync(secret, "utf8"), "top secret\n");
    const other = await runExt(g, { process: { cmd: "bash", args: ["-c", `cat ${secret}; touch ${ro}/x && echo wrote-ro`] } });
    assert.equal(other.out, "top secret\nwrote-ro\n");
    const rel = await startError(g, { process: { cmd: "true" }, security: { maskedPaths: ["relative/path"] } });
    assert.equal(rel.code, grpc.status.INVALID_ARGUMENT);
  });

  it("a PTY process gets the same hardening (the keeper's child is filtered, not the keeper)", async () => {
    const r = await runExt(g, { process: { cmd: "grep", args: STATUS }, pty: { size: { cols: 80, rows: 24 } }, security: { noNewPrivs: true, dropCapabilities: ["ALL"], seccomp: { profile: "default" } } });
    const st = statusFields(r.out.replace(/\r/g, ""));
    assert.equal(st.NoNewPrivs, "1");
    assert.equal(st.CapEff, "0000000000000000");
    assert.equal(st.Seccomp, "2");
    assert.equal(r.exit.exitCode, 0);
  });

  it("a step the launcher cannot apply fails the start with failed_precondition naming it (pipes and PTY)", { skip: haveCapability(CAP_SYS_RESOURCE) && "the daemon holds every capability" }, async () => {
    // CAP_SYS_RESOURCE is not held here, so it cannot be granted.
    for (const pty of [undefined, { size: { cols: 80, rows: 24 } }]) {
      const d2 = await startDaemon({ args: ["--allow-override"] });
      const g2 = grpcClients(d2);
      try {
        const err = await startError(g2, { process: { cmd: "true" }, pty, security: { addCapabilities: ["CAP_SYS_RESOURCE"] } });
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
        assert.match(err.details, /setting capabilities: operation not permitted/);
      } finally {
        g2.close();
        await d2.stop();
      }
    }
  });
});

describe("capabilities granted to a non-root user (ambient) need --allow-override", () => {
  it("CAP_NET_BIND_SERVICE for `user` shows in CapAmb and CapEff; without --allow-override it is permission_denied", async () => {
    const d = await startDaemon({ args: ["--allow-override"] });
    const g = grpcClients(d);
    try {
      const r = await runExt(g, { process: { cmd: "grep", args: STATUS }, security: { addCapabilities: ["net_bind_service"] } }, "user");
      const st = statusFields(r.out);
      assert.equal(st.CapAmb, "0000000000000400");
      assert.equal(st.CapEff, "0000000000000400");
    } finally {
      g.close();
      await d.stop();
    }
    const d2 = await startDaemon();
    const g2 = grpcClients(d2);
    try {
      const err = await startError(g2, { process: { cmd: "true" }, security: { addCapabilities: ["net_bind_service"] } }, "user");
      assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    } finally {
      g2.close();
      await d2.stop();
    }
  });
});

describe("daemon-wide security policy, seen through the e2b SDK", () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "envd-pol-"));
    writeFileSync(join(dir, "hidden"), "hidden\n");
    d = await startDaemon({ args: ["--no-new-privs", "--seccomp-profile", "default", "--drop-caps", "ALL", "--masked-paths", join(dir, "hidden"), "--readonly-paths", dir] });
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("every E2B command runs hardened: NoNewPrivs, no capabilities even as root, seccomp, masked and read-only paths", async () => {
    const { sbx } = await e2bSandbox(d);
    const st = statusFields((await sbx.commands.run(`grep -E '^(NoNewPrivs|CapEff|Seccomp):' /proc/self/status`, { user: "user" })).stdout);
    assert.deepEqual([st.NoNewPrivs, st.CapEff, st.Seccomp], ["1", "0000000000000000", "2"]);
    const root = await sbx.commands.run(`unshare -m true 2>&1; cat ${dir}/hidden; touch ${dir}/new 2>&1; grep CapEff /proc/self/status`, { user: "root" }).catch((e: Any) => e);
    assert.match(root.stdout, /unshare failed: Operation not permitted/);
    assert.doesNotMatch(root.stdout, /hidden/);
    assert.match(root.stdout, /Read-only file system/);
    assert.match(root.stdout, /CapEff:\s+0000000000000000/);
  });

  it("requests may tighten but not loosen the policy", async () => {
    const tighter = await runExt(g, { process: { cmd: "bash", args: ["-c", "cd /tmp"] }, security: { seccomp: { deny: ["chdir"] } } }, "user");
    assert.match(tighter.out, /Operation not permitted/);
    for (const security of [{ noNewPrivs: false }, { seccomp: { profile: "none" } }, { seccomp: { allow: ["unshare"] } }, { addCapabilities: ["CAP_CHOWN"] }]) {
      const err = await startError(g, { process: { cmd: "true" }, security });
      assert.equal(err.code, grpc.status.PERMISSION_DENIED, JSON.stringify(security));
      assert.match(err.details, /--allow-override/);
    }
  });
});
