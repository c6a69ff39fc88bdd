// File operations that cannot be raced: real attacks on the daemon's file
// operations. A local process of the unprivileged `user` (test/helpers/attacker.c,
// started with setpriv) swaps names for symlinks in a tight loop while a client
// drives the API; other cases need no race. A test fails on any leaked byte, any
// changed owner or mode of a file the user did not own, any write outside the
// root jail, any lost file. Also: the watcher events of an upload, which must be
// those of E2B's in-place write.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, closeSync, existsSync, fchownSync, openSync, renameSync, writeSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FilesystemExt } from "../src/gen/envdts/v1/filesystem_ext_pb.js";
import { Filesystem } from "../src/gen/filesystem_pb.js";
import { lookupUser } from "../src/users/passwd.js";
import { listXattr, setXattr } from "../src/filesystem/xattr.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest } from "./helpers/files-http.js";
import { buildAttacker, startAttacker } from "./helpers/attacker.js";

const USER = lookupUser("user");
if (!USER) throw new Error("these tests need the account 'user' (scripts/test-setup.sh creates it)");
const AS_USER = { headers: { authorization: "Basic " + Buffer.from("user:").toString("base64") } };
/** How long each race runs. */
const RACE_MS = 5000;

let top: string;
let attackerBin: string;

before(() => {
  top = mkdtempSync("/tmp/attack-files-");
  chmodSync(top, 0o755);
  attackerBin = buildAttacker(top);
});

after(() => {
  rmSync(top, { recursive: true, force: true });
});

/** A fresh directory under `top`, owned by `user` when `owned`. */
function freshDir(name: string, owned: boolean): string {
  const p = join(top, name);
  mkdirSync(p, { recursive: true });
  chmodSync(p, 0o755);
  if (owned) chownSync(p, USER!.uid, USER!.gid);
  return p;
}

/** A root-owned file the user must never get. */
function rootFile(path: string, content: string, mode = 0o600): string {
  writeFileSync(path, content);
  chmodSync(path, mode);
  chownSync(path, 0, 0);
  return path;
}

/** Fails unless `path` is still root's, with its mode, content and no extended attributes added. */
function assertUntouched(path: string, content: string, mode: number, what: string): void {
  const st = lstatSync(path);
  assert.equal(st.isFile(), true, `${what}: still a regular file`);
  assert.equal(st.uid, 0, `${what}: owner changed to ${st.uid}`);
  assert.equal(st.gid, 0, `${what}: group changed to ${st.gid}`);
  assert.equal(st.mode & 0o7777, mode, `${what}: mode changed to ${(st.mode & 0o7777).toString(8)}`);
  assert.equal(readFileSync(path, "utf8"), content, `${what}: content changed`);
  assert.deepEqual(listXattr(path), [], `${what}: extended attributes added`);
}

/** Runs `op(i)` in `lanes` parallel loops for `ms`; failures of the operation are expected and ignored. */
async function hammer(ms: number, lanes: number, op: (i: number) => Promise<unknown>, until?: () => boolean): Promise<number> {
  // With `until`, the race goes on past `ms` until the condition holds (at most 12 × ms): on a
  // loaded machine the attacker may win every round for a while, and a race in which no operation
  // succeeded proves nothing.
  const started = Date.now();
  const going = () => Date.now() < started + ms || (until !== undefined && !until() && Date.now() < started + 12 * ms);
  let n = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (going()) {
        const i = n++;
        await op(i).catch(() => {});
      }
    }),
  );
  return n;
}

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

function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs a shell command as `user`; returns its exit status. */
function asUser(cmd: string): number {
  return spawnSync("setpriv", ["--reuid", "user", "--regid", "user", "--init-groups", "sh", "-c", cmd], { stdio: "ignore" }).status ?? -1;
}

