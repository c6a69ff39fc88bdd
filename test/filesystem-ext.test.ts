// envdts.v1.FilesystemExt (Copy, Chmod, Chown, ListDirPage) through Connect and
// gRPC-Web clients against a real daemon.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { FilesystemExt } from "../src/gen/envdts/v1/filesystem_ext_pb.js";
import { FileType } from "../src/gen/filesystem_pb.js";
import { lookupUser } from "../src/users/passwd.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const USER = lookupUser("user");
if (!USER) throw new Error("these tests need the account 'user' (scripts/test-setup.sh creates it)");

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

describe("FilesystemExt", () => {
  let d: Daemon;
  let ext: Client<typeof FilesystemExt>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    ext = createClient(FilesystemExt, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    dir = mkdtempSync(join(tmpdir(), "fs-ext-"));
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("Copy copies a tree with modes, times and symlinks, owned by the requesting user", async () => {
    const src = join(dir, "src");
    mkdirSync(join(src, "sub/deeper"), { recursive: true });
    writeFileSync(join(src, "a.txt"), "alpha");
    writeFileSync(join(src, "sub/run.sh"), "#!/bin/sh\n");
    chmodSync(join(src, "sub/run.sh"), 0o4750);
    writeFileSync(join(src, "sub/deeper/z"), "zz");
    chmodSync(join(src, "sub/deeper"), 0o500);
    symlinkSync("../a.txt", join(src, "sub/link"));
    symlinkSync("/nonexistent/target", join(src, "dangling"));
    utimesSync(join(src, "a.txt"), new Date("2020-01-02T03:04:05Z"), new Date("2020-01-02T03:04:05Z"));

    const res = await ext.copy({ source: src, destination: join(dir, "dst/copied") }, { headers: { authorization: "Basic " + Buffer.from("user:").toString("base64") } });
    const dst = join(dir, "dst/copied");
    assert.equal(res.entry?.path, dst);
    assert.equal(res.entry?.type, FileType.DIRECTORY);
    assert.equal(res.files, 3n);
    assert.equal(res.directories, 3n);
    assert.equal(res.symlinks, 2n);
    assert.equal(res.bytes, 5n + 10n + 2n);
    assert.equal(readFileSync(join(dst, "a.txt"), "utf8"), "alpha");
    assert.equal(statSync(join(dst, "sub/run.sh")).mode & 0o7777, 0o4750, "setuid survives the chown");
    assert.equal(statSync(join(dst, "sub/deeper")).mode & 0o7777, 0o500, "read-only directory copied with its mode");
    assert.equal(readFileSync(join(dst, "sub/deeper/z"), "utf8"), "zz");
    assert.equal(readlinkSync(join(dst, "sub/link")), "../a.txt", "symlinks are copied, not followed");
    assert.equal(readlinkSync(join(dst, "dangling")), "/nonexistent/target");
    assert.equal(statSync(join(dst, "a.txt")).mtime.toISOString(), "2020-01-02T03:04:05.000Z");
    for (const p of ["", "a.txt", "sub", "sub/link"]) assert.equal(lstatSync(join(dst, p)).uid, USER.uid, `${p} belongs to user`);
  });

  it("Copy refuses to overwrite unless forced, and then replaces atomically", async () => {
    writeFileSync(join(dir, "one"), "new");
    writeFileSync(join(dir, "two"), "old");
    const err = await failure(ext.copy({ source: join(dir, "one"), destination: join(dir, "two") }));
    assert.equal(err.code, Code.AlreadyExists);
    assert.equal(readFileSync(join(dir, "two"), "utf8"), "old");
    const ino = statSync(join(dir, "two")).ino;
    await ext.copy({ source: join(dir, "one"), destination: join(dir, "two"), force: true });
    assert.equal(readFileSync(join(dir, "two"), "utf8"), "new");
    assert.notEqual(statSync(join(dir, "two")).ino, ino, "a new inode renamed into place");
    // A symlink at the destination is replaced, not written through.
    writeFileSync(join(dir, "victim"), "untouched");
    symlinkSync(join(dir, "victim"), join(dir, "via-link"));
    await ext.copy({ source: join(dir, "one"), destination: join(dir, "via-link"), force: true });
    assert.equal(readFileSync(join(dir, "victim"), "utf8"), "untouched");
    assert.equal(lstatSync(join(dir, "via-link")).isFile(), true);
    // Forced directory copies merge.
    mkdirSync(join(dir, "m1"));
    mkdirSync(join(dir, "m2"));
    writeFileSync(join(dir, "m1/x"), "from m1");
    writeFileSync(join(dir, "m2/y"), "kept");
    await ext.copy({ source: join(dir, "m1"), destination: join(dir, "m2"), force: true });
    assert.equal(readFileSync(join(dir, "m2/x"), "utf8"), "from m1");
    assert.equal(readFileSync(join(dir, "m2/y"), "utf8"), "kept");
  });

  it("Copy errors: missing source, copy into itself", async () => {
    assert.equal((await failure(ext.copy({ source: join(dir, "absent"), destination: join(dir, "x") }))).code, Code.NotFound);
    mkdirSync(join(dir, "self"));
    const err = await failure(ext.copy({ source: join(dir, "self"), destination: join(dir, "self/inner") }));
    assert.equal(err.code, Code.InvalidArgument);
  });

  it("Chmod sets modes, recursively without touching symlink targets", async () => {
    const base = join(dir, "chmod");
    mkdirSync(join(base, "sub"), { recursive: true });
    writeFileSync(join(base, "sub/f"), "");
    writeFileSync(join(dir, "outside-target"), "");
    chmodSync(join(dir, "outside-target"), 0o644);
    symlinkSync(join(dir, "outside-target"), join(base, "sub/link"));
    const one = await ext.chmod({ path: join(base, "sub/f"), mode: 0o600 });
    assert.equal(one.entry?.permissions, "-rw-------");
    assert.equal(one.changed, 1n);
    const all = await ext.chmod({ path: base, mode: 0o750, recursive: true });
    assert.equal(all.changed, 3n, "base, sub, sub/f; the symlink is skipped");
    assert.equal(statSync(join(base, "sub/f")).mode & 0o777, 0o750);
    assert.equal(statSync(join(dir, "outside-target")).mode & 0o777, 0o644);
    assert.equal((await failure(ext.chmod({ path: base, mode: 0o17777 }))).code, Code.InvalidArgument);
    assert.equal((await failure(ext.chmod({ path: join(base, "nope"), mode: 0o600 }))).code, Code.NotFound);
  });

  it("Chown by name or id, recursively", async () => {
    const base = join(dir, "chown");
    mkdirSync(join(base, "sub"), { recursive: true });
    writeFileSync(join(base, "sub/f"), "");
    symlinkSync("f", join(base, "sub/link"));
    const res = await ext.chown({ path: base, user: "user", group: "user", recursive: true });
    assert.equal(res.changed, 4n);
    assert.equal(res.entry?.owner, "user");
    for (const p of ["", "sub", "sub/f", "sub/link"]) assert.equal(lstatSync(join(base, p)).uid, USER.uid);
    const g = await ext.chown({ path: join(base, "sub/f"), group: "0" });
    assert.equal(g.entry?.owner, "user");
    assert.equal(g.entry?.group, "root");
    assert.equal((await failure(ext.chown({ path: base }))).code, Code.InvalidArgument);
    assert.equal((await failure(ext.chown({ path: base, user: "no-such-user-xyz" }))).code, Code.InvalidArgument);
  });

  it("ListDirPage pages a large directory in stable name order", async () => {
    const big = join(dir, "big");
    mkdirSync(big);
    const names: string[] = [];
    for (let i = 0; i < 2500; i++) {
      const n = `f${String((i * 7919) % 2500).padStart(5, "0")}`;
      names.push(n);
      writeFileSync(join(big, n), "");
    }
    names.sort();
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await ext.listDirPage({ path: big, limit: 1000, pageToken: token });
      assert.equal(page.total, 2500n);
      seen.push(...page.entries.map((e) => e.name));
      token = page.nextPageToken;
      pages++;
    } while (token !== "");
    assert.equal(pages, 3);
    assert.deepEqual(seen, names);
    const window = await ext.listDirPage({ path: big, limit: 5, offset: 10 });
    assert.deepEqual(
      window.entries.map((e) => e.name),
      names.slice(10, 15),
    );
    assert.equal(window.entries[0]!.path, join(big, names[10]!));
    assert.equal((await failure(ext.listDirPage({ path: big, limit: 20_000 }))).code, Code.InvalidArgument);
    assert.equal((await failure(ext.listDirPage({ path: big, pageToken: "not a token!" }))).code, Code.InvalidArgument);
    const last = await ext.listDirPage({ path: big, limit: 2500 });
    assert.equal(last.nextPageToken, "", "nothing after the last page");
  });

  it("ListDirPage handles names that are not UTF-8", async () => {
    const base = join(dir, "bytes");
    mkdirSync(base);
    writeFileSync(Buffer.concat([Buffer.from(base + "/b-"), Buffer.from([0xc3, 0x28])]), "");
    writeFileSync(join(base, "a"), "");
    writeFileSync(join(base, "c"), "");
    const p1 = await ext.listDirPage({ path: base, limit: 2 });
    assert.deepEqual(
      p1.entries.map((e) => e.name),
      ["a", "b-\uFFFD("],
    );
    const p2 = await ext.listDirPage({ path: base, limit: 2, pageToken: p1.nextPageToken });
    assert.deepEqual(
      p2.entries.map((e) => e.name),
      ["c"],
      "the cursor keeps the exact bytes",
    );
  });

  it("is served over gRPC-Web too", async () => {
    const web = createClient(FilesystemExt, createGrpcWebTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    mkdirSync(join(dir, "web"));
    writeFileSync(join(dir, "web/x"), "");
    const page = await web.listDirPage({ path: join(dir, "web") });
    assert.deepEqual(
      page.entries.map((e) => e.name),
      ["x"],
    );
  });
});
