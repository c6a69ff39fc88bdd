// PID 1 duty: run as the init process of a new pid namespace (unshare --pid --fork --mount-proc),
// envd-ts reaps orphaned grandchildren without stealing the exit status of its own children,
// shrugs off kill -9 -1 even from root, and on SIGTERM ends every process of the namespace
// gracefully (SIGTERM first) and exits 0. Outside a namespace it is a child subreaper.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { childStates, daemonPidUnder, health, prometheus, readProcessEvents, startCommand, waitFor } from "./helpers/hostile.js";

const WRAPPER = ["unshare", "--pid", "--fork", "--mount-proc"];

function zombiesOf(pid: number): number[] {
  return [...childStates(pid)].filter(([, s]) => s === "Z").map(([p]) => p);
}

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

describe("envd-ts as PID 1 of a pid namespace", () => {
  let d: Daemon;
  let hostPid: number;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "envd-pid1-"));
    d = await startDaemon({ wrapper: WRAPPER });
    hostPid = daemonPidUnder(d.pid)!;
    assert.ok(hostPid, "found the daemon under unshare");
  });

  after(async () => {
    if (d?.child.exitCode === null) {
      try {
        process.kill(hostPid, "SIGTERM");
      } catch {
        /* gone */
      }
      await d.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("knows it is init", () => {
    const listening = d.logs.find((l) => l.msg === "listening")!;
    assert.equal(listening.pid, 1);
    assert.equal(listening.init, true);
  });

  it("reaps orphaned grandchildren: 30 double-forked processes leave no zombie", async () => {
    const before = (await prometheus(d.url)).get("envd_orphans_reaped_total") ?? 0;
    const ev = await readProcessEvents(await startCommand(d.url, "for i in $(seq 30); do (sleep 0.2 &); done; echo spawned"));
    assert.ok(ev.some((e) => e.text === "spawned\n"));
    // The orphans were reparented to us (init) and exit 0.2 s later.
    const reaped = await waitFor(async () => ((await prometheus(d.url)).get("envd_orphans_reaped_total") ?? 0) - before >= 30, 5000);
    assert.ok(reaped, `reaped ${((await prometheus(d.url)).get("envd_orphans_reaped_total") ?? 0) - before}`);
    assert.deepEqual(zombiesOf(hostPid), []);
  });

  it("never takes the exit status of its own children: 40 commands (pipes and PTYs) amid orphans keep their codes", async () => {
    const runs = Array.from({ length: 40 }, async (_, i) => {
      const res = await startCommand(d.url, `(sleep 0.05 &); (true &); exit ${i + 1}`, { pty: i % 4 === 0 });
      const end = (await readProcessEvents(res)).find((e) => e.kind === "end");
      return end?.json.end.exitCode;
    });
    assert.deepEqual(await Promise.all(runs), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.ok(await waitFor(() => zombiesOf(hostPid).length === 0, 3000), `zombies: ${zombiesOf(hostPid)}`);
  });

  it("survives kill -9 -1 from root inside the namespace (init only gets the signals it handles)", async () => {
    const ev = await readProcessEvents(await startCommand(d.url, "kill -9 -1; echo after", { user: "root" }));
    assert.ok(ev.some((e) => e.kind === "end"));
    assert.equal(await health(d.url), 204);
  });

  it("SIGTERM: process trees and orphans get SIGTERM first, then the daemon exits 0", async () => {
    const inTree = join(dir, "tree-term");
    const orphan = join(dir, "orphan-term");
    const trap = (file: string) => `trap 'echo term > ${file}; exit 0' TERM; sleep 1000 & wait`;
    const tree = startCommand(d.url, trap(inTree), { user: "root" });
    await readProcessEvents(await startCommand(d.url, `(setsid bash -c "${trap(orphan).replace(/"/g, '\\"')}" > /dev/null 2>&1 &); echo ok`, { user: "root" }));
    await new Promise((r) => setTimeout(r, 300));
    void tree.catch(() => {});
    process.kill(hostPid, "SIGTERM");
    const code = await d.stop();
    assert.equal(code, 0, "unshare passes on the daemon's exit status");
    assert.ok(d.logs.some((l) => l.msg === "stopped"), "shut down through its handler");
    assert.equal(readFileSync(inTree, "utf8"), "term\n", "the command's tree got SIGTERM");
    assert.ok(existsSync(orphan), "the orphan outside any tree got SIGTERM too");
  });
});

describe("envd-ts as a child subreaper (not PID 1)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d?.stop(), 0);
  });

  it("orphans of commands become the daemon's children and are reaped when they exit", async () => {
    const before = (await prometheus(d.url)).get("envd_orphans_reaped_total") ?? 0;
    const ev = await readProcessEvents(await startCommand(d.url, "(sleep 1 > /dev/null 2>&1 & echo $!) ; exit 0"));
    const orphan = Number(ev.find((e) => e.kind === "stdout")!.text);
    assert.equal(ppidOf(orphan), d.pid, "reparented to the daemon, not to the host's init");
    const reaped = await waitFor(async () => ((await prometheus(d.url)).get("envd_orphans_reaped_total") ?? 0) > before, 5000);
    assert.ok(reaped);
    assert.deepEqual(zombiesOf(d.pid), []);
    assert.equal(existsSync(`/proc/${orphan}`), false);
  });
});