function upload(d: Daemon, path: string, body: Buffer | string, user = "user") {
  return httpRequest(`${d.url}/files?path=${encodeURIComponent(path)}&username=${user}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body });
}

function download(d: Daemon, path: string, user = "user") {
  return httpRequest(`${d.url}/files?path=${encodeURIComponent(path)}&username=${user}`);
}

function compose(d: Daemon, sources: string[], destination: string, user = "user") {
  return httpRequest(`${d.url}/files/compose`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ source_paths: sources, destination, username: user }),
  });
}

function clients(d: Daemon): { fs: Client<typeof Filesystem>; ext: Client<typeof FilesystemExt> } {
  const t = createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" });
  return { fs: createClient(Filesystem, t), ext: createClient(FilesystemExt, t) };
}

describe("1. Chown does not follow a symlink to a file the user does not own (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("a copied root symlink, or the user's own, chowned to the user leaves its target root's", async () => {
    const base = freshDir("f1", false);
    const u = freshDir("f1/u", true);
    const target = rootFile(join(base, "root-file"), "ROOT ONE");
    symlinkSync(target, join(base, "root-link"));
    const { ext } = clients(d);
    // The user copies root's symlink (copied as a link, owned by the user) and chowns the copy.
    await ext.copy({ source: join(base, "root-link"), destination: join(u, "copied-link") }, AS_USER).catch(() => {});
    await ext.chown({ path: join(u, "copied-link"), user: "user", group: "user" }, AS_USER).catch(() => {});
    assertUntouched(target, "ROOT ONE", 0o600, "target of a copied root symlink");
    // The user's own symlink, made by its own shell.
    assert.equal(asUser(`ln -s ${target} ${join(u, "own-link")}`), 0);
    await ext.chown({ path: join(u, "own-link"), user: "user" }, AS_USER).catch(() => {});
    await ext.chown({ path: join(u, "own-link"), group: "user" }, AS_USER).catch(() => {});
    await ext.chown({ path: u, user: "user", recursive: true }, AS_USER).catch(() => {});
    assertUntouched(target, "ROOT ONE", 0o600, "target of the user's symlink");
    // What the user's shell can do afterwards decides: it must not read root's file.
    assert.notEqual(asUser(`cat ${target}`), 0, "the user's shell reads root's file");
  });
});

describe("2. Entries the daemon creates for a user are not chowned by path (default daemon)", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let ext: Client<typeof FilesystemExt>;
  before(async () => {
    d = await startDaemon();
    ({ fs, ext } = clients(d));
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  /** Races `op` for RACE_MS against the attacker swapping every new entry (matching `filter`) in a user directory for a symlink to a root file. */
  async function race(name: string, filter: string, op: (u: string, src: string, i: number) => Promise<unknown>, lanes = 2): Promise<void> {
    const u = freshDir(`f2-${name}/u`, true);
    const src = freshDir(`f2-${name}/src`, true);
    const target = rootFile(join(top, `f2-${name}/root-file`), "ROOT TWO");
    const attacker = await startAttacker(attackerBin, ["swap", u, filter, target], u);
    let ops: number;
    try {
      ops = await hammer(RACE_MS, lanes, (i) => op(u, src, i));
    } finally {
      const swaps = await attacker.stop();
      assert.ok(swaps > 0, `the attacker swapped nothing (${swaps})`);
    }
    assert.ok(ops > 10, `only ${ops} operations`);
    assertUntouched(target, "ROOT TWO", 0o600, `root file after ${ops} ${name} operations`);
  }

  it("upload into new directories", async () => {
    await race("upload", "*", (u, _src, i) => upload(d, join(u, `d${i}/f`), "x", "user"));
  });

  it("MakeDir", async () => {
    await race("makedir", "*", (u, _src, i) => fs.makeDir({ path: join(u, `m${i}/sub`) }, AS_USER));
  });

  it("Move into new directories", async () => {
    await race("move", "*", (u, src, i) => {
      const s = join(src, `s${i}`);
      writeFileSync(s, "moved");
      chownSync(s, USER.uid, USER.gid);
      return fs.move({ source: s, destination: join(u, `n${i}/f`) }, AS_USER);
    });
  });

  it("compose into new directories", async () => {
    await race("compose", "*", (u, src, i) => {
      const s = join(src, `c${i}`);
      writeFileSync(s, "part");
      chownSync(s, USER.uid, USER.gid);
      return compose(d, [s], join(u, `k${i}/out`));
    });
  });

  it("Copy's temporary file (chown and chmod by path)", async () => {
    const source = join(top, "f2-copy-source");
    writeFileSync(source, "copy me");
    chmodSync(source, 0o644);
    await race("copy", ".envd-", (u, _src, i) => ext.copy({ source, destination: join(u, `copy${i}`) }, AS_USER));
  });

  it("an upload's temporary file gets the old file's extended attributes by path", async () => {
    // Over an existing file with a foreign attribute; a body over 64 KiB takes the asynchronous open.
    const body = Buffer.alloc(100 * 1024, "b");
    await race(
      "xattr",
      ".envd-",
      async (u) => {
        const t = join(u, "existing");
        rmSync(t, { force: true });
        writeFileSync(t, "old", { flag: "wx" });
        chownSync(t, USER.uid, USER.gid);
        setXattr(t, "user.attack", Buffer.from("carried"));
        return upload(d, t, body, "user");
      },
      1,
    );
  });
});

describe("3. Search permission is checked on the resolved path (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("a symlink into a 0700 directory reaches nothing inside it", async () => {
    const base = freshDir("f3", false);
    mkdirSync(join(base, "private/inner"), { recursive: true });
    chmodSync(join(base, "private"), 0o700);
    chmodSync(join(base, "private/inner"), 0o755);
    writeFileSync(join(base, "private/inner/secret"), "SECRET THREE");
    chmodSync(join(base, "private/inner/secret"), 0o644);
    const u = freshDir("f3/u", true);
    assert.equal(asUser(`ln -s ${join(base, "private/inner")} ${join(u, "peek")}`), 0);
    assert.notEqual(asUser(`cat ${join(u, "peek/secret")}`), 0, "the user's shell cannot read it");
    const { fs, ext } = clients(d);
    const peek = join(u, "peek");
    const problems: string[] = [];
    const stat = await codeOf(fs.stat({ path: join(peek, "secret") }, AS_USER));
    if (stat !== Code.PermissionDenied) problems.push(`Stat: ${stat}`);
    const list = await codeOf(fs.listDir({ path: peek }, AS_USER));
    if (list !== Code.PermissionDenied) problems.push(`ListDir: ${list}`);
    const copy = await codeOf(ext.copy({ source: join(peek, "secret"), destination: join(u, "loot") }, AS_USER));
    if (copy !== Code.PermissionDenied) problems.push(`Copy: ${copy}`);
    if (existsSync(join(u, "loot"))) problems.push(`Copy wrote ${JSON.stringify(readFileSync(join(u, "loot"), "utf8"))}`);
    const watch = await codeOf(fs.watchDir({ path: peek }, AS_USER));
    if (watch !== Code.PermissionDenied) problems.push(`WatchDir: ${watch}`);
    const watcher = await codeOf(fs.createWatcher({ path: peek }, AS_USER));
    if (watcher !== Code.PermissionDenied) problems.push(`CreateWatcher: ${watcher}`);
    const got = await download(d, join(peek, "secret"));
    if (got.status !== 403 || got.text.includes("SECRET")) problems.push(`GET /files: ${got.status} ${got.text.slice(0, 40)}`);
    assert.deepEqual(problems, []);
  });
});

describe("3. The kernel decides on the file actually used, while names are swapped (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  /** A user directory holding `mine` (the user's file) and `link` (a symlink to a root 0600 file). */
  function setup(name: string): { u: string; secret: string; ensure(): void } {
    const base = freshDir(name, false);
    const secret = rootFile(join(base, "secret"), "ROOT NINE");
    const u = freshDir(`${name}/u`, true);
    // Made in the root-only base and renamed in: never by a path the attacker can redirect.
    let n = 0;
    const ensure = () => {
      if (!lexists(join(u, "mine"))) {
        const tmp = join(base, `mine-${n++}`);
        const fd = openSync(tmp, "wx");
        writeSync(fd, "MINE");
        fchownSync(fd, USER!.uid, USER!.gid);
        closeSync(fd);
        renameSync(tmp, join(u, "mine"));
      }
      // Compose deletes whichever of the two it got: keep one symlink among them.
      const isLink = (name: string) => lexists(join(u, name)) && lstatSync(join(u, name)).isSymbolicLink();
      if (!isLink("mine") && !isLink("link")) {
        const tmp = join(base, `link-${n++}`);
        symlinkSync(secret, tmp);
        renameSync(tmp, join(u, "link"));
      }
    };
    ensure();
    return { u, secret, ensure };
  }

  it("a download while the user exchanges its file and a symlink to root's file", async () => {
    const { u, secret } = setup("f3-race-get");
    const attacker = await startAttacker(attackerBin, ["exchange", "mine", "link"], u);
    const leaks: string[] = [];
    let reads = 0;
    try {
      await hammer(
        RACE_MS,
        2,
        async () => {
          const r = await download(d, join(u, "mine"));
          if (r.status === 200) reads++;
          if (r.text.includes("ROOT")) leaks.push(r.text);
        },
        () => reads > 0,
      );
    } finally {
      assert.ok((await attacker.stop()) > 0, "the attacker swapped nothing");
    }
    assert.ok(reads > 0, "no download succeeded at all");
    assert.deepEqual(leaks.slice(0, 3), [], `${leaks.length} leaks in ${reads} successful reads`);
    assertUntouched(secret, "ROOT NINE", 0o600, "root's file");
  });

  it("a compose whose source the user exchanges with a symlink to root's file", async () => {
    const { u, secret, ensure } = setup("f3-race-compose");
    const out = freshDir("f3-race-compose/out", true);
    const attacker = await startAttacker(attackerBin, ["exchange", "mine", "link"], u);
    let ok = 0;
    try {
      await hammer(RACE_MS, 1, async (i) => {
        ensure();
        const r = await compose(d, [join(u, "mine")], join(out, `o${i}`));
        if (r.status === 200) ok++;
      });
    } finally {
      assert.ok((await attacker.stop()) > 0, "the attacker swapped nothing");
    }
    const leaked = readdirSync(out).filter((n) => readFileSync(join(out, n), "utf8").includes("ROOT"));
    // The attacker at full speed can win every round (compose renames its source aside and checks
    // it): that the same compose works once the race is over shows the refusals were the race's.
    rmSync(join(u, "mine"), { force: true });
    ensure();
    const after = await compose(d, [join(u, "mine")], join(out, "after"));
    assert.equal(after.status, 200, `a compose after the race: ${after.status} (${ok} succeeded during it)`);
    assert.equal(readFileSync(join(out, "after"), "utf8"), "MINE");
    assert.deepEqual(leaked.slice(0, 3).map((n) => readFileSync(join(out, n), "utf8")), [], `${leaked.length} of ${ok} composed files hold root's secret`);
    assertUntouched(secret, "ROOT NINE", 0o600, "root's file");
  });

  it("uploads, MakeDir and Copy into the user's directory while it is exchanged with a symlink to a root-only directory", async () => {
    const base = freshDir("f3-race-upload", false);
    const rootOnly = freshDir("f3-race-upload/root-only", false);
    const u = freshDir("f3-race-upload/u", true);
    freshDir("f3-race-upload/u/d", true);
    symlinkSync(rootOnly, join(u, "l"));
    assert.notEqual(asUser(`touch ${join(rootOnly, "x")}`), 0, "the user's shell writes into the root-only directory");
    const source = join(base, "copy-source");
    writeFileSync(source, "copied");
    chmodSync(source, 0o644);
    const { fs, ext } = clients(d);
    const attacker = await startAttacker(attackerBin, ["exchange", "d", "l"], u);
    let ok = 0;
    try {
      await Promise.all([
        hammer(
          RACE_MS,
          2,
          async (i) => {
            // Straight into d, and into a new directory under d.
            const r = await upload(d, join(u, i % 2 ? `d/f${i}` : `d/s${i}/f`), "planted");
            if (r.status === 200) ok++;
          },
          () => ok > 0,
        ),
        hammer(RACE_MS, 1, (i) => fs.makeDir({ path: join(u, `d/m${i}`) }, AS_USER)),
        hammer(RACE_MS, 1, (i) => ext.copy({ source, destination: join(u, `d/c${i}`) }, AS_USER)),
      ]);
    } finally {
      assert.ok((await attacker.stop()) > 0, "the attacker swapped nothing");
    }
    assert.ok(ok > 0, "no upload succeeded at all");
    assert.deepEqual(readdirSync(rootOnly), [], `files planted in a root-only directory (base ${base})`);
  });
});

