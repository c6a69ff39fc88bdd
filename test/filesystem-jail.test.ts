// The root jail (--fs-root) and permission enforcement
// (--enforce-file-permissions) on the filesystem RPCs, against real daemons.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FilesystemExt } from "../src/gen/envdts/v1/filesystem_ext_pb.js";
import { FileType, Filesystem } from "../src/gen/filesystem_pb.js";
import { lookupUser } from "../src/users/passwd.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const USER = lookupUser("user");
if (!USER) throw new Error("these tests need the account 'user' (scripts/test-setup.sh creates it)");
const AS_USER = { headers: { authorization: "Basic " + Buffer.from("user:").toString("base64") } };

async function codeOf(p: Promise<unknown> | AsyncIterable<unknown>): Promise<Code | "ok"> {
  try {
    if (Symbol.asyncIterator in p) {
      for await (const _ of p) break;
    } else await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("root jail", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let ext: Client<typeof FilesystemExt>;
  let top: string;
  let root: string;

  before(async () => {
    top = mkdtempSync(join(tmpdir(), "jail-"));
    root = join(top, "root");
    mkdirSync(join(root, "inside/deep"), { recursive: true });
    writeFileSync(join(root, "inside/file"), "in");
    writeFileSync(join(top, "secret"), "out");
    mkdirSync(join(top, "outdir"));
    symlinkSync(join(top, "secret"), join(root, "to-secret"));
    symlinkSync("../outdir", join(root, "to-outdir"));
    symlinkSync("inside", join(root, "to-inside"));
    d = await startDaemon({ args: ["--fs-root", root] });
    const t = createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" });
    fs = createClient(Filesystem, t);
    ext = createClient(FilesystemExt, t);
  });

  after(async () => {
    rmSync(top, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("allows everything beneath the root, symlinks that stay inside included", async () => {
    assert.equal((await fs.stat({ path: join(root, "inside/file") })).entry?.type, FileType.FILE);
    assert.equal((await fs.listDir({ path: join(root, "to-inside") })).entries.length, 2);
    await fs.makeDir({ path: join(root, "inside/new") });
    await fs.move({ source: join(root, "inside/new"), destination: join(root, "inside/moved") });
    await fs.remove({ path: join(root, "inside/moved") });
    await ext.copy({ source: join(root, "inside/file"), destination: join(root, "inside/copy") });
  });

  it("refuses .. escapes with permission_denied", async () => {
    const esc = join(root, "inside/../../secret");
    assert.equal(await codeOf(fs.stat({ path: esc })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.stat({ path: join(top, "secret") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.listDir({ path: join(root, "..") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.makeDir({ path: join(root, "../newdir") })), Code.PermissionDenied);
    assert.equal(existsSync(join(top, "newdir")), false);
    assert.equal(await codeOf(fs.remove({ path: join(root, "../secret") })), Code.PermissionDenied);
    assert.equal(existsSync(join(top, "secret")), true);
    assert.equal(await codeOf(fs.move({ source: join(root, "inside/file"), destination: join(root, "../stolen") })), Code.PermissionDenied);
    assert.equal(await codeOf(ext.copy({ source: join(root, "../secret"), destination: join(root, "inside/leak") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.watchDir({ path: join(root, "..") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.createWatcher({ path: top })), Code.PermissionDenied);
  });

  it("refuses symlink escapes with permission_denied", async () => {
    assert.equal(await codeOf(fs.listDir({ path: join(root, "to-outdir") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.stat({ path: join(root, "to-outdir/x") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.makeDir({ path: join(root, "to-outdir/made") })), Code.PermissionDenied);
    assert.equal(existsSync(join(top, "outdir/made")), false);
    assert.equal(await codeOf(fs.watchDir({ path: join(root, "to-outdir") })), Code.PermissionDenied);
    assert.equal(await codeOf(ext.chmod({ path: join(root, "to-secret"), mode: 0o777 })), Code.PermissionDenied);
    assert.equal(await codeOf(ext.listDirPage({ path: join(root, "to-outdir") })), Code.PermissionDenied);
  });

  it("a symlink pointing outside is listed, but reveals nothing about its target", async () => {
    const link = (await fs.stat({ path: join(root, "to-secret") })).entry!;
    assert.equal(link.permissions, "Lrwxrwxrwx");
    assert.equal(link.type, FileType.UNSPECIFIED);
    assert.equal(link.mode, 0);
  });
});

describe("file permission enforcement", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let ext: Client<typeof FilesystemExt>;
  let top: string;

  before(async () => {
    top = mkdtempSync(join(tmpdir(), "perm-"));
    chmodSync(top, 0o755);
    mkdirSync(join(top, "private"), 0o700);
    writeFileSync(join(top, "private/secret"), "s");
    writeFileSync(join(top, "readonly"), "r");
    chmodSync(join(top, "readonly"), 0o644);
    mkdirSync(join(top, "mine"));
    chownSync(join(top, "mine"), USER.uid, USER.gid);
    writeFileSync(join(top, "mine/own"), "o");
    chownSync(join(top, "mine/own"), USER.uid, USER.gid);
    mkdirSync(join(top, "shared"), 0o777);
    chmodSync(join(top, "shared"), 0o1777);
    writeFileSync(join(top, "shared/roots"), "r");
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
    const t = createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" });
    fs = createClient(Filesystem, t);
    ext = createClient(FilesystemExt, t);
  });

  after(async () => {
    rmSync(top, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("a non-root user cannot read, list, change or remove what the OS would refuse it", async () => {
    assert.equal(await codeOf(fs.listDir({ path: join(top, "private") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(fs.stat({ path: join(top, "private/secret") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(fs.makeDir({ path: join(top, "newdir") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(fs.remove({ path: join(top, "readonly") }, AS_USER)), Code.PermissionDenied);
    assert.equal(existsSync(join(top, "readonly")), true);
    assert.equal(await codeOf(fs.move({ source: join(top, "mine/own"), destination: join(top, "stolen") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(ext.chmod({ path: join(top, "readonly"), mode: 0o777 }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(ext.chown({ path: join(top, "mine/own"), user: "root" }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(ext.copy({ source: join(top, "private"), destination: join(top, "mine/loot") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(fs.watchDir({ path: join(top, "private") }, AS_USER)), Code.PermissionDenied);
    assert.equal(await codeOf(fs.remove({ path: join(top, "shared/roots") }, AS_USER)), Code.PermissionDenied, "sticky directory");
  });

  it("the same user works normally on its own files", async () => {
    assert.equal((await fs.listDir({ path: top }, AS_USER)).entries.length, 4);
    await fs.makeDir({ path: join(top, "mine/sub") }, AS_USER);
    await ext.copy({ source: join(top, "readonly"), destination: join(top, "mine/copy") }, AS_USER);
    await ext.chmod({ path: join(top, "mine/own"), mode: 0o600 }, AS_USER);
    await fs.move({ source: join(top, "mine/own"), destination: join(top, "mine/sub/own") }, AS_USER);
    await fs.remove({ path: join(top, "mine/sub") }, AS_USER);
    assert.equal(existsSync(join(top, "mine/sub")), false);
  });

  it("root is not restricted", async () => {
    assert.equal((await fs.listDir({ path: join(top, "private") })).entries.length, 1);
    await fs.remove({ path: join(top, "shared/roots") });
  });
});

describe("without enforcement (E2B's behaviour)", () => {
  it("any user acts with the daemon's rights", async () => {
    const d = await startDaemon();
    const top = mkdtempSync(join(tmpdir(), "noperm-"));
    try {
      mkdirSync(join(top, "private"), 0o700);
      writeFileSync(join(top, "private/secret"), "s");
      const fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
      assert.equal((await fs.listDir({ path: join(top, "private") }, AS_USER)).entries.length, 1);
    } finally {
      rmSync(top, { recursive: true, force: true });
      assert.equal(await d.stop(), 0);
    }
  });
});
