// The filesystem.Filesystem service through the official e2b SDK and a Connect
// client, against a real daemon: EntryInfo fields, ListDir order and depth,
// MakeDir/Move/Remove semantics, E2B's error codes, and watchDir.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FileType, Filesystem } from "../src/gen/filesystem_pb.js";
import { lookupUser } from "../src/users/passwd.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const addon = createRequire(import.meta.url)("../native/build/Release/envd_native.node") as {
  setXattr(path: string, name: string, value: Buffer): void;
};

const USER = lookupUser("user");
if (!USER) throw new Error("these tests need the account 'user' (scripts/test-setup.sh creates it)");

function basicAuth(user: string): string {
  return "Basic " + Buffer.from(`${user}:`).toString("base64");
}

async function code(p: Promise<unknown>): Promise<[Code, string]> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return [e.code, e.rawMessage];
  }
  throw new Error("expected the call to fail");
}

describe("filesystem service", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let sbx: any;
  let sdk: typeof import("e2b");
  let dir: string;
  const asUser = { user: "user" } as const;

  before(async () => {
    d = await startDaemon();
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    process.env.E2B_DEBUG = "true";
    process.env.E2B_SANDBOX_URL = d.url;
    sdk = (await import("e2b")) as unknown as typeof import("e2b");
    sbx = await sdk.Sandbox.create();
    dir = mkdtempSync("/home/user/fs-test-");
    chownSync(dir, USER.uid, USER.gid);
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("getInfo reports E2B's EntryInfo for files, directories and symlinks", async () => {
    const base = join(dir, "info");
    mkdirSync(base);
    writeFileSync(join(base, "file.txt"), "hello world\n");
    chmodSync(join(base, "file.txt"), 0o644);
    chownSync(join(base, "file.txt"), USER.uid, USER.gid);
    mkdirSync(join(base, "sub"), 0o755);
    symlinkSync("file.txt", join(base, "link"));
    symlinkSync("sub", join(base, "dirlink"));
    symlinkSync("missing", join(base, "broken"));

    const file = await sbx.files.getInfo(join(base, "file.txt"), asUser);
    assert.equal(file.name, "file.txt");
    assert.equal(file.type, "file");
    assert.equal(file.path, join(base, "file.txt"));
    assert.equal(file.size, 12);
    assert.equal(file.mode, 0o644);
    assert.equal(file.permissions, "-rw-r--r--");
    assert.equal(file.owner, "user");
    assert.equal(file.group, "user");
    assert.equal(file.symlinkTarget, undefined);
    assert.ok(Math.abs(file.modifiedTime.getTime() - lstatSync(join(base, "file.txt")).mtimeMs) < 1);

    const sub = await sbx.files.getInfo(join(base, "sub"));
    assert.equal(sub.type, "dir");
    assert.equal(sub.mode, 0o755);
    assert.equal(sub.permissions, "drwxr-xr-x");
    assert.equal(sub.owner, "root");

    const link = await sbx.files.getInfo(join(base, "link"));
    assert.equal(link.type, "file", "a symlink reports its target's type");
    assert.equal(link.permissions, "Lrwxrwxrwx");
    assert.equal(link.mode, 0o644, "and its target's permission bits");
    assert.equal(link.symlinkTarget, join(base, "file.txt"), "fully resolved, absolute");
    assert.equal(link.size, "file.txt".length, "its own lstat size");

    const dirlink = await sbx.files.getInfo(join(base, "dirlink"));
    assert.equal(dirlink.type, "dir");
    assert.equal(dirlink.symlinkTarget, join(base, "sub"));

    const broken = await fs.stat({ path: join(base, "broken") });
    assert.equal(broken.entry!.type, FileType.UNSPECIFIED);
    assert.equal(broken.entry!.mode, 0);
    assert.equal(broken.entry!.symlinkTarget, join(base, "broken"), "unresolvable: the link's own path");
  });

  it("permissions strings use Go's FileMode letters", async () => {
    assert.equal((await fs.stat({ path: "/dev/null" })).entry!.permissions, "Dcrw-rw-rw-");
    const base = join(dir, "modes");
    mkdirSync(base);
    writeFileSync(join(base, "suid"), "");
    chmodSync(join(base, "suid"), 0o4755);
    mkdirSync(join(base, "sticky"));
    chmodSync(join(base, "sticky"), 0o1777);
    mkdirSync(join(base, "sgid"));
    chmodSync(join(base, "sgid"), 0o2755);
    execFileSync("mkfifo", [join(base, "fifo")]);
    const suid = (await fs.stat({ path: join(base, "suid") })).entry!;
    assert.equal(suid.permissions, "urwxr-xr-x");
    assert.equal(suid.mode, 0o755, "mode is the permission bits only");
    assert.equal((await fs.stat({ path: join(base, "sticky") })).entry!.permissions, "dtrwxrwxrwx");
    assert.equal((await fs.stat({ path: join(base, "sgid") })).entry!.permissions, "dgrwxr-xr-x");
    const fifo = (await fs.stat({ path: join(base, "fifo") })).entry!;
    assert.equal(fifo.permissions, "prw-r--r--");
    assert.equal(fifo.type, FileType.UNSPECIFIED);
  });

  it("user.e2b.* extended attributes are the metadata", async () => {
    const file = join(dir, "meta.txt");
    writeFileSync(file, "x");
    addon.setXattr(file, "user.e2b.author", Buffer.from("ada"));
    addon.setXattr(file, "user.e2b.purpose", Buffer.from("test"));
    addon.setXattr(file, "user.other", Buffer.from("ignored"));
    const info = await sbx.files.getInfo(file);
    assert.deepEqual(info.metadata, { author: "ada", purpose: "test" });
    const plain = join(dir, "plain.txt");
    writeFileSync(plain, "x");
    assert.equal((await sbx.files.getInfo(plain)).metadata, undefined);
  });

  it("list walks depth-first in lexical order, root excluded, depth honoured", async () => {
    const base = join(dir, "tree");
    for (const p of ["b/y", "a/x/deep", "c"]) mkdirSync(join(base, p), { recursive: true });
    writeFileSync(join(base, "a/x/deep/f"), "");
    writeFileSync(join(base, "a/file"), "");
    writeFileSync(join(base, "z.txt"), "");
    const one = await sbx.files.list(base);
    assert.deepEqual(
      one.map((e: { name: string }) => e.name),
      ["a", "b", "c", "z.txt"],
    );
    const two = await sbx.files.list(base, { depth: 2 });
    assert.deepEqual(
      two.map((e: { path: string }) => e.path.slice(base.length + 1)),
      ["a", "a/file", "a/x", "b", "b/y", "c", "z.txt"],
    );
    const all = await fs.listDir({ path: base, depth: 10 });
    assert.deepEqual(
      all.entries.map((e) => e.path.slice(base.length + 1)),
      ["a", "a/file", "a/x", "a/x/deep", "a/x/deep/f", "b", "b/y", "c", "z.txt"],
    );
    assert.equal((await fs.listDir({ path: base, depth: 0 })).entries.length, 4, "depth 0 means 1");
  });

  it("list follows a symlinked root and reports paths under the requested root", async () => {
    const real = join(dir, "real");
    mkdirSync(join(real, "inner"), { recursive: true });
    symlinkSync(real, join(dir, "alias"));
    symlinkSync("inner", join(real, "innerlink"));
    const entries = (await fs.listDir({ path: join(dir, "alias") })).entries;
    assert.deepEqual(
      entries.map((e) => e.path),
      [join(dir, "alias/inner"), join(dir, "alias/innerlink")],
    );
    assert.equal(entries[1]!.symlinkTarget, join(real, "inner"), "targets point into the resolved tree");
    assert.deepEqual(await code(fs.listDir({ path: join(dir, "real/inner/nothing") })), [Code.NotFound, `path not found: lstat ${join(dir, "real/inner/nothing")}: no such file or directory`]);
    writeFileSync(join(dir, "notdir"), "");
    assert.deepEqual(await code(fs.listDir({ path: join(dir, "notdir") })), [Code.InvalidArgument, `path is not a directory: ${join(dir, "notdir")}`]);
    symlinkSync("loop2", join(dir, "loop1"));
    symlinkSync("loop1", join(dir, "loop2"));
    assert.equal((await code(fs.listDir({ path: join(dir, "loop1") })))[0], Code.FailedPrecondition);
  });

  it("a name that is not UTF-8 does not fail the listing", async () => {
    const base = join(dir, "badnames");
    mkdirSync(base);
    writeFileSync(join(base, "good.txt"), "ok");
    const bad = Buffer.concat([Buffer.from(base + "/bad-"), Buffer.from([0xff, 0xfe]), Buffer.from(".bin")]);
    writeFileSync(bad, "12345");
    const entries = await sbx.files.list(base);
    const names = entries.map((e: { name: string }) => e.name);
    assert.deepEqual(names, ["bad-\uFFFD\uFFFD.bin", "good.txt"]);
    assert.equal(entries[0].size, 5, "the entry is still stat-ed through its real bytes");
  });

  it("paths resolve against the user's home and ~", async () => {
    const rel = `${dir.slice("/home/user/".length)}/rel-made`;
    assert.equal(await sbx.files.makeDir(rel, asUser), true);
    assert.equal(lstatSync(join(dir, "rel-made")).uid, USER.uid, "created directories belong to the user");
    const info = await sbx.files.getInfo(`~/${rel}`, asUser);
    assert.equal(info.path, join(dir, "rel-made"));
    assert.deepEqual(await code(fs.stat({ path: "~root/x" })), [Code.InvalidArgument, "failed to expand path '~root/x': cannot expand user-specific home dir"]);
    const root = await fs.stat({ path: "" }, { headers: { authorization: basicAuth("user") } });
    assert.equal(root.entry!.path, "/home/user", "empty path is the home without a default workdir");
  });

  it("exists, makeDir, rename and remove behave like envd", async () => {
    const base = join(dir, "ops");
    assert.equal(await sbx.files.exists(base), false);
    assert.equal(await sbx.files.makeDir(join(base, "a/b")), true);
    assert.equal(await sbx.files.makeDir(join(base, "a/b")), false, "already_exists → false");
    assert.equal(await sbx.files.exists(join(base, "a/b")), true);
    writeFileSync(join(base, "f"), "data");
    assert.deepEqual(await code(fs.makeDir({ path: join(base, "f") })), [Code.InvalidArgument, `path already exists but it is not a directory: ${join(base, "f")}`]);
    assert.deepEqual(await code(fs.makeDir({ path: join(base, "f/sub") })), [Code.Internal, `error getting file info: stat ${join(base, "f/sub")}: not a directory`]);

    const moved = await sbx.files.rename(join(base, "f"), join(base, "new/parent/g"));
    assert.equal(moved.path, join(base, "new/parent/g"));
    assert.equal(moved.type, "file");
    await assert.rejects(sbx.files.rename(join(base, "nope"), join(base, "x")), sdk.FileNotFoundError);
    assert.equal((await code(fs.move({ source: join(base, "nope"), destination: join(base, "x") })))[0], Code.NotFound);

    await sbx.files.remove(join(base, "a"));
    assert.equal(await sbx.files.exists(join(base, "a")), false);
    await sbx.files.remove(join(base, "never-existed"));
    await assert.rejects(sbx.files.getInfo(join(base, "a")), sdk.FileNotFoundError);
    assert.deepEqual(await code(fs.stat({ path: join(base, "a") })), [Code.NotFound, `file not found: lstat ${join(base, "a")}: no such file or directory`]);
    await assert.rejects(sbx.files.list(join(base, "new/parent/g")), sdk.InvalidArgumentError);
  });

  it("remove deletes a symlink, not its target", async () => {
    const target = join(dir, "keep.txt");
    writeFileSync(target, "keep");
    symlinkSync(target, join(dir, "rmlink"));
    await sbx.files.remove(join(dir, "rmlink"));
    assert.equal(await sbx.files.exists(target), true);
    assert.equal(await sbx.files.exists(join(dir, "rmlink")), false);
  });

  it("watchDir (recursive, includeEntry) reports nested writes and new directories", async () => {
    const base = join(dir, "watched");
    mkdirSync(join(base, "nested"), { recursive: true });
    chownSync(base, USER.uid, USER.gid);
    chownSync(join(base, "nested"), USER.uid, USER.gid);
    const events: { type: string; name: string; entry?: { path: string; type: string } }[] = [];
    let seen!: () => void;
    const done = new Promise<void>((r) => (seen = r));
    const handle = await sbx.files.watchDir(
      base,
      (e: (typeof events)[number]) => {
        events.push(e);
        if (e.type === "create" && e.name === "newdir") seen();
      },
      { recursive: true, includeEntry: true, user: "user" },
    );
    // A plain write (open, write, close): the upload path may write atomically by rename.
    writeFileSync(join(base, "nested/file.txt"), "hello");
    await sbx.files.makeDir(join(base, "newdir"), asUser);
    await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout; got ${JSON.stringify(events)}`)), 5000))]);
    await handle.stop();
    const write = events.find((e) => e.type === "write" && e.name === "nested/file.txt");
    assert.ok(write, JSON.stringify(events));
    assert.equal(write.entry?.path, join(base, "nested/file.txt"));
    assert.equal(write.entry?.type, "file");
    const created = events.find((e) => e.type === "create" && e.name === "newdir");
    assert.equal(created?.entry?.type, "dir");
    await assert.rejects(sbx.files.watchDir(join(base, "absent"), () => {}), sdk.FileNotFoundError);
  });

  // E2B's own SDK tests ("watch directory changes", "watch recursive directory
  // changes") wait for a WRITE named after the file that files.write rewrote.
  // envd truncates and writes in place; envd-ts writes a temporary file, renames it
  // over the target and then announces the WRITE, and hides the temporary's events.
  it("files.write on an existing file is a WRITE event for that name (E2B SDK watch tests)", async () => {
    const base = join(dir, "sdk-watch");
    mkdirSync(join(base, "nested"), { recursive: true });
    await sbx.files.write(join(base, "nested/test_watch.txt"), "This file will be watched.");
    let trigger!: () => void;
    const seen = new Promise<void>((r) => (trigger = r));
    const names: string[] = [];
    const handle = await sbx.files.watchDir(
      base,
      (e: { type: string; name: string }) => {
        names.push(e.name);
        if (e.type === "write" && e.name === "nested/test_watch.txt") trigger();
      },
      { recursive: true },
    );
    try {
      await sbx.files.write(join(base, "nested/test_watch.txt"), "This file has been modified.");
      await Promise.race([seen, new Promise((_, rej) => setTimeout(() => rej(new Error("no WRITE event for nested/test_watch.txt")), 3000))]);
      assert.deepEqual(names.filter((n) => n.includes("envd-upload")), [], "upload temporaries are hidden from watchers");
    } finally {
      await handle.stop();
    }
  });
});