describe("4. The sticky bit protects other users' files (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("Move cannot replace, nor compose delete, root's files in /tmp", async () => {
    assert.equal(statSync("/tmp").mode & 0o1000, 0o1000, "/tmp is sticky");
    const tag = `${process.pid}-${Date.now()}`;
    const victim = rootFile(`/tmp/attack-sticky-victim-${tag}`, "ROOT FOUR", 0o644);
    const source = rootFile(`/tmp/attack-sticky-source-${tag}`, "ROOT FOUR SOURCE", 0o644);
    const mine = `/tmp/attack-sticky-mine-${tag}`;
    try {
      writeFileSync(mine, "mine");
      chownSync(mine, USER.uid, USER.gid);
      // What the user's own shell may do: neither.
      assert.notEqual(asUser(`mv -f ${mine} ${victim}`), 0, "the user's shell replaces root's file");
      assert.notEqual(asUser(`rm -f ${source}`), 0, "the user's shell deletes root's file");
      const { fs } = clients(d);
      const moved = await codeOf(fs.move({ source: mine, destination: victim }, AS_USER));
      const composed = await compose(d, [source], join(freshDir("f4", true), "out"));
      assertUntouched(victim, "ROOT FOUR", 0o644, "Move's destination");
      assert.ok(existsSync(source), `compose (${composed.status}) deleted root's source`);
      assertUntouched(source, "ROOT FOUR SOURCE", 0o644, "compose's source");
      assert.equal(moved, Code.PermissionDenied);
      assert.equal(composed.status, 403);
    } finally {
      rmSync(victim, { force: true });
      rmSync(source, { force: true });
      rmSync(mine, { force: true });
    }
  });
});

