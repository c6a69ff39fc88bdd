// ListDir builds most entries from one native directory read (src/filesystem/dir-listing.ts) and
// the rest, like Stat, from lstat per entry: every listed entry must be byte for byte the entry
// Stat gives for the same path, whatever the entry is.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { EntryInfoSchema, Filesystem } from "../src/gen/filesystem_pb.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const addon = createRequire(import.meta.url)("../native/build/Release/envd_native.node") as {
  setXattr(path: string, name: string, value: Buffer): void;
};

describe("ListDir entries from the native directory read", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "2", useBinaryFormat: true }));
    dir = mkdtempSync("/tmp/dir-listing-test-");
    const x = (p: string, name: string, value: Buffer | string) => addon.setXattr(p, name, Buffer.from(value));
    mkdirSync(join(dir, "sub/deeper"), { recursive: true });
    writeFileSync(join(dir, "tagged"), "t");
    x(join(dir, "tagged"), "user.e2b.author", "ada");
    x(join(dir, "tagged"), "user.other", "not e2b");
    x(join(dir, "sub"), "user.e2b.kind", "dir");
    writeFileSync(join(dir, "bad-value"), "");
    x(join(dir, "bad-value"), "user.e2b.k", Buffer.from([0xff, 0xfe]));
    writeFileSync(join(dir, "other-only"), "");
    x(join(dir, "other-only"), "user.something", "v");
    writeFileSync(join(dir, "sub/deeper/leaf"), "leaf");
    writeFileSync(join(dir, "setuid"), "");
    chmodSync(join(dir, "setuid"), 0o4755);
    writeFileSync(join(dir, "nobody-owns"), "");
    chownSync(join(dir, "nobody-owns"), 54321, 54322);
    writeFileSync(join(dir, "sparse"), "");
    truncateSync(join(dir, "sparse"), 100 * 2 ** 30);
    writeFileSync(join(dir, "ancient"), "");
    execFileSync("touch", ["-d", "1960-01-01 00:00:00.123456789 UTC", join(dir, "ancient")]);
    writeFileSync(join(dir, "epoch"), "");
    utimesSync(join(dir, "epoch"), 0, 0);
    writeFileSync(Buffer.from(join(dir, "bad-\xff-name"), "latin1"), "");
    execFileSync("mkfifo", [join(dir, "fifo")]);
    symlinkSync("sub", join(dir, "link-to-dir"));
    symlinkSync("nowhere", join(dir, "broken-link"));
    symlinkSync("loop-b", join(dir, "loop-a"));
    symlinkSync("loop-a", join(dir, "loop-b"));
    // Big enough (st_size above one block) to be read on the thread pool; the others are read inline.
    mkdirSync(join(dir, "many"));
    for (let i = 0; i < 300; i++) closeSync(openSync(join(dir, "many", `file-with-a-longish-name-${i}`), "w"));
    x(join(dir, "many", "file-with-a-longish-name-7"), "user.e2b.n", "7");
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("lists every entry exactly as Stat reports it, in byte order", async () => {
    const listed = (await fs.listDir({ path: dir, depth: 3 })).entries;
    assert.equal(listed.length, 18 + 300);
    const paths = listed.map((e) => e.path);
    // Byte order: "bad-v" (0x76) before "bad-\xff", though U+FFFD sorts last as text anyway.
    assert.deepEqual(paths.slice(0, 4), [join(dir, "ancient"), join(dir, "bad-value"), join(dir, "bad-\ufffd-name"), join(dir, "broken-link")]);
    for (const entry of listed) {
      if (entry.path.includes("\ufffd")) continue; // not addressable by its lossy name
      const { entry: stat } = await fs.stat({ path: entry.path });
      assert.ok(stat, entry.path);
      assert.deepEqual(Buffer.from(toBinary(EntryInfoSchema, entry)), Buffer.from(toBinary(EntryInfoSchema, stat)), entry.path);
    }
    const byName = new Map(listed.map((e) => [e.path.slice(dir.length + 1), e]));
    assert.deepEqual(byName.get("tagged")?.metadata, { author: "ada" });
    assert.deepEqual(byName.get("sub")?.metadata, { kind: "dir" });
    assert.deepEqual(byName.get("bad-value")?.metadata, {});
    assert.deepEqual(byName.get("many/file-with-a-longish-name-7")?.metadata, { n: "7" });
    assert.equal(byName.get("sparse")?.size, 100n * 2n ** 30n);
    assert.equal(byName.get("epoch")?.modifiedTime, undefined);
    assert.deepEqual([byName.get("ancient")?.modifiedTime?.seconds, byName.get("ancient")?.modifiedTime?.nanos], [-315619200n, 123_456_789]);
    assert.equal(byName.get("link-to-dir")?.symlinkTarget, join(dir, "sub"));
    assert.equal(byName.get("sub/deeper/leaf")?.size, 4n);
  });
});
