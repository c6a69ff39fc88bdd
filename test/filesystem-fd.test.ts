// File operations on descriptors (native/src/fdops.c, src/filesystem/resolve.ts) under the root
// jail: what the openat2 fast path cannot do alone (absolute symlinks that stay inside, which
// RESOLVE_BENEATH refuses, are walked component by component), and Remove racing a local user
// process that exchanges a directory with a symlink out of the jail.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FileType, Filesystem } from "../src/gen/filesystem_pb.js";
import { lookupUser } from "../src/users/passwd.js";
import { buildAttacker, startAttacker } from "./helpers/attacker.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest } from "./helpers/files-http.js";

const USER = lookupUser("user");
if (!USER) throw new Error("these tests need the account 'user' (scripts/test-setup.sh creates it)");

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("root jail on descriptors", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let top: string;
  let root: string;
  let outside: string;
  const files = (p: string) => `${d.url}/files?path=${encodeURIComponent(p)}&username=root`;

  before(async () => {
    // Under /var/tmp, not /tmp: the attacker (user) must reach its binary and the jail.
    top = mkdtempSync("/var/tmp/fsfd-");
    root = join(top, "root");
    outside = join(top, "outside");
    mkdirSync(join(root, "in/sub"), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(root, "in/file"), "inside");
    writeFileSync(join(outside, "secret"), "OUTSIDE");
    // Absolute targets in the host's spelling: inside the jail (followed), and out of it (refused).
    symlinkSync(join(root, "in"), join(root, "abs-in"));
    symlinkSync(join(root, "in/sub/../file"), join(root, "abs-file"));
    symlinkSync(outside, join(root, "abs-out"));
    d = await startDaemon({ args: ["--fs-root", root] });
    fs = createClient(Filesystem, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
  });

  after(async () => {
    assert.equal(await d.stop(), 0);
    execFileSync("rm", ["-rf", "--", top]);
  });

  it("absolute symlinks that stay inside are followed by reads, writes, listings and MakeDir", async () => {
    const got = await httpRequest(files(join(root, "abs-in/file")));
    assert.equal(got.status, 200, got.text);
    assert.equal(got.text, "inside");
    assert.equal((await httpRequest(files(join(root, "abs-file")))).text, "inside");
    const up = await httpRequest(files(join(root, "abs-in/new/uploaded")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "up" });
    assert.equal(up.status, 200, up.text);
    assert.equal(readFileSync(join(root, "in/new/uploaded"), "utf8"), "up");
    assert.deepEqual((await fs.listDir({ path: join(root, "abs-in") })).entries.map((e) => e.name).sort(), ["file", "new", "sub"]);
    assert.equal((await fs.stat({ path: join(root, "abs-in/file") })).entry?.type, FileType.FILE);
    await fs.makeDir({ path: join(root, "abs-in/made/deeper") });
    assert.ok(existsSync(join(root, "in/made/deeper")));
  });

  it("absolute symlinks out of the jail are refused and nothing is written outside", async () => {
    assert.equal((await httpRequest(files(join(root, "abs-out/secret")))).status, 403);
    const up = await httpRequest(files(join(root, "abs-out/planted")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.equal(up.status, 403, up.text);
    assert.equal(await codeOf(fs.makeDir({ path: join(root, "abs-out/made") })), Code.PermissionDenied);
    assert.equal(await codeOf(fs.listDir({ path: join(root, "abs-out") })), Code.PermissionDenied);
    assert.deepEqual(readdirSync(outside), ["secret"]);
  });

  it("Remove never deletes outside while a directory in the tree is exchanged with a symlink out", async () => {
    const bin = buildAttacker(top);
    const victims = join(outside, "victims");
    mkdirSync(victims);
    const names = Array.from({ length: 20 }, (_, i) => `v${i}`);
    for (const n of names) writeFileSync(join(victims, n), "keep");
    const work = join(root, "work");
    mkdirSync(work);
    chownSync(work, USER.uid, USER.gid);
    const tree = join(work, "t");
    const stage = join(root, "stage");
    // Built aside and renamed into place: never written through a symlink the attacker swapped in.
    const build = () => {
      mkdirSync(join(stage, "d"), { recursive: true });
      for (const n of names) writeFileSync(join(stage, "d", n), "inside");
      symlinkSync(victims, join(stage, "l"));
      chownSync(stage, USER.uid, USER.gid);
      renameSync(stage, tree);
    };
    build();
    const attacker = await startAttacker(bin, ["exchange", "t/d", "t/l"], work);
    let removes = 0;
    try {
      const until = Date.now() + 6000;
      while (Date.now() < until && readdirSync(victims).length === names.length) {
        // rm(1), not Node's by-path recursion: the test itself must not follow the swapped link.
        // The attacker keeps renaming inside the tree: rm may find a directory refilled under it.
        for (let i = 0; i < 100 && spawnSync("rm", ["-rf", "--", tree]).status !== 0; i++);
        build();
        await fs.remove({ path: tree }).catch(() => {});
        removes++;
      }
    } finally {
      await attacker.stop();
    }
    assert.deepEqual(readdirSync(victims).sort(), [...names].sort(), `outside files deleted within ${removes} removes`);
    assert.ok(removes > 10, `only ${removes} removes`);
  });

  it("ListDir below its first level never lists outside while a subdirectory is exchanged with a symlink out", async () => {
    const bin = buildAttacker(top);
    const out = join(outside, "listed");
    mkdirSync(out);
    for (let i = 0; i < 20; i++) writeFileSync(join(out, `outside-only-${i}`), "x");
    const work = join(root, "work2");
    mkdirSync(join(work, "t/d"), { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(work, "t/d", `inside-${i}`), "x");
    symlinkSync(out, join(work, "t/l"));
    execFileSync("chown", ["-R", "-h", "user:user", work]);
    const attacker = await startAttacker(bin, ["exchange", "t/d", "t/l"], work);
    let lists = 0;
    const leaks: string[] = [];
    try {
      const until = Date.now() + 5000;
      while (Date.now() < until && leaks.length === 0) {
        const res = await fs.listDir({ path: work, depth: 3 }).catch(() => undefined);
        if (!res) continue;
        lists++;
        for (const e of res.entries) if (e.name.startsWith("outside-only")) leaks.push(e.path);
      }
    } finally {
      await attacker.stop();
    }
    assert.deepEqual(leaks.slice(0, 3), [], `outside entries listed within ${lists} listings`);
    assert.ok(lists > 10, `only ${lists} listings`);
  });
});