describe("5. An upload to a device node does not chown it (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("a world-writable device node stays root's", async () => {
    const base = freshDir("f5", false);
    const node = join(base, "null");
    execFileSync("mknod", ["-m", "666", node, "c", "1", "3"]);
    chmodSync(node, 0o666);
    await upload(d, node, "into the device");
    const st = lstatSync(node);
    assert.equal(st.isCharacterDevice(), true);
    assert.equal(st.uid, 0, "the device node now belongs to the user");
    assert.equal(st.mode & 0o7777, 0o666);
    assert.notEqual(asUser(`chmod 4777 ${node}`), 0, "the user can chmod the device node");
  });
});

describe("6. /proc/self is not the user's (--enforce-file-permissions)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("a user neither writes the daemon's timerslack_ns nor reads its environment or memory map", async () => {
    const slack = `/proc/${d.pid}/timerslack_ns`;
    const before = readFileSync(slack, "utf8");
    const wrote = await upload(d, "/proc/self/timerslack_ns", "1234567");
    assert.equal(readFileSync(slack, "utf8"), before, `the user set the daemon's timer slack (${wrote.status})`);
    assert.equal(wrote.status, 403);
    const env = await download(d, "/proc/self/environ");
    assert.equal(env.status, 403);
    assert.equal(env.text.includes("PATH="), false, "the daemon's environment leaked");
    // The kernel lets a process read all of its own /proc entries, whoever's fsuid it takes.
    const maps = await download(d, "/proc/self/maps");
    assert.equal(maps.text.includes("node"), false, "the daemon's memory map leaked");
    assert.equal(maps.status, 403);
  });
});

