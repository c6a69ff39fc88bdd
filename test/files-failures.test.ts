import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { eventually, httpRequest, leftoverTemps, multipart } from "./helpers/files-http.js";

const isRoot = process.getuid?.() === 0;

function q(path: string): string {
  return `/files?path=${encodeURIComponent(path)}`;
}

describe("/files uploads that fail", () => {
  let d: Daemon;
  let dir: string;
  let full: string | undefined;

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync(join(tmpdir(), "envd-files-fail-"));
  });
  after(async () => {
    await d.stop();
    if (full) {
      try {
        execFileSync("umount", [full]);
      } catch {
        /* not mounted */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("an upload cut off halfway leaves the previous content and no temporary file", async () => {
    const p = join(dir, "precious.txt");
    writeFileSync(p, "previous content");
    const req = request(d.url + q(p), {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/octet-stream", "content-length": 4 * 1024 * 1024 },
    });
    req.on("error", () => {});
    let answered = false;
    req.on("response", () => (answered = true));
    req.write(Buffer.alloc(1024 * 1024, 0x41));
    // Wait until the daemon is streaming into its temporary file, then vanish.
    assert.ok(await eventually(() => leftoverTemps(dir).length === 1), "a temporary file appears while the body arrives");
    req.destroy();
    assert.ok(await eventually(() => leftoverTemps(dir).length === 0), `temporary file removed, found ${leftoverTemps(dir)}`);
    assert.equal(readFileSync(p, "utf8"), "previous content");
    assert.equal(answered, false);
    // The daemon is still fine afterwards.
    const res = await httpRequest(d.url + q(p));
    assert.equal(res.text, "previous content");
  });

  it("a multipart upload cut off inside its second file keeps the first and leaves no temporary", async () => {
    const first = join(dir, "first.txt");
    const second = join(dir, "second.txt");
    writeFileSync(second, "second before");
    const form = multipart([
      { name: "file", filename: first, content: "first file" },
      { name: "file", filename: second, content: Buffer.alloc(2 * 1024 * 1024, 0x42) },
    ]);
    const req = request(`${d.url}/files`, { method: "POST", agent: false, headers: { "content-type": form.contentType, "content-length": form.body.length } });
    req.on("error", () => {});
    req.write(form.body.subarray(0, 1024 * 1024));
    assert.ok(await eventually(() => leftoverTemps(dir).length === 1));
    req.destroy();
    assert.ok(await eventually(() => leftoverTemps(dir).length === 0));
    assert.equal(readFileSync(first, "utf8"), "first file");
    assert.equal(readFileSync(second, "utf8"), "second before");
  });

  it("a full disk answers 507 and leaves the old file and nothing else", { skip: isRoot ? false : "needs root to mount a small tmpfs" }, async () => {
    full = join(dir, "full");
    mkdirSync(full);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", full]);
    const p = join(full, "kept.txt");
    writeFileSync(p, "small old content");
    const size = 2 * 1024 * 1024;
    let res = await httpRequest(d.url + q(p), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(size, 0x43) });
    assert.equal(res.status, 507);
    assert.deepEqual(JSON.parse(res.text), { code: 507, message: `attempted to write ${size} bytes: not enough disk space available` });
    assert.equal(readFileSync(p, "utf8"), "small old content");
    assert.deepEqual(readdirSync(full), ["kept.txt"]);

    // Without a Content-Length envd's message has no byte count.
    const chunks = Array.from({ length: 32 }, () => Buffer.alloc(64 * 1024, 0x44));
    res = await httpRequest(d.url + q(join(full, "new.bin")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Readable.from(chunks) });
    assert.deepEqual(JSON.parse(res.text), { code: 507, message: "not enough disk space available" });
    assert.deepEqual(readdirSync(full), ["kept.txt"]);

    const form = multipart([{ name: "file", filename: join(full, "multi.bin"), content: Buffer.alloc(size, 0x45) }]);
    res = await httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": form.contentType }, body: form.body });
    assert.equal(res.status, 507);
    assert.deepEqual(readdirSync(full), ["kept.txt"]);
  });
});
