// Disconnect churn for `npm run test:stress`: for CHURN_SECONDS (default 45), 40 clients start
// process streams, uploads, downloads and watches and drop them at a random moment (FIN or RST).
// Afterwards every process is gone once killed, the old files are intact, and no descriptor,
// watcher or output subscriber is left.
import { it } from "node:test";
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { envelope } from "../helpers/connect-wire.js";
import { startDaemon } from "../helpers/daemon.js";
import { leftoverTemps } from "../helpers/files-http.js";
import { basic, fdKinds, health, prometheus, unaryJson, waitFor } from "../helpers/hostile.js";

it("clients dropping streams, uploads, downloads and watches at random leave nothing behind", { timeout: 600_000 }, async () => {
  const seconds = Number(process.env.CHURN_SECONDS ?? 45);
  const dir = mkdtempSync(join(tmpdir(), "envd-churn-"));
  const keep = join(dir, "keep.txt");
  writeFileSync(keep, "original\n");
  const big = join(dir, "big.bin");
  writeFileSync(big, Buffer.alloc(16 << 20, 7));
  const d = await startDaemon();
  try {
    const fds0 = fdKinds(d.pid);
    let n = 0;
    const raw = (head: string, body: Buffer, dropAfterMs: number): Promise<void> =>
      new Promise((resolve) => {
        const s = tcpConnect(d.port, "127.0.0.1");
        s.on("error", () => {});
        s.on("data", () => {});
        s.write(head);
        s.write(body);
        setTimeout(() => {
          if (randomInt(2)) s.resetAndDestroy();
          else s.end();
          resolve();
        }, dropAfterMs);
      });
    const kinds = [
      () => {
        const body = envelope({ process: { cmd: "/bin/bash", args: ["-c", "for i in $(seq 50); do echo churn; sleep 0.02; done"] }, ...(randomInt(3) ? {} : { pty: { size: { cols: 80, rows: 24 } } }) });
        return raw(`POST /process.Process/Start HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\nauthorization: ${basic("user")}\r\ncontent-length: ${body.length}\r\n\r\n`, body, randomInt(300));
      },
      () => raw(`POST /files?path=${encodeURIComponent(keep)} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: ${8 << 20}\r\n\r\n`, Buffer.alloc(randomInt(4 << 20), 1), randomInt(200)),
      () =>
        new Promise<void>((resolve) => {
          const req = request(`${d.url}/files?path=${encodeURIComponent(big)}`, { agent: false, headers: randomInt(2) ? { "accept-encoding": "gzip" } : {} }, (res) => {
            setTimeout(() => {
              if (randomInt(2)) res.socket.resetAndDestroy();
              else res.destroy();
              resolve();
            }, randomInt(100));
          });
          req.on("error", () => resolve());
          req.end();
        }),
      () => {
        const body = envelope({ path: dir, recursive: randomInt(2) === 1 });
        return raw(`POST /filesystem.Filesystem/WatchDir HTTP/1.1\r\nhost: x\r\ncontent-type: application/connect+json\r\ncontent-length: ${body.length}\r\n\r\n`, body, randomInt(300));
      },
    ];
    const deadline = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (Date.now() < deadline) {
          await kinds[randomInt(kinds.length)]!();
          n++;
        }
      }),
    );
    console.log(`# churn: ${n} dropped requests in ${seconds} s`);
    assert.equal(await health(d.url), 204);
    // The commands run on without clients until killed.
    const list = await unaryJson(d.url, "process.Process/List", {}, { authorization: basic("user") });
    for (const p of list.json.processes ?? []) await unaryJson(d.url, "process.Process/SendSignal", { process: { pid: p.pid }, signal: "SIGNAL_SIGKILL" }, { authorization: basic("user") });
    const settled = await waitFor(async () => {
      const m = await prometheus(d.url);
      const f = fdKinds(d.pid);
      return m.get("envd_processes_active") === 0 && m.get("envd_process_subscribers") === 0 && m.get("envd_watchers_active") === 0 && f.total - f.socket <= fds0.total - fds0.socket + 2 && f.inotify === fds0.inotify;
    }, 30_000, 250);
    const m = await prometheus(d.url);
    console.log(`# ${(list.json.processes ?? []).length} commands left running by their clients, killed afterwards`);
    assert.ok(settled, `left: ${JSON.stringify({ fds: fdKinds(d.pid), fds0, processes: m.get("envd_processes_active"), subscribers: m.get("envd_process_subscribers"), watchers: m.get("envd_watchers_active") })}`);
    assert.equal(readFileSync(keep, "utf8"), "original\n");
    assert.deepEqual(leftoverTemps(dir), []);
  } finally {
    const t0 = Date.now();
    const code = await d.stop();
    console.log(`# shutdown took ${Date.now() - t0} ms`);
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0);
  }
});
