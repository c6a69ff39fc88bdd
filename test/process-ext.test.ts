// The process extension (envdts.v1.ProcessControl) and StreamInput, through
// @grpc/grpc-js over h2c with stubs loaded from our .proto files.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { alive, collect, descendants, e2bSandbox, grpcClients, outputOf, unary, userMetadata, waitFor } from "./process-helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describe("process extension and StreamInput over gRPC (h2c)", () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  const md = () => userMetadata("user");
  const extStart = (req: Any, onMessage?: (m: Any) => void) => collect(g.ext.Start(req, md()), onMessage);
  const getProcess = (ref: Any) => unary(g.ext, "GetProcess", { process: ref }).then((r) => r.process);

  before(async () => {
    d = await startDaemon();
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("StreamInput (client streaming) feeds stdin of a process started with process.Process/Start", async () => {
    const chunks = ["first line\n", "second ", "line\n", "x".repeat(100_000), "\nlast\n"];
    const events = await collect(g.proc.Start({ process: { cmd: "/bin/cat" }, tag: "si-cat" }, md()), (m: Any) => {
      if (m.event.start) {
        const s = g.proc.StreamInput((err: Error | null) => assert.equal(err, null));
        s.write({ start: { process: { pid: m.event.start.pid } } });
        s.write({ keepalive: {} });
        for (const c of chunks) s.write({ data: { input: { stdin: Buffer.from(c) } } });
        s.end();
        // EOF once the stream is done: CloseStdin by tag.
        setTimeout(() => g.proc.CloseStdin({ process: { tag: "si-cat" } }, () => {}), 300);
      }
    });
    const out = Buffer.concat(events.filter((e: Any) => e.event.data).map((e: Any) => e.event.data.stdout)).toString();
    assert.equal(out, chunks.join(""));
    const end = events.at(-1).event.end;
    assert.equal(end.exitCode, 0);
    assert.equal(end.exited, true);
    assert.equal(end.status, "exit status 0");
    assert.equal(end._error, undefined, "error is absent on success");
  });

  it("StreamInput: an unknown process is not_found, data before start is failed_precondition", async () => {
    const r1 = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = g.proc.StreamInput((err: grpc.ServiceError | null) => resolve(err));
      s.write({ start: { process: { pid: 4_000_002 } } });
      s.end();
    });
    assert.equal(r1?.code, grpc.status.NOT_FOUND);
    assert.equal(r1?.details, "process with pid 4000002 not found");
    const r2 = await new Promise<grpc.ServiceError | null>((resolve) => {
      const s = g.proc.StreamInput((err: grpc.ServiceError | null) => resolve(err));
      s.write({ data: { input: { stdin: Buffer.from("x") } } });
      s.end();
    });
    assert.equal(r2?.code, grpc.status.FAILED_PRECONDITION);
  });

  it("Start: events carry offsets; merge_stderr puts stderr into stdout in order", async () => {
    const ev = await extStart({ process: { cmd: "/bin/sh", args: ["-c", "echo one; echo two >&2; echo three"] }, output: { mergeStderr: true } });
    assert.equal(ev[0].event, "started");
    assert.equal(ev[0].started.restartCount, 0);
    assert.ok(Number(ev[0].started.id) > 0);
    const outs = ev.filter((e: Any) => e.output);
    assert.ok(outs.every((e: Any) => e.output.stream === "OUTPUT_STREAM_STDOUT"));
    assert.equal(outputOf(ev), "one\ntwo\nthree\n");
    let expected = 0;
    for (const o of outs) {
      assert.equal(Number(o.output.offset), expected);
      expected += o.output.data.length;
    }
    const last = ev.at(-1);
    assert.equal(last.event, "exited");
    assert.equal(last.exited.final, true);
    assert.equal(last.exited.exit.outcome, "EXIT_OUTCOME_EXITED");
    assert.equal(last.exited.exit.exitCode, 0);
  });

  it("Start: capture_stdout false sends stdout to /dev/null, stderr still arrives", async () => {
    const ev = await extStart({ process: { cmd: "/bin/sh", args: ["-c", "echo hidden; echo shown >&2; test -c /proc/self/fd/1 && echo devnull >&2"] }, output: { captureStdout: false } });
    assert.equal(outputOf(ev, "OUTPUT_STREAM_STDOUT"), "");
    assert.equal(outputOf(ev, "OUTPUT_STREAM_STDERR"), "shown\ndevnull\n");
    const none = await extStart({ process: { cmd: "/bin/sh", args: ["-c", "echo a; echo b >&2; exit 3"] }, output: { captureStdout: false, captureStderr: false } });
    assert.equal(outputOf(none), "");
    assert.equal(none.at(-1).exited.exit.exitCode, 3);
  });

  it("replays output printed while no client was attached, with offsets and dropped bytes", async () => {
    const { sbx } = await e2bSandbox(d);
    // Started and left by an unmodified E2B client; it prints while nobody listens.
    const h = await sbx.commands.run("for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; read x; echo after-$x", { user: "user", background: true, stdin: true });
    await h.disconnect();
    await new Promise((r) => setTimeout(r, 800));
    const lines = "line1\nline2\nline3\nline4\nline5\n";
    const events: Any[] = [];
    const done = collect(g.ext.Attach({ process: { pid: h.pid }, oldest: true }), (m: Any) => {
      events.push(m);
      if (m.event === "attached") setTimeout(() => void sbx.commands.sendStdin(h.pid, "now\n"), 100);
    });
    await done;
    assert.equal(events[0].event, "attached");
    assert.equal(Number(events[0].attached.offset), 0);
    assert.equal(Number(events[0].attached.droppedBytes), 0);
    assert.equal(events[0].attached.process.pid, h.pid);
    assert.equal(events[0].attached.process.state, "PROCESS_STATE_RUNNING");
    assert.equal(outputOf(events), lines + "after-now\n");
    assert.equal(events.at(-1).exited.final, true);
    // From an offset: exactly the rest; finished processes replay from the history.
    const fromOffset = await collect(g.ext.Attach({ process: { pid: h.pid }, offset: 6 }));
    assert.equal(Number(fromOffset[0].attached.offset), 6);
    assert.equal(outputOf(fromOffset), lines.slice(6) + "after-now\n");
    assert.equal(fromOffset.at(-1).exited.exit.outcome, "EXIT_OUTCOME_EXITED");
    // Live only (no offset): nothing replayed, just the end of a finished process.
    const live = await collect(g.ext.Attach({ process: { pid: h.pid } }));
    assert.equal(outputOf(live), "");
    await assert.rejects(collect(g.ext.Attach({ process: { pid: h.pid }, offset: 10_000 })), (e: Any) => e.code === grpc.status.OUT_OF_RANGE);
  });

  it("an empty command is invalid_argument in the extension; E2B's Start runs it and reports exit 127", async () => {
    const before = (await unary(g.ext, "ListProcesses", {}, md())).processes.length;
    for (const req of [{ process: { cmd: "" } }, { process: { cmd: "", args: ["x"] } }, {}]) {
      await assert.rejects(extStart(req), (e: Any) => {
        assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
        assert.equal(e.details, "process.cmd is empty: name the program to run");
        return true;
      });
    }
    assert.equal((await unary(g.ext, "ListProcesses", {}, md())).processes.length, before);
    // What an E2B client sees stays as against E2B's envd (sh -c 'exec "$@"' -- ''): a start, then 127.
    const events = await collect(g.proc.Start({ process: { cmd: "" } }, md()));
    assert.ok(events[0].event.start.pid > 0);
    const end = events[events.length - 1].event.end;
    assert.equal(end.exitCode, 127);
    assert.equal(end.status, "exit status 127");
  });

  it("a PTY's reported size follows Update, and the terminal sees it", async () => {
    let out = "";
    let pid = 0;
    const done = collect(g.proc.Start({ process: { cmd: "/bin/sh" }, pty: { size: { cols: 80, rows: 24 } }, tag: "pty-size" }, md()), (m: Any) => {
      if (m.event.start) pid = m.event.start.pid;
      if (m.event.data?.pty) out += Buffer.from(m.event.data.pty).toString("utf8");
    });
    await waitFor(() => pid > 0, 10_000, "the PTY to start");
    assert.deepEqual((await getProcess({ tag: "pty-size" })).pty.size, { cols: 80, rows: 24 });
    await unary(g.proc, "Update", { process: { pid }, pty: { size: { cols: 150, rows: 60 } } }, md());
    assert.deepEqual((await getProcess({ tag: "pty-size" })).pty.size, { cols: 150, rows: 60 });
    await unary(g.proc, "SendInput", { process: { pid }, input: { pty: Buffer.from("stty size\n") } }, md());
    await waitFor(() => /60 150\r\n/.test(out), 10_000, "stty to see 60 rows, 150 columns");
    await unary(g.proc, "SendInput", { process: { pid }, input: { pty: Buffer.from("exit\n") } }, md());
    await done;
    // A finished process keeps its last size.
    assert.deepEqual((await getProcess({ tag: "pty-size" })).pty.size, { cols: 150, rows: 60 });
  });

  it("GetProcess and ListProcesses: running and finished, with outcome, times and duration", async () => {
    const call = g.ext.Start({ process: { cmd: "/bin/sleep", args: ["30"] }, tag: "ext-sleeper" }, md());
    const events = collect(call);
    // FILTER_RUNNING lists unfinished processes, which includes one still being spawned (STARTING).
    await waitFor(async () => (await unary(g.ext, "ListProcesses", { filter: "FILTER_RUNNING", tag: "ext-sleeper" })).processes[0]?.state === "PROCESS_STATE_RUNNING");
    const running = await getProcess({ tag: "ext-sleeper" });
    assert.equal(running.state, "PROCESS_STATE_RUNNING");
    assert.equal(running.user, "user");
    assert.equal(running.cwd, "/home/user");
    assert.deepEqual(running.config.args, ["30"]);
    assert.equal(running.exit, null);
    assert.ok(Number(running.startedAt.seconds) > 0);
    await unary(g.ext, "Signal", { process: { tag: "ext-sleeper" }, name: "SIGTERM", target: "TARGET_PROCESS" });
    const ev = await events;
    assert.equal(ev.at(-1).exited.exit.outcome, "EXIT_OUTCOME_SIGNALED");
    assert.equal(ev.at(-1).exited.exit.signalName, "SIGTERM");
    assert.equal(ev.at(-1).exited.exit.status, "signal: terminated");
    const finished = await getProcess({ id: running.id });
    assert.equal(finished.state, "PROCESS_STATE_STOPPED");
    assert.equal(finished.exit.signal, 15);
    assert.equal(finished.exit.exitCode, -1);
    assert.ok(finished.finishedAt);
    assert.ok(Number(finished.durationMs) >= 0);
    assert.equal(finished.runs.length, 1);
    const hist = await unary(g.ext, "ListProcesses", { filter: "FILTER_FINISHED", tag: "ext-sleeper" });
    assert.equal(hist.processes.length, 1);
    assert.equal((await unary(g.ext, "ListProcesses", { filter: "FILTER_RUNNING", tag: "ext-sleeper" })).processes.length, 0);
    await assert.rejects(getProcess({ pid: 4_000_003 }), (e: Any) => e.code === grpc.status.NOT_FOUND);
  });

  it("Signal delivers any signal by name or number, to the process or its group; SIGSTOP/SIGCONT show as suspended", async () => {
    const script = "trap 'echo got-usr1' USR1; trap 'echo got-hup' HUP; trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 0.05; done";
    const events: Any[] = [];
    const done = collect(g.ext.Start({ process: { cmd: "/bin/bash", args: ["-c", script] }, tag: "ext-sig" }, md()), (m: Any) => events.push(m));
    await waitFor(() => outputOf(events).includes("ready"));
    const ref = { tag: "ext-sig" };
    await unary(g.ext, "Signal", { process: ref, name: "usr1" });
    await waitFor(() => outputOf(events).includes("got-usr1"));
    await unary(g.ext, "Signal", { process: ref, number: 1 });
    await waitFor(() => outputOf(events).includes("got-hup"));
    await unary(g.ext, "Signal", { process: ref, name: "SIGSTOP" });
    await waitFor(async () => (await getProcess(ref)).suspended === true, 3000, "suspended");
    await unary(g.ext, "Signal", { process: ref, name: "CONT" });
    await waitFor(async () => (await getProcess(ref)).suspended === false, 3000, "resumed");
    await assert.rejects(unary(g.ext, "Signal", { process: ref, name: "SIGNOPE" }), (e: Any) => e.code === grpc.status.INVALID_ARGUMENT);
    await unary(g.ext, "Signal", { process: ref, name: "SIGINT", target: "TARGET_GROUP" });
    await done;
    assert.match(outputOf(events), /got-int/);
    assert.equal(events.at(-1).exited.exit.exitCode, 7);
    await assert.rejects(unary(g.ext, "Signal", { process: ref, name: "SIGINT" }), (e: Any) => e.code === grpc.status.FAILED_PRECONDITION);
  });

  it("honest outcomes: timed out (tree killed) and failed to start", async () => {
    const events: Any[] = [];
    const started = Date.now();
    await collect(g.ext.Start({ process: { cmd: "/bin/bash", args: ["-c", "sleep 40 & sleep 40 & echo up; wait"] }, timeoutMs: 600 }, md()), (m: Any) => events.push(m));
    assert.ok(Date.now() - started < 5000);
    const pid = events[0].started.pid;
    const exit = events.at(-1).exited.exit;
    assert.equal(exit.outcome, "EXIT_OUTCOME_TIMED_OUT");
    assert.equal(exit.signalName, "SIGKILL");
    assert.match(exit.error, /^timed out after 600 ms/);
    assert.equal(alive(pid), false);
    const info = await getProcess({ id: events[0].started.id });
    assert.equal(info.exit.outcome, "EXIT_OUTCOME_TIMED_OUT");

    const missing = await extStart({ process: { cmd: "definitely-not-a-command" } });
    assert.equal(missing.at(-1).exited.exit.outcome, "EXIT_OUTCOME_FAILED_TO_START");
    assert.equal(missing.at(-1).exited.exit.exitCode, 127);
    assert.equal(missing.at(-1).exited.exit.error, "exec: definitely-not-a-command: no such file or directory");
    const missingInfo = await getProcess({ id: missing[0].started.id });
    assert.equal(missingInfo.state, "PROCESS_STATE_ERROR");
    const notExec = await extStart({ process: { cmd: "/etc/passwd" } });
    assert.equal(notExec.at(-1).exited.exit.outcome, "EXIT_OUTCOME_FAILED_TO_START");
    assert.equal(notExec.at(-1).exited.exit.exitCode, 126);
    await assert.rejects(extStart({ process: { cmd: "/bin/true", cwd: "/root" } }), (e: Any) => e.code === grpc.status.INVALID_ARGUMENT && /chdir \/root: permission denied/.test(e.details));
    const badUser = new grpc.Metadata();
    badUser.set("authorization", "Basic " + Buffer.from("ghost:").toString("base64"));
    await assert.rejects(collect(g.ext.Start({ process: { cmd: "/bin/true" } }, badUser)), (e: Any) => e.code === grpc.status.UNAUTHENTICATED);
  });

  it("the stream's own deadline ends only the stream; the process runs on (timeout_ms is the process limit)", async () => {
    const events: Any[] = [];
    const call = g.ext.Start({ process: { cmd: "/bin/sh", args: ["-c", "sleep 1; echo done"] }, tag: "ext-deadline" }, md(), { deadline: Date.now() + 300 });
    await assert.rejects(collect(call, (m: Any) => events.push(m)), (e: Any) => e.code === grpc.status.DEADLINE_EXCEEDED);
    const id = events[0].started.id;
    assert.equal((await getProcess({ id })).state, "PROCESS_STATE_RUNNING");
    await waitFor(async () => (await getProcess({ id })).state === "PROCESS_STATE_STOPPED", 5000, "the process to finish");
    const done = await getProcess({ id });
    assert.equal(done.exit.outcome, "EXIT_OUTCOME_EXITED");
    assert.equal(done.exit.exitCode, 0);
    const replay = await collect(g.ext.Attach({ process: { id }, oldest: true }));
    assert.equal(outputOf(replay), "done\n");
  });

  it("restart policy: on_failure restarts with backoff up to max_restarts, visible in events and history", async () => {
    const ev = await extStart({
      process: { cmd: "/bin/sh", args: ["-c", "echo run; exit 1"] },
      tag: "ext-restart",
      restart: { mode: "MODE_ON_FAILURE", backoffMs: 50, maxBackoffMs: 100, maxRestarts: 2 },
    });
    assert.deepEqual(
      ev.map((e: Any) => e.event),
      ["started", "output", "exited", "started", "output", "exited", "started", "output", "exited"],
    );
    assert.deepEqual(ev.filter((e: Any) => e.started).map((e: Any) => e.started.restartCount), [0, 1, 2]);
    assert.deepEqual(ev.filter((e: Any) => e.exited).map((e: Any) => e.exited.final), [false, false, true]);
    assert.ok(ev.filter((e: Any) => e.exited && !e.exited.final).every((e: Any) => e.exited.restartDelayMs >= 50));
    // Offsets keep counting across runs.
    assert.deepEqual(ev.filter((e: Any) => e.output).map((e: Any) => Number(e.output.offset)), [0, 4, 8]);
    const info = await getProcess({ tag: "ext-restart" });
    assert.equal(info.restartCount, 2);
    assert.equal(info.runs.length, 3);
    assert.equal(info.state, "PROCESS_STATE_STOPPED");
    assert.ok(info.runs.every((r: Any) => r.exit.exitCode === 1));

    // "always" restarts even clean exits; a stop_restarts signal ends it.
    const events: Any[] = [];
    const done = collect(g.ext.Start({ process: { cmd: "/bin/sh", args: ["-c", "echo tick; sleep 0.1"] }, tag: "ext-always", restart: { mode: "MODE_ALWAYS", backoffMs: 20 } }, md()), (m: Any) =>
      events.push(m),
    );
    await waitFor(() => events.filter((e) => e.started).length >= 3, 5000, "three runs");
    await unary(g.ext, "Signal", { process: { tag: "ext-always" }, name: "KILL", target: "TARGET_TREE", stopRestarts: true });
    await done;
    assert.equal(events.at(-1).exited.final, true);
    assert.equal((await getProcess({ tag: "ext-always" })).state, "PROCESS_STATE_STOPPED");
  });

  it("E2B SendSignal over gRPC kills the whole tree and rejects other signals as unimplemented", async () => {
    const events: Any[] = [];
    const done = collect(g.proc.Start({ process: { cmd: "/bin/bash", args: ["-c", "sleep 50 & sleep 50 & wait"] } }, md()), (m: Any) => events.push(m));
    await waitFor(() => events.length > 0);
    const pid = events[0].event.start.pid;
    await waitFor(() => descendants(pid).length >= 2, 3000, "children");
    const kids = descendants(pid);
    await assert.rejects(unary(g.proc, "SendSignal", { process: { pid }, signal: "SIGNAL_UNSPECIFIED" }), (e: Any) => e.code === grpc.status.UNIMPLEMENTED && e.details === "invalid signal: SIGNAL_UNSPECIFIED");
    await unary(g.proc, "SendSignal", { process: { pid }, signal: "SIGNAL_SIGKILL" });
    assert.equal(alive(pid), false);
    await done;
    assert.equal(events.at(-1).event.end.status, "signal: killed");
    await waitFor(() => kids.every((k) => !alive(k)), 3000, "children to die");
  });
});

