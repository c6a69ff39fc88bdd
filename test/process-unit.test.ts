// Unit tests for the process plumbing that is easy to get subtly wrong.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { exitInfo, goStatusString } from "../src/process/exit-status.js";
import { launcherArgs, parseLaunchStatus } from "../src/process/launcher.js";
import { OutputRing } from "../src/process/output-ring.js";
import { goSignalText, signalFromName, signalFromNumber, signalName } from "../src/process/signals.js";
import { Subscription, QUEUE_HIGH_WATER, QUEUE_LOW_WATER } from "../src/process/subscription.js";
import { parseStat, treeMembers, type ProcStat } from "../src/process/tree.js";
import type { ProcEvent } from "../src/process/events.js";

const b = (s: string) => Buffer.from(s);

describe("OutputRing", () => {
  it("assigns global and per-stream offsets", () => {
    const r = new OutputRing(1024);
    const a = r.append("stdout", b("hello"));
    const e = r.append("stderr", b("oops"));
    const c = r.append("stdout", b("!"));
    assert.deepEqual([a.offset, a.streamOffset, e.offset, e.streamOffset, c.offset, c.streamOffset], [0, 0, 5, 0, 9, 5]);
    assert.equal(r.total, 10);
    assert.deepEqual(r.streamTotals, { stdout: 6, stderr: 4, pty: 0 });
  });

  it("keeps the newest bytes exactly up to capacity and replays from any offset", () => {
    const r = new OutputRing(10);
    for (const s of ["0123", "4567", "89ab", "cdef"]) r.append("stdout", b(s));
    assert.equal(r.heldBytes(), 10);
    assert.equal(r.oldestOffset(), 6);
    assert.equal(Buffer.concat(r.from(0).map((c) => c.data)).toString(), "6789abcdef");
    const mid = r.from(9);
    assert.equal(mid[0]!.offset, 9);
    assert.equal(mid[0]!.streamOffset, 9);
    assert.equal(Buffer.concat(mid.map((c) => c.data)).toString(), "9abcdef");
    assert.deepEqual(r.from(16), []);
  });

  it("merges small reads of one stream but never across streams", () => {
    const r = new OutputRing(1 << 20);
    for (let i = 0; i < 100; i++) r.append(i % 10 === 9 ? "stderr" : "stdout", b("x"));
    const chunks = r.from(0);
    assert.ok(chunks.length <= 20, `${chunks.length} entries`);
    assert.equal(chunks.reduce((n, c) => n + c.data.length, 0), 100);
    for (const c of chunks) assert.ok(c.stream === "stdout" || c.data.length === 1);
  });

  it("with capacity 0 holds nothing but still counts offsets; release drops what is held", () => {
    const none = new OutputRing(0);
    none.append("pty", b("abc"));
    assert.equal(none.total, 3);
    assert.equal(none.oldestOffset(), 3);
    const r = new OutputRing(100);
    r.append("stdout", b("abc"));
    r.release();
    assert.equal(r.heldBytes(), 0);
    assert.equal(r.oldestOffset(), 3);
  });
});

describe("exit statuses (Go's ProcessState.String())", () => {
  it("formats exits and signals like Go", () => {
    assert.equal(goStatusString({ code: 0, signal: null }), "exit status 0");
    assert.equal(goStatusString({ code: 127, signal: null }), "exit status 127");
    assert.equal(goStatusString({ code: null, signal: 9 }), "signal: killed");
    assert.equal(goStatusString({ code: null, signal: 15 }), "signal: terminated");
    assert.equal(goStatusString({ code: null, signal: 11 }), "signal: segmentation fault");
    assert.equal(goStatusString({ code: null, signal: 40 }), "signal: signal 40");
    assert.equal(goSignalText(2), "interrupt");
  });

  it("tells apart exited, signaled, timed out and failed to start", () => {
    assert.deepEqual(exitInfo({ code: 0, signal: null }, {}), { outcome: "exited", exitCode: 0, signal: 0, exited: true, status: "exit status 0", error: undefined });
    assert.equal(exitInfo({ code: 2, signal: null }, {}).error, "exit status 2");
    const killed = exitInfo({ code: null, signal: 9 }, {});
    assert.deepEqual([killed.outcome, killed.exitCode, killed.exited, killed.error], ["signaled", -1, false, "signal: killed"]);
    assert.equal(exitInfo({ code: null, signal: 9 }, { timedOutAfterMs: 500 }).outcome, "timed_out");
    assert.equal(exitInfo({ code: 127, signal: null }, { execError: "exec: x: no such file or directory" }).outcome, "failed_to_start");
  });
});

