// process.Process on the wire (Connect protocol, JSON codec, as the SDK speaks
// it): exact event JSON, error codes and texts of the process service (docs/protocol.md), environment,
// chunk sizes, keepalives, retained ends.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { connectStream, connectUnary, userAuth, waitFor, alive } from "./process-helpers.js";

type Frame = { flags: number; json: Record<string, unknown> };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const ev = (f: Frame): any => (f.json as any).event;

describe("process.Process wire format", () => {
  let d: Daemon;
  const start = (msg: unknown, headers: Record<string, string> = {}) => connectStream(d, "/process.Process/Start", msg, { authorization: userAuth("user"), ...headers });
  const unary = (method: string, msg: unknown) => connectUnary(d, `/process.Process/${method}`, msg);

  before(async () => {
    d = await startDaemon({ args: ["--history-ttl-seconds", "600"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("emits start, data, end and the end-stream frame with E2B's exact JSON", async () => {
    const ok = await start({ process: { cmd: "/bin/echo", args: ["hi"] } });
    assert.equal(ok.status, 200);
    assert.equal(ok.contentType, "application/connect+json");
    const [s, data, end, trailer] = ok.frames;
    assert.deepEqual(Object.keys(ev(s!)), ["start"]);
    assert.ok(ev(s!).start.pid > 0);
    assert.deepEqual(data!.json, { event: { data: { stdout: Buffer.from("hi\n").toString("base64") } } });
    assert.deepEqual(end!.json, { event: { end: { exited: true, status: "exit status 0" } } });
    assert.equal(trailer!.flags, 2);
    assert.deepEqual(trailer!.json, {});
    assert.equal(ok.frames.length, 4);

    const fail = await start({ process: { cmd: "/bin/sh", args: ["-c", "exit 1"] } });
    assert.deepEqual(fail.frames.at(-2)!.json, { event: { end: { exitCode: 1, exited: true, status: "exit status 1", error: "exit status 1" } } });

    const killed = await start({ process: { cmd: "/bin/sh", args: ["-c", "kill -9 $$"] } });
    assert.deepEqual(killed.frames.at(-2)!.json, { event: { end: { exitCode: -1, status: "signal: killed", error: "signal: killed" } } });
    const termed = await start({ process: { cmd: "/bin/sh", args: ["-c", "kill -TERM $$"] } });
    assert.deepEqual(termed.frames.at(-2)!.json, { event: { end: { exitCode: -1, status: "signal: terminated", error: "signal: terminated" } } });
  });

  it("composes the environment exactly as E2B: PATH, HOME, USER, LOGNAME, defaults, request envs", async () => {
    const r = await start({ process: { cmd: "/usr/bin/env", envs: { FOO: "1", HOME: "/override" } } });
    const text = Buffer.concat(r.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.stdout, "base64"))).toString();
    const env = Object.fromEntries(text.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
    assert.deepEqual(Object.keys(env).sort(), ["E2B_SANDBOX", "FOO", "HOME", "LOGNAME", "PATH", "USER"]);
    assert.equal(env.HOME, "/override");
    assert.equal(env.USER, "user");
    assert.equal(env.LOGNAME, "user");
    assert.equal(env.PATH, process.env.PATH);
    // A PTY gets the same: no TERM or PWD unless asked for.
    const p = await start({ process: { cmd: "/usr/bin/env" }, pty: { size: { cols: 80, rows: 24 } } });
    const ptyText = Buffer.concat(p.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.pty, "base64"))).toString();
    const keys = ptyText.trim().split(/\r?\n/).map((l) => l.slice(0, l.indexOf("="))).sort();
    assert.deepEqual(keys, ["E2B_SANDBOX", "HOME", "LOGNAME", "PATH", "USER"]);
  });

  it("splits output into chunks of at most 32 KiB (pipes) and 16 KiB (pty), losing nothing", async () => {
    const pipes = await start({ process: { cmd: "/usr/bin/head", args: ["-c", "1000000", "/dev/zero"] } });
    const sizes = pipes.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.stdout, "base64").length);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 1_000_000);
    assert.ok(Math.max(...sizes) <= 32 * 1024, `largest ${Math.max(...sizes)}`);
    const pty = await start({ process: { cmd: "/bin/sh", args: ["-c", "head -c 300000 /dev/zero | tr '\\0' a"] }, pty: { size: { cols: 80, rows: 24 } } });
    const ptySizes = pty.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.pty, "base64").length);
    assert.equal(ptySizes.reduce((a, b) => a + b, 0), 300_000);
    assert.ok(Math.max(...ptySizes) <= 16 * 1024, `largest ${Math.max(...ptySizes)}`);
  });

  it("sends keepalives on idle streams, never before the start event", async () => {
    const r = await start({ process: { cmd: "/bin/sleep", args: ["2.3"] } }, { "keepalive-ping-interval": "1" });
    const kinds = r.frames.filter((f) => f.flags === 0).map((f) => Object.keys(ev(f))[0]);
    assert.equal(kinds[0], "start");
    assert.equal(kinds.at(-1), "end");
    assert.ok(kinds.filter((k) => k === "keepalive").length >= 2, kinds.join(","));
    assert.deepEqual(r.frames.find((f) => ev(f)?.keepalive)!.json, { event: { keepalive: {} } });
  });

  it("reports start errors as a 200 with an end-stream error: user, cwd, and setup failures", async () => {
    const unknownUser = await connectStream(d, "/process.Process/Start", { process: { cmd: "/bin/true" } }, { authorization: userAuth("nobody-such") });
    assert.equal(unknownUser.status, 200);
    assert.deepEqual(unknownUser.frames[0]!.json, { error: { code: "unauthenticated", message: "invalid username: 'nobody-such'" } });
    const badCwd = await start({ process: { cmd: "/bin/true", cwd: "/nope/x" } });
    assert.deepEqual(badCwd.frames[0]!.json, { error: { code: "invalid_argument", message: "cwd '/nope/x' does not exist" } });
    const notDir = await start({ process: { cmd: "/bin/true", args: ["a"], cwd: "/etc/passwd" } });
    assert.deepEqual(notDir.frames[0]!.json, { error: { code: "invalid_argument", message: "error starting process '/bin/true a': chdir /etc/passwd: not a directory" } });
    // The cwd is entered as the user, as Go's exec does.
    const noAccess = await start({ process: { cmd: "/bin/true", cwd: "/root" } });
    assert.deepEqual(noAccess.frames[0]!.json, { error: { code: "invalid_argument", message: "error starting process '/bin/true': chdir /root: permission denied" } });
  });

  it("ends a command that cannot be executed like E2B's shell wrapper: exit 127 or 126 with a message", async () => {
    const missing = await start({ process: { cmd: "no-such-binary-q" } });
    assert.ok(ev(missing.frames[0]!).start.pid > 0);
    const stderr = Buffer.concat(missing.frames.filter((f) => ev(f)?.data?.stderr).map((f) => Buffer.from(ev(f).data.stderr, "base64"))).toString();
    assert.equal(stderr, "envd: exec: no-such-binary-q: No such file or directory\n");
    assert.deepEqual(missing.frames.at(-2)!.json, { event: { end: { exitCode: 127, exited: true, status: "exit status 127", error: "exit status 127" } } });
    const notExec = await start({ process: { cmd: "/etc/passwd" } });
    assert.deepEqual(notExec.frames.at(-2)!.json, { event: { end: { exitCode: 126, exited: true, status: "exit status 126", error: "exit status 126" } } });
    assert.deepEqual(notExec.frames.at(-1)!.json, {});
    const pty = await start({ process: { cmd: "no-such-binary-q" }, pty: { size: { cols: 80, rows: 24 } } });
    const ptyText = Buffer.concat(pty.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.pty, "base64"))).toString();
    assert.equal(ptyText, "envd: exec: no-such-binary-q: No such file or directory\r\n");
    assert.deepEqual(pty.frames.at(-2)!.json, { event: { end: { exitCode: 127, exited: true, status: "exit status 127", error: "exit status 127" } } });
  });

  it("Connect: not_found, live attach by tag, and the retained end after exit", async () => {
    const nf = await connectStream(d, "/process.Process/Connect", { process: { pid: 4_000_000 } });
    assert.deepEqual(nf.frames[0]!.json, { error: { code: "not_found", message: "process with pid 4000000 not found" } });
    const nfTag = await connectStream(d, "/process.Process/Connect", { process: { tag: "nope" } });
    assert.deepEqual(nfTag.frames[0]!.json, { error: { code: "not_found", message: "process with tag nope not found" } });
    const none = await connectStream(d, "/process.Process/Connect", { process: {} });
    assert.deepEqual(none.frames[0]!.json, { error: { code: "unimplemented", message: "invalid input type *process.ProcessSelector" } });

    const ctl = new AbortController();
    const startCall = start({ process: { cmd: "/bin/sh", args: ["-c", "read x; echo got $x; exit 2"] }, tag: "wire-tag" }, {}).catch(() => undefined);
    void startCall;
    let pid = 0;
    await waitFor(async () => {
      const l = await unary("List", {});
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const p = ((l.json.processes ?? []) as any[]).find((x) => x.tag === "wire-tag");
      pid = p?.pid ?? 0;
      return pid > 0;
    });
    const attached = connectStream(d, "/process.Process/Connect", { process: { tag: "wire-tag" } }, {}, ctl.signal);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await unary("SendInput", { process: { pid }, input: { stdin: Buffer.from("x\n").toString("base64") } })).status, 200);
    const got = await attached;
    assert.deepEqual(got.frames[0]!.json, { event: { start: { pid } } });
    assert.deepEqual(got.frames.find((f) => ev(f)?.data)!.json, { event: { data: { stdout: Buffer.from("got x\n").toString("base64") } } });
    assert.deepEqual(got.frames.at(-2)!.json, { event: { end: { exitCode: 2, exited: true, status: "exit status 2", error: "exit status 2" } } });
    // Within 30 s of the exit, Connect gets start and the retained end.
    const late = await connectStream(d, "/process.Process/Connect", { process: { pid } });
    assert.deepEqual(late.frames.map((f) => f.json), [{ event: { start: { pid } } }, { event: { end: { exitCode: 2, exited: true, status: "exit status 2", error: "exit status 2" } } }, {}]);
    const lateTag = await connectStream(d, "/process.Process/Connect", { process: { tag: "wire-tag" } });
    assert.equal(lateTag.frames.length, 3);
  });

  it("input, resize, close and signal errors have E2B's codes and texts", async () => {
    const longRun = start({ process: { cmd: "/bin/sleep", args: ["30"] }, stdin: false, tag: "wire-nostdin" });
    const ptyRun = start({ process: { cmd: "/bin/sleep", args: ["30"] }, pty: { size: { cols: 80, rows: 24 } }, tag: "wire-pty" });
    let pipePid = 0;
    let ptyPid = 0;
    await waitFor(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const procs = ((await unary("List", {})).json.processes ?? []) as any[];
      pipePid = procs.find((p) => p.tag === "wire-nostdin")?.pid ?? 0;
      ptyPid = procs.find((p) => p.tag === "wire-pty")?.pid ?? 0;
      return pipePid > 0 && ptyPid > 0;
    });
    const stdin64 = Buffer.from("x").toString("base64");
    const cases: [string, unknown, number, string, string][] = [
      ["SendInput", { process: { pid: pipePid }, input: { stdin: stdin64 } }, 500, "internal", "error writing to stdin: stdin not enabled or closed"],
      ["SendInput", { process: { pid: pipePid }, input: { pty: stdin64 } }, 500, "internal", "error writing to tty: tty not assigned to process — input should be written to the stdin, not the tty"],
      ["SendInput", { process: { pid: ptyPid }, input: { stdin: stdin64 } }, 500, "internal", "error writing to stdin: tty assigned to process — input should be written to the pty, not the stdin"],
      ["SendInput", { process: { pid: pipePid }, input: {} }, 501, "unimplemented", "invalid input type <nil>"],
      ["SendInput", { input: { stdin: stdin64 } }, 501, "unimplemented", "invalid input type *process.ProcessSelector"],
      ["SendInput", { process: { pid: 4_000_001 }, input: { stdin: stdin64 } }, 404, "not_found", "process with pid 4000001 not found"],
      ["Update", { process: { pid: pipePid }, pty: { size: { cols: 10, rows: 10 } } }, 500, "internal", "error resizing tty: tty not assigned to process"],
      ["CloseStdin", { process: { pid: ptyPid } }, 500, "unknown", "error closing stdin: cannot close stdin for PTY process — send Ctrl+D (0x04) instead"],
      ["SendSignal", { process: { pid: pipePid }, signal: "SIGNAL_UNSPECIFIED" }, 501, "unimplemented", "invalid signal: SIGNAL_UNSPECIFIED"],
      ["SendSignal", { process: { pid: pipePid }, signal: 2 }, 501, "unimplemented", "invalid signal: 2"],
      ["SendSignal", { process: { pid: 4_000_001 }, signal: "SIGNAL_SIGKILL" }, 404, "not_found", "process with pid 4000001 not found"],
    ];
    for (const [method, msg, status, code, message] of cases) {
      const r = await unary(method, msg);
      assert.deepEqual({ method, status: r.status, json: r.json }, { method, status, json: { code, message } });
    }
    // The no-ops succeed: Update without pty, CloseStdin on a /dev/null stdin, empty stdin.
    assert.equal((await unary("Update", { process: { pid: ptyPid } })).status, 200);
    assert.equal((await unary("CloseStdin", { process: { pid: pipePid } })).status, 200);
    assert.equal((await unary("CloseStdin", { process: { pid: pipePid } })).status, 200);
    // SIGTERM ends both; their streams end with E2B's end event.
    assert.equal((await unary("SendSignal", { process: { pid: pipePid }, signal: "SIGNAL_SIGTERM" })).status, 200);
    assert.equal((await unary("SendSignal", { process: { tag: "wire-pty" }, signal: "SIGNAL_SIGKILL" })).status, 200);
    assert.deepEqual((await longRun).frames.at(-2)!.json, { event: { end: { exitCode: -1, status: "signal: terminated", error: "signal: terminated" } } });
    assert.deepEqual((await ptyRun).frames.at(-2)!.json, { event: { end: { exitCode: -1, status: "signal: killed", error: "signal: killed" } } });
    assert.equal(alive(pipePid), false);
  });

  it("a stdin pipe is the default: the command reads until CloseStdin", async () => {
    const run = start({ process: { cmd: "/bin/cat" }, tag: "wire-cat" });
    let pid = 0;
    await waitFor(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      pid = (((await unary("List", {})).json.processes ?? []) as any[]).find((p) => p.tag === "wire-cat")?.pid ?? 0;
      return pid > 0;
    });
    assert.equal((await unary("SendInput", { process: { pid }, input: { stdin: Buffer.from("abc").toString("base64") } })).status, 200);
    assert.equal((await unary("SendInput", { process: { pid }, input: { stdin: "" } })).status, 200);
    assert.equal((await unary("CloseStdin", { process: { pid } })).status, 200);
    const r = await run;
    const out = Buffer.concat(r.frames.filter((f) => ev(f)?.data).map((f) => Buffer.from(ev(f).data.stdout, "base64"))).toString();
    assert.equal(out, "abc");
    assert.deepEqual(r.frames.at(-2)!.json, { event: { end: { exited: true, status: "exit status 0" } } });
  });

  it("a background child holding stdout delays the end (as in E2B) until SendSignal, which ends it promptly", async () => {
    const run = start({ process: { cmd: "/bin/bash", args: ["-c", "sleep 30 & setsid sleep 31 & echo esc=$! >&2; echo started"] }, tag: "wire-holder" });
    let pid = 0;
    await waitFor(async () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      pid = (((await unary("List", {})).json.processes ?? []) as any[]).find((p) => p.tag === "wire-holder")?.pid ?? 0;
      return pid > 0;
    });
    await waitFor(() => !alive(pid), 3000, "bash to exit");
    await new Promise((r) => setTimeout(r, 300));
    // bash is gone, its children keep the pipe open: still listed, no end yet.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    assert.ok((((await unary("List", {})).json.processes ?? []) as any[]).some((p) => p.pid === pid));
    const t0 = Date.now();
    assert.equal((await unary("SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" })).status, 200);
    const r = await run;
    assert.ok(Date.now() - t0 < 3000, "ended promptly");
    assert.deepEqual(r.frames.at(-2)!.json, { event: { end: { exited: true, status: "exit status 0" } } });
    // Whole command lines: other suites on the machine may run `sleep 300`.
    const commands = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").map((l) => l.trim());
    assert.ok(!commands.includes("sleep 30"), "the child in the session was killed");
    // The one that left the session and was orphaned before the kill is found through the run's tracking cgroup.
    const stderr = Buffer.concat(r.frames.filter((f) => ev(f)?.data?.stderr).map((f) => Buffer.from(ev(f).data.stderr, "base64"))).toString();
    const escaped = Number(/esc=(\d+)/.exec(stderr)![1]);
    await waitFor(() => !alive(escaped), 5000, "the child that left the session to be killed too");
  });

  it("a Connect-Timeout-Ms deadline ends the stream with deadline_exceeded and kills the process", async () => {
    const r = await start({ process: { cmd: "/bin/sh", args: ["-c", "echo $$; exec sleep 30"] } }, { "connect-timeout-ms": "700" });
    const pid = Number(Buffer.from(ev(r.frames.find((f) => ev(f)?.data)!).data.stdout, "base64").toString().trim());
    assert.deepEqual(r.frames.at(-1)!.json, { error: { code: "deadline_exceeded", message: "the operation timed out" } });
    assert.equal(r.frames.some((f) => ev(f)?.end), false);
    await waitFor(() => !alive(pid), 3000, "timed-out process to die");
  });
});