describe("7. The root jail holds while a component is swapped for a symlink (--fs-root)", () => {
  let d: Daemon;
  let jail: string;
  let outside: string;
  before(async () => {
    jail = freshDir("f7/jail", true);
    outside = freshDir("f7/outside", false);
    writeFileSync(join(outside, "secret"), "OUTSIDE SECRET");
    writeFileSync(join(outside, "victim"), "ORIGINAL");
    writeFileSync(join(outside, "outside-only"), "x");
    d = await startDaemon({ args: ["--fs-root", jail] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("reads, writes, listings and stats never reach outside while d and a symlink out are exchanged", async () => {
    const inside = freshDir("f7/jail/d", true);
    writeFileSync(join(inside, "secret"), "inside");
    writeFileSync(join(inside, "victim"), "inside victim");
    chownSync(join(inside, "victim"), USER.uid, USER.gid);
    symlinkSync(outside, join(jail, "l"));
    lstatSync(join(jail, "l"));
    chownSync(jail, USER.uid, USER.gid);
    execFileSync("chown", ["-h", "user:user", join(jail, "l")]);
    const outsideNames = readdirSync(outside).sort();
    const { fs } = clients(d);
    const attacker = await startAttacker(attackerBin, ["exchange", "d", "l"], jail);
    const leaks: string[] = [];
    let reads = 0;
    try {
      await Promise.all([
        hammer(
          RACE_MS,
          1,
          async () => {
            const r = await download(d, join(jail, "d/secret"), "root");
            if (r.status === 200) reads++;
            if (r.text.includes("OUTSIDE")) leaks.push(`GET: ${r.text}`);
          },
          () => reads > 0,
        ),
        hammer(RACE_MS, 1, () => upload(d, join(jail, "d/victim"), "OVERWRITTEN", "root")),
        hammer(RACE_MS, 1, async () => {
          const res = await fs.listDir({ path: join(jail, "d") });
          if (res.entries.some((e) => e.name === "outside-only")) leaks.push("ListDir listed outside-only");
        }),
        hammer(RACE_MS, 1, async () => {
          const res = await fs.stat({ path: join(jail, "d/outside-only") });
          leaks.push(`Stat found ${res.entry?.path}`);
        }),
      ]);
    } finally {
      const swaps = await attacker.stop();
      assert.ok(swaps > 0, "the attacker swapped nothing");
    }
    assert.equal(readFileSync(join(outside, "victim"), "utf8"), "ORIGINAL", "a file outside the jail was overwritten");
    assert.deepEqual(readdirSync(outside).sort(), outsideNames, "entries were created outside the jail");
    assert.ok(reads > 0, "no read succeeded at all");
    assert.deepEqual(leaks.slice(0, 5), [], `${leaks.length} leaks in ${reads} successful reads`);
  });
});

describe("8. One file under two spellings is refused, never lost (default daemon)", () => {
  let d: Daemon;
  let fs: Client<typeof Filesystem>;
  let ext: Client<typeof FilesystemExt>;
  let real: string;
  let link: string;
  before(async () => {
    d = await startDaemon();
    ({ fs, ext } = clients(d));
    real = freshDir("f8/real", false);
    link = join(top, "f8/link");
    symlinkSync(real, link);
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("compose whose source is the destination through a symlinked directory", async () => {
    writeFileSync(join(real, "dest"), "DEST");
    const res = await compose(d, [join(link, "dest")], join(real, "dest"), "root");
    assert.equal(existsSync(join(real, "dest")) ? readFileSync(join(real, "dest"), "utf8") : "<lost>", "DEST");
    assert.equal(res.status, 400, res.text);
  });

  it("compose with two sources that are one file", async () => {
    writeFileSync(join(real, "a"), "A");
    const res = await compose(d, [join(real, "a"), join(link, "a")], join(real, "out"), "root");
    assert.equal(existsSync(join(real, "a")) ? readFileSync(join(real, "a"), "utf8") : "<lost>", "A");
    assert.equal(existsSync(join(real, "out")), false, "a destination was written");
    assert.equal(res.status, 400, res.text);
  });

  it("Move and Copy onto the same file are invalid_argument and keep it", async () => {
    writeFileSync(join(real, "m"), "MOVE");
    const moved = await codeOf(fs.move({ source: join(link, "m"), destination: join(real, "m") }));
    assert.equal(readFileSync(join(real, "m"), "utf8"), "MOVE");
    writeFileSync(join(real, "k"), "COPY");
    const copied = await codeOf(ext.copy({ source: join(link, "k"), destination: join(real, "k"), force: true }));
    assert.equal(readFileSync(join(real, "k"), "utf8"), "COPY");
    assert.deepEqual([moved, copied], [Code.InvalidArgument, Code.InvalidArgument]);
  });
});

describe("watcher events of an upload, as E2B's in-place write gives them", () => {
  type E2b = typeof import("e2b");
  let d: Daemon;
  let sbx: InstanceType<E2b["Sandbox"]>;
  before(async () => {
    d = await startDaemon();
    process.env.E2B_DEBUG = "true";
    process.env.E2B_SANDBOX_URL = d.url;
    const e2b = (await import("e2b")) as unknown as E2b;
    sbx = await e2b.Sandbox.create();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  /** The events a watcher on the file's directory sees for one SDK write, consecutive repeats collapsed. */
  async function eventsOfWrite(dir: string, name: string, expected: number): Promise<string[]> {
    const seen: string[] = [];
    const handle = await sbx.files.watchDir(dir, (e) => {
      if (e.name === name) seen.push(e.type);
    });
    try {
      await sbx.files.write(join(dir, name), "hello watcher");
      const deadline = Date.now() + 5000;
      while (seen.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      // Anything more arrives within the same burst; give it a moment to show.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await handle.stop();
    }
    return seen.filter((t, i) => i === 0 || t !== seen[i - 1]);
  }

  it("a new file: CREATE, CHMOD, WRITE", async () => {
    const dir = freshDir("watch-new", false);
    assert.deepEqual(await eventsOfWrite(dir, "new.txt", 3), ["create", "chmod", "write"]);
  });

  it("an existing file: CHMOD, WRITE", async () => {
    const dir = freshDir("watch-existing", false);
    writeFileSync(join(dir, "old.txt"), "before");
    assert.deepEqual(await eventsOfWrite(dir, "old.txt", 2), ["chmod", "write"]);
  });
});
