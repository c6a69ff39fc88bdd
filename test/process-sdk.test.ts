// process.Process through the unmodified e2b SDK (sandbox.commands, sandbox.pty).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { alive, descendants, e2bSandbox, waitFor } from "./process-helpers.js";

const USER = { user: "user" } as const;
const GROUP = "envdts-proc-test";

describe("process service through the e2b SDK", () => {
  let d: Daemon;
  let e2b: Awaited<ReturnType<typeof e2bSandbox>>["e2b"];
  let sbx: Awaited<ReturnType<typeof e2bSandbox>>["sbx"];

  before(async () => {
    // A supplementary group for `user`, to see that spawned commands keep it.
    execFileSync("groupadd", ["-f", GROUP]);
    execFileSync("usermod", ["-aG", GROUP, "user"]);
    d = await startDaemon();
    ({ e2b, sbx } = await e2bSandbox(d));
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
    execFileSync("groupdel", [GROUP]);
  });

  it("runs a command in the foreground: stdout, stderr, exit code 0", async () => {
    const r = await sbx.commands.run("echo hello; echo oops >&2", USER);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, "hello\n");
    assert.equal(r.stderr, "oops\n");
    assert.equal(r.error, undefined);
  });

  it("streams output to onStdout and onStderr", async () => {
    const out: string[] = [];
    const err: string[] = [];
    await sbx.commands.run("for i in 1 2 3; do echo o$i; echo e$i >&2; sleep 0.05; done", { ...USER, onStdout: (s) => void out.push(s), onStderr: (s) => void err.push(s) });
    assert.equal(out.join(""), "o1\no2\no3\n");
    assert.equal(err.join(""), "e1\ne2\ne3\n");
  });

  it("reports a non-zero exit as CommandExitError with E2B's fields", async () => {
    await assert.rejects(sbx.commands.run("echo partial; exit 3", USER), (e: unknown) => {
      assert.ok(e instanceof e2b.CommandExitError);
      assert.equal(e.exitCode, 3);
      assert.equal(e.error, "exit status 3");
      assert.equal(e.stdout, "partial\n");
      return true;
    });
  });

  it("passes envs, resolves cwd, and runs as the requested user with supplementary groups", async () => {
    const r = await sbx.commands.run('echo "$FOO|$(pwd)|$(id -un)|$(id -Gn)|$HOME|$USER|$LOGNAME"', { ...USER, envs: { FOO: "bar baz" }, cwd: "/tmp" });
    const [foo, cwd, name, groups, home, userVar, logname] = r.stdout.trim().split("|");
    assert.equal(foo, "bar baz");
    assert.equal(cwd, "/tmp");
    assert.equal(name, "user");
    assert.ok(groups!.split(" ").includes(GROUP), `groups: ${groups}`);
    assert.equal(home, "/home/user");
    assert.equal(userVar, "user");
    assert.equal(logname, "user");
    const rel = await sbx.commands.run("pwd", { ...USER, cwd: "." });
    assert.equal(rel.stdout, "/home/user\n");
    const root = await sbx.commands.run("id -u; pwd", { user: "root" });
    assert.equal(root.stdout, "0\n/root\n");
    const self = await sbx.commands.run("echo $$", { ...USER, background: true });
    assert.equal((await self.wait()).stdout, `${self.pid}\n`);
  });

  it("rejects a cwd that does not exist with invalid_argument", async () => {
    await assert.rejects(sbx.commands.run("true", { ...USER, cwd: "/does/not/exist" }), (e: unknown) => {
      assert.ok(e instanceof e2b.InvalidArgumentError, String(e));
      assert.match((e as Error).message, /cwd '\/does\/not\/exist' does not exist/);
      return true;
    });
  });

  it("ends a missing command with exit 127 and the shell's message", async () => {
    await assert.rejects(sbx.commands.run("no-such-command-xyz", USER), (e: unknown) => {
      assert.ok(e instanceof e2b.CommandExitError);
      assert.equal(e.exitCode, 127);
      assert.match(e.stderr, /no-such-command-xyz: command not found/);
      return true;
    });
  });

  it("writes /dev/stdout and /dev/stderr (real pipes owned by the user)", async () => {
    const r = await sbx.commands.run("echo a > /dev/stdout; echo b > /dev/stderr", USER);
    assert.equal(r.stdout, "a\n");
    assert.equal(r.stderr, "b\n");
  });

  it("sends stdin and closes it (EOF)", async () => {
    const h = await sbx.commands.run("cat; echo done", { ...USER, background: true, stdin: true });
    await h.sendStdin("hello ");
    await h.sendStdin(new TextEncoder().encode("world\n"));
    await h.sendStdin("");
    await h.closeStdin();
    const r = await h.wait();
    assert.equal(r.stdout, "hello world\ndone\n");
  });

  it("gives /dev/null as stdin when stdin is not requested", async () => {
    const r = await sbx.commands.run("cat; echo eof", USER);
    assert.equal(r.stdout, "eof\n");
  });

  it("lists background commands with their original config and kills them", async () => {
    const h = await sbx.commands.run("sleep 30", { ...USER, background: true, envs: { A: "1" }, cwd: "/tmp" });
    const listed = (await sbx.commands.list()).find((p) => p.pid === h.pid);
    assert.ok(listed, "listed");
    assert.equal(listed.cmd, "/bin/bash");
    assert.deepEqual(listed.args, ["-l", "-c", "sleep 30"]);
    assert.deepEqual(listed.envs, { A: "1" });
    assert.equal(listed.cwd, "/tmp");
    const kids = descendants(h.pid);
    assert.equal(await h.kill(), true);
    await assert.rejects(h.wait(), (e: unknown) => {
      assert.ok(e instanceof e2b.CommandExitError);
      assert.equal(e.exitCode, -1);
      assert.equal(e.error, "signal: killed");
      return true;
    });
    // Once its end was reported, it is off the list: no window in between.
    assert.equal((await sbx.commands.list()).some((p) => p.pid === h.pid), false);
    // Reaped at once (E2B's own test checks `kill -0`), and the tree went with it.
    const check = await sbx.commands.run(`kill -0 ${h.pid} 2>/dev/null; echo $?`, USER);
    assert.equal(check.stdout, "1\n");
    for (const k of kids) assert.equal(alive(k), false, `child ${k} survived`);
    assert.equal((await sbx.commands.list()).some((p) => p.pid === h.pid), false);
    assert.equal(await sbx.commands.kill(h.pid), false);
  });

  it("connects to a running command and gets its live output and exit", async () => {
    const h = await sbx.commands.run("read x; echo got $x; exit 5", { ...USER, background: true, stdin: true });
    await h.disconnect();
    const out: string[] = [];
    const again = await sbx.commands.connect(h.pid, { onStdout: (s) => void out.push(s) });
    assert.equal(again.pid, h.pid);
    await sbx.commands.sendStdin(h.pid, "it\n");
    await assert.rejects(again.wait(), (e: unknown) => {
      assert.ok(e instanceof e2b.CommandExitError);
      assert.equal(e.exitCode, 5);
      return true;
    });
    assert.equal(out.join(""), "got it\n");
  });

  it("connecting to an unknown pid fails with not found", async () => {
    await assert.rejects(sbx.commands.connect(999_999), (e: unknown) => e instanceof e2b.NotFoundError);
  });

  it("a client that disconnects does not kill the command", async () => {
    const h = await sbx.commands.run("sleep 0.5; echo finished", { ...USER, background: true });
    await h.disconnect();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(alive(h.pid));
    // Still listed while running; it then finishes by itself (exit 0 retained for Connect).
    assert.ok((await sbx.commands.list()).some((p) => p.pid === h.pid));
    await waitFor(() => !alive(h.pid), 5000, "command to finish");
    const late = await sbx.commands.connect(h.pid);
    const r = await late.wait();
    assert.equal(r.exitCode, 0);
  });

  it("times out with TimeoutError and kills the command tree", async () => {
    const started = Date.now();
    await assert.rejects(sbx.commands.run("sleep 31.5 & sleep 31.5; echo never", { ...USER, timeoutMs: 1000 }), (e: unknown) => e instanceof e2b.TimeoutError);
    assert.ok(Date.now() - started < 10_000);
    await waitFor(() => !(execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes("sleep 31.5")), 15_000, "the timed-out tree to die");
    // The kernel shows the tree gone before the daemon has read the exit and the
    // end of output; the process leaves the list when its end is reported (as in
    // E2B's envd), so on a loaded machine that can come a little later.
    const listed = async () => (await sbx.commands.list()).some((p) => p.args.includes("sleep 31.5 & sleep 31.5; echo never"));
    await waitFor(async () => !(await listed()), 15_000, "the timed-out command to leave the list");
  });

  it("keeps a background command without timeout running past the deadline of others", async () => {
    const h = await sbx.commands.run("sleep 2", { ...USER, background: true, timeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(alive(h.pid));
    assert.equal(await h.kill(), true);
  });

  it("creates a PTY: input, output, resize seen by tput, and exit", async () => {
    const chunks: Uint8Array[] = [];
    const text = () => Buffer.concat(chunks).toString("utf8");
    const pty = await sbx.pty.create({ cols: 100, rows: 30, ...USER, onData: (d) => void chunks.push(d) });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("tput cols; echo TERM=$TERM; tty; echo PID=$$\n"));
    await waitFor(() => /[\r\n]100\r\n/.test(text()), 5000, "tput cols 100");
    // The echoes that follow tput arrive in later chunks.
    await waitFor(() => /TERM=xterm-256color/.test(text()) && /\/dev\/pts\/\d+/.test(text()), 5000, "TERM and the tty");
    // The reported pid is the shell itself, as in E2B.
    await waitFor(() => text().includes(`PID=${pty.pid}`), 5000, "the shell's own pid");
    await sbx.pty.resize(pty.pid, { cols: 133, rows: 40 });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("tput cols; tput lines\n"));
    await waitFor(() => /[\r\n]133\r\n40\r\n/.test(text()), 5000, "tput cols 133");
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("exit 0\n"));
    const r = await pty.wait();
    assert.equal(r.exitCode, 0);
  });

  it("kills a PTY and its children", async () => {
    const pty = await sbx.pty.create({ cols: 80, rows: 24, ...USER, onData: () => {} });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("sleep 100 & sleep 100\n"));
    await waitFor(() => descendants(pty.pid).length >= 2, 5000, "sleeps to start");
    const kids = descendants(pty.pid);
    assert.equal(await sbx.pty.kill(pty.pid), true);
    await assert.rejects(pty.wait(), (e: unknown) => e instanceof e2b.CommandExitError && e.exitCode === -1);
    await waitFor(() => kids.every((k) => !alive(k)), 3000, "pty children to die");
    assert.equal(alive(pty.pid), false);
  });
});