describe("process history limits and output buffer size", () => {
  let d: Daemon;
  let g: ReturnType<typeof grpcClients>;
  before(async () => {
    d = await startDaemon({ args: ["--history-max", "2", "--history-ttl-seconds", "2", "--output-buffer-bytes", "8"] });
    g = grpcClients(d);
  });
  after(async () => {
    g.close();
    assert.equal(await d.stop(), 0);
  });

  it("keeps at most history-max finished processes for history-ttl-seconds, and outputBufferBytes of output each", async () => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ev = await collect(g.ext.Start({ process: { cmd: "/bin/echo", args: [`${i}123456789`] } }));
      ids.push(Number(ev[0].started.id));
    }
    const finished = await unary(g.ext, "ListProcesses", { filter: "FILTER_FINISHED" });
    assert.deepEqual(finished.processes.map((p: Any) => Number(p.id)), [ids[2], ids[1]]);
    await assert.rejects(unary(g.ext, "GetProcess", { process: { id: ids[0] } }), (e: Any) => e.code === grpc.status.NOT_FOUND);
    const replay = await collect(g.ext.Attach({ process: { id: ids[2] }, oldest: true }));
    assert.equal(Number(replay[0].attached.droppedBytes), 3);
    assert.equal(outputOf(replay), "3456789\n");
    assert.equal(Number(replay[0].attached.process.output.totalBytes), 11);
    await new Promise((r) => setTimeout(r, 2300));
    assert.equal((await unary(g.ext, "ListProcesses", { filter: "FILTER_FINISHED" })).processes.length, 0);
  });
});