describe("signals", () => {
  it("parses names in any form and numbers", () => {
    assert.equal(signalFromName("SIGINT"), 2);
    assert.equal(signalFromName("int"), 2);
    assert.equal(signalFromName("usr1"), 10);
    assert.equal(signalFromName(" sigterm "), 15);
    assert.equal(signalFromName("9"), 9);
    assert.equal(signalFromName("SIGNOPE"), undefined);
    assert.equal(signalFromNumber(0), undefined);
    assert.equal(signalFromNumber(65), undefined);
    assert.equal(signalName(9), "SIGKILL");
    assert.equal(signalName(6), "SIGABRT");
  });
});

describe("launcher contract", () => {
  it("builds arguments from the flag table, command after --", () => {
    assert.deepEqual(launcherArgs({ statusFd: 3, setsid: true, uid: 1001, gid: 1001, groups: [1001, 27], cwd: "/home/user", unsetEnv: ["PWD"] }, ["/bin/sh", "-c", "--uid"]), [
      "--status-fd", "3", "--setsid", "--groups", "1001,27", "--gid", "1001", "--uid", "1001", "--cwd", "/home/user", "--unsetenv", "PWD", "--", "/bin/sh", "-c", "--uid",
    ]);
    assert.deepEqual(launcherArgs({ setsid: false }, ["x"]), ["--", "x"]);
  });

  it("reads status records", () => {
    assert.equal(parseLaunchStatus(""), undefined);
    assert.deepEqual(parseLaunchStatus("exec:2\n"), { stage: "exec", errno: 2 });
    assert.deepEqual(parseLaunchStatus("chdir:13\n"), { stage: "chdir", errno: 13 });
  });
});

describe("process tree", () => {
  it("parses /proc stat lines with odd command names", () => {
    assert.deepEqual(parseStat("123 (a b) c)) S 1 123 123 0 -1"), { pid: 123, state: "S", ppid: 1, pgrp: 123, session: 123 });
  });

  it("finds session and group members and every descendant, never the daemon or pid 1", () => {
    const p = (pid: number, ppid: number, pgrp: number, session: number): ProcStat => ({ pid, ppid, pgrp, session, state: "S" });
    const table = [
      p(1, 0, 1, 1),
      p(process.pid, 1, process.pid, process.pid),
      p(100, process.pid, 100, 100), // the command
      p(101, 100, 100, 100), // its child
      p(102, 100, 102, 102), // a child that called setsid
      p(103, 102, 102, 102), // and its child
      p(104, 1, 104, 100), // an orphan still in the session
      p(105, 1, 105, 105), // unrelated
    ];
    assert.deepEqual(treeMembers({ leader: 100, session: 100 }, table).map((x) => x.pid).sort(), [100, 101, 102, 103, 104]);
    assert.deepEqual(treeMembers({ leader: 101, session: 100, exclude: 100 }, table).map((x) => x.pid).sort(), [101, 102, 103, 104]);
  });
});

describe("Subscription", () => {
  it("counts queued bytes, reports draining below the low-water mark, ends after the last event", async () => {
    let drained = 0;
    let removed = 0;
    const sub = new Subscription({ subscriberDrained: () => drained++, removeSubscriber: () => removed++ }, true);
    const chunk = (n: number): ProcEvent => ({ kind: "data", chunk: { stream: "stdout", data: Buffer.alloc(n), offset: 0, streamOffset: 0 } });
    const per = 64 * 1024;
    const count = Math.ceil(QUEUE_HIGH_WATER / per) + 1;
    for (let i = 0; i < count; i++) sub.push(chunk(per));
    assert.ok(sub.queuedBytes > QUEUE_HIGH_WATER);
    while (sub.queuedBytes > QUEUE_LOW_WATER) await sub.next();
    assert.equal(drained, 1);
    sub.push({ kind: "exited", pid: 1, exit: { outcome: "exited", exitCode: 0, signal: 0, exited: true, status: "exit status 0", error: undefined }, final: false, restartDelayMs: 0 });
    assert.equal(removed, 1, "a run-scoped subscription ends with the run");
    sub.push(chunk(1));
    let n = 0;
    for (let ev = await sub.next(); ev; ev = await sub.next()) n++;
    assert.ok(n > 0);
    assert.equal(await sub.next(), undefined);
  });
});
