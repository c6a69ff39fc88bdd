// Hostile paths: .. chains, NUL bytes, very long names and paths, names that are not UTF-8,
// symlink loops, /proc and /sys, FIFOs and sockets. Every request gets a clean answer, nothing
// blocks the daemon (a FIFO read must not hang it), and it keeps serving afterwards.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectStream, readFrames } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest } from "./helpers/files-http.js";
import { basic, fdKinds, health, unaryJson } from "./helpers/hostile.js";

let d: Daemon;
let base: string;
let unixServer: Server;
const S = (p: string) => join(base, p);
const files = (path: string, extra = "") => `${d.url}/files?path=${encodeURIComponent(path)}${extra}`;

before(async () => {
  base = mkdtempSync(join(tmpdir(), "envd-hostile-paths-"));
  writeFileSync(S("ok.txt"), "fine\n");
  execFileSync("mkfifo", [S("fifo")]);
  unixServer = createServer().listen(S("sock"));
  await new Promise((r) => unixServer.once("listening", r));
  symlinkSync("loop-b", S("loop-a"));
  symlinkSync("loop-a", S("loop-b"));
  symlinkSync("self", S("self"));
  mkdirSync(S("mixed"));
  writeFileSync(Buffer.concat([Buffer.from(S("mixed/")), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74])]), "bad name");
  writeFileSync(Buffer.concat([Buffer.from(S("mixed/")), Buffer.from([0xc3, 0x28])]), "overlong");
  writeFileSync(S("mixed/good.txt"), "good");
  execFileSync("mkfifo", [S("mixed/pipe")]);
  symlinkSync("../loop-a", S("mixed/to-loop"));
  d = await startDaemon();
});

after(async () => {
  unixServer?.close();
  const code = await d?.stop();
  // rm(1) walks with openat, so it also removes the tree deeper than PATH_MAX.
  execFileSync("rm", ["-rf", base]);
  assert.equal(code, 0);
});

/** Runs `fn` and fails if it takes longer than `ms`: nothing here may block. */
async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms)));
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const rpc = (method: string, body: unknown) => within(10_000, method, () => unaryJson(d.url, method, body));

describe("NUL bytes", () => {
  const p = "/tmp/a\u0000b";
  for (const [method, body] of [
    ["filesystem.Filesystem/Stat", { path: p }],
    ["filesystem.Filesystem/MakeDir", { path: p }],
    ["filesystem.Filesystem/ListDir", { path: p }],
    ["filesystem.Filesystem/Remove", { path: p }],
    ["filesystem.Filesystem/Move", { source: p, destination: "/tmp/x" }],
    ["filesystem.Filesystem/Move", { source: "/tmp/x", destination: p }],
    ["filesystem.Filesystem/CreateWatcher", { path: p }],
    ["envdts.v1.FilesystemExt/Copy", { source: p, destination: "/tmp/x" }],
    ["envdts.v1.FilesystemExt/Chmod", { path: p, mode: 0o644 }],
  ] as const) {
    it(`${method} ${JSON.stringify(body).replace(/\\u0000/g, "\\0")} → invalid_argument`, async () => {
      const r = await rpc(method, body);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.equal(r.json.code, "invalid_argument");
    });
  }

  it("WatchDir → invalid_argument before start", async () => {
    const res = await connectStream(`${d.url}/filesystem.Filesystem/WatchDir`, { path: p });
    const frames = [];
    for await (const f of readFrames(res.body)) frames.push({ flags: f.flags, json: JSON.parse(f.data.toString()) });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.json.error.code, "invalid_argument");
  });

  it("GET and POST /files → 400", async () => {
    assert.equal((await httpRequest(files(p))).status, 400);
    const up = await httpRequest(files(p), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.equal(up.status, 400);
    assert.equal(existsSync("/tmp/a"), false);
  });
});

describe(".. chains", () => {
  it("resolve lexically without a jail: ../../../../etc/passwd from the home is /etc/passwd", async () => {
    const r = await rpc("filesystem.Filesystem/Stat", { path: "../../../../../../../../../etc/passwd" });
    assert.equal(r.status, 200);
    assert.equal(r.json.entry.path, "/etc/passwd");
  });

  it("a 20 000-segment ../ chain is answered, not choked on", async () => {
    const r = await rpc("filesystem.Filesystem/Stat", { path: "../".repeat(20_000) + "etc/passwd" });
    assert.equal(r.status, 200, JSON.stringify(r.json).slice(0, 200));
    assert.equal(r.json.entry.path, "/etc/passwd");
  });

  describe("inside a jail (--fs-root)", () => {
    let jd: Daemon;
    let root: string;
    before(async () => {
      root = S("jail");
      mkdirSync(join(root, "in"), { recursive: true });
      writeFileSync(join(root, "in/f"), "inside");
      symlinkSync("/etc", join(root, "to-etc"));
      symlinkSync("../../..", join(root, "in/up"));
      jd = await startDaemon({ args: ["--fs-root", root] });
    });
    after(async () => {
      await jd?.stop();
    });

    const escapes = ["../../../etc/passwd", "in/../../../etc/passwd", "in/up/etc/passwd", "to-etc/passwd", "in/./../../ok.txt", "/etc/passwd"];
    for (const e of escapes) {
      it(`${e}: Stat permission_denied, GET 403, upload 403 and nothing written`, async () => {
        const path = e.startsWith("/") ? e : join(root, e);
        const st = await unaryJson(jd.url, "filesystem.Filesystem/Stat", { path });
        assert.equal(st.json.code, "permission_denied", JSON.stringify(st.json));
        const get = await httpRequest(`${jd.url}/files?path=${encodeURIComponent(path)}`);
        assert.equal(get.status, 403, get.text);
        const written = e.replace("passwd", "envd-hostile-written");
        const target = written.startsWith("/") ? written : join(root, written);
        const up = await httpRequest(`${jd.url}/files?path=${encodeURIComponent(target)}`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "pwned" });
        assert.equal(up.status, 403, up.text);
        assert.equal(existsSync("/etc/envd-hostile-written"), false);
      });
    }

    it("percent-encoded dots in the query string are still dots", async () => {
      const get = await httpRequest(`${jd.url}/files?path=${root}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`);
      assert.equal(get.status, 403);
    });
  });
});

describe("very long names and paths", () => {
  const longName = S("n".repeat(300));
  const longPath = "/tmp/" + Array(1200).fill("abcd").join("/");

  it("a 300-byte name: Stat, MakeDir, GET, upload all get clean errors naming the cause", async () => {
    for (const [method, body] of [
      ["filesystem.Filesystem/Stat", { path: longName }],
      ["filesystem.Filesystem/MakeDir", { path: longName }],
    ] as const) {
      const r = await rpc(method, body);
      assert.ok(r.status >= 400 && r.status < 600, `${method} ${r.status}`);
      assert.match(r.json.message, /name too long/i);
    }
    const get = await httpRequest(files(longName));
    assert.ok(get.status >= 400, `GET ${get.status}`);
    const up = await httpRequest(files(longName), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.ok(up.status >= 400 && up.status < 600, `POST ${up.status}`);
    assert.match(up.text, /name too long/i);
  });

  it("a 6 KiB path (past PATH_MAX): clean errors", async () => {
    for (const [method, body] of [
      ["filesystem.Filesystem/Stat", { path: longPath }],
      ["filesystem.Filesystem/MakeDir", { path: longPath }],
      ["filesystem.Filesystem/ListDir", { path: longPath }],
    ] as const) {
      const r = await rpc(method, body);
      assert.ok(r.status >= 400 && r.status < 600, `${method} ${r.status}`);
    }
    const up = await httpRequest(files(longPath), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.ok(up.status >= 400 && up.status < 600, `POST ${up.status}`);
  });

  it("a tree deeper than PATH_MAX made by a sandboxed process: listed as far as paths reach, watchable, removable", async () => {
    // Built with relative cd's, as any process inside could: 30 levels of 200-byte names (6 KiB).
    execFileSync("bash", ["-c", `cd ${S("")} && mkdir deep && cd deep && for i in $(seq 30); do n=$(printf 'd%.0s' $(seq 200)); mkdir $n && cd $n; done; touch leaf`]);
    const list = await rpc("filesystem.Filesystem/ListDir", { path: S("deep"), depth: 100 });
    assert.equal(list.status, 200, JSON.stringify(list.json).slice(-200));
    assert.ok(list.json.entries.length >= 15 && list.json.entries.length < 31, String(list.json.entries.length));
    const w = await rpc("filesystem.Filesystem/CreateWatcher", { path: S("deep"), recursive: true });
    assert.equal(w.status, 200, JSON.stringify(w.json).slice(-200));
    assert.equal((await rpc("filesystem.Filesystem/RemoveWatcher", { watcherId: w.json.watcherId })).status, 200);
    const rm = await rpc("filesystem.Filesystem/Remove", { path: S("deep") });
    assert.equal(rm.status, 200, JSON.stringify(rm.json).slice(-200));
    assert.equal(existsSync(S("deep")), false);
  });
});

describe("names that are not UTF-8", () => {
  it("ListDir lists the directory anyway: the good names exact, the bad ones with U+FFFD", async () => {
    const r = await rpc("filesystem.Filesystem/ListDir", { path: S("mixed") });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const names: string[] = r.json.entries.map((e: { name: string }) => e.name).sort();
    assert.ok(names.includes("good.txt"));
    assert.ok(names.includes("pipe"));
    assert.ok(names.includes("bad\ufffd\ufffd.txt"), names.join(","));
    assert.equal(names.length, 5);
  });

  it("a watcher reports a file created with such a name", async () => {
    const dir = S("watched");
    mkdirSync(dir);
    const ac = new AbortController();
    const res = await connectStream(`${d.url}/filesystem.Filesystem/WatchDir`, { path: dir }, {}, ac.signal);
    const events: any[] = [];
    const reading = (async () => {
      for await (const f of readFrames(res.body)) {
        const j = JSON.parse(f.data.toString());
        if (j.start) writeFileSync(Buffer.concat([Buffer.from(dir + "/"), Buffer.from([0x80, 0x81])]), "x");
        if (j.filesystem) events.push(j.filesystem);
        if (events.some((e) => e.type === "EVENT_TYPE_CREATE")) break;
      }
    })();
    await within(5000, "watch event", () => reading);
    ac.abort();
    assert.equal(events.find((e) => e.type === "EVENT_TYPE_CREATE").name, "\ufffd\ufffd");
  });
});

describe("symlink loops", () => {
  it("Stat of a loop describes the link itself", async () => {
    const r = await rpc("filesystem.Filesystem/Stat", { path: S("loop-a") });
    assert.equal(r.status, 200);
    assert.match(r.json.entry.permissions, /^L/);
  });

  it("ListDir and WatchDir on a loop fail cleanly; a directory holding loops lists fine", async () => {
    for (const loop of ["loop-a", "self"]) {
      const r = await rpc("filesystem.Filesystem/ListDir", { path: S(loop) });
      assert.ok(r.status >= 400 && r.status < 600, `${loop}: ${r.status}`);
    }
    const w = await rpc("filesystem.Filesystem/CreateWatcher", { path: S("loop-a") });
    assert.ok(w.status >= 400 && w.status < 600);
    const ok = await rpc("filesystem.Filesystem/ListDir", { path: base, depth: 3 });
    assert.equal(ok.status, 200);
  });

  it("GET, upload and MakeDir through a loop fail cleanly and create nothing", async () => {
    const get = await httpRequest(files(S("loop-a")));
    assert.ok(get.status >= 400 && get.status < 600, `GET ${get.status}`);
    const up = await httpRequest(files(S("loop-a")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.ok(up.status >= 400 && up.status < 600, `POST ${up.status}`);
    const mk = await rpc("filesystem.Filesystem/MakeDir", { path: S("loop-a/sub") });
    assert.ok(mk.status >= 400 && mk.status < 600);
  });

  it("Remove of a loop removes the link", async () => {
    symlinkSync("loop-c", S("loop-c"));
    const r = await rpc("filesystem.Filesystem/Remove", { path: S("loop-c") });
    assert.equal(r.status, 200);
    assert.throws(() => statSync(S("loop-c")));
  });
});

describe("/proc and /sys", () => {
  it("GET /proc/self/status sends what the kernel has (its size says 0)", async () => {
    const r = await within(5000, "GET /proc/self/status", () => httpRequest(files("/proc/self/status")));
    assert.equal(r.status, 200);
    assert.match(r.text, /^Name:\s+node/m);
  });

  it("GET of a sysfs file (size says 4096) sends its real content, complete", { skip: existsSync("/sys/kernel/address_bits") ? false : "no /sys/kernel/address_bits" }, async () => {
    const r = await within(5000, "GET sysfs", () => httpRequest(files("/sys/kernel/address_bits")));
    assert.equal(r.status, 200);
    assert.equal(r.text, readFileSync("/sys/kernel/address_bits", "utf8"));
  });

  it("gzip of /proc/self/maps works too", async () => {
    const res = await within(5000, "GET gzip", () => fetch(files("/proc/self/maps"), { headers: { "accept-encoding": "gzip" } }));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /node/);
  });

  it("files that block on read (/proc/kmsg) never stall the daemon: 8 reads, then a normal download still answers", async () => {
    const attempts = Array.from({ length: 8 }, (_, i) =>
      within(10_000, "GET /proc/kmsg", () => httpRequest(files("/proc/kmsg"), { headers: i % 2 ? { "accept-encoding": "gzip" } : {} })).then((r) => r.status),
    );
    for (const s of await Promise.all(attempts)) assert.ok([200, 403, 500].includes(s), String(s));
    const r = await within(5000, "GET after /proc/kmsg", () => httpRequest(files(S("ok.txt"))));
    assert.equal(r.text, "fine\n");
  });

  it("a device without end (/dev/zero, /dev/urandom) is sent as long as stat says, even gzipped", async () => {
    for (const dev of ["/dev/zero", "/dev/urandom"]) {
      const r = await within(5000, `GET ${dev}`, () => httpRequest(files(dev), { headers: { "accept-encoding": "gzip" } }));
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
    }
  });

  it("Stat and ListDir of /proc entries answer; an unreadable one is a clean error", async () => {
    assert.equal((await rpc("filesystem.Filesystem/Stat", { path: "/proc/self/fd/0" })).status, 200);
    assert.equal((await rpc("filesystem.Filesystem/ListDir", { path: "/proc/self", depth: 2 })).status, 200);
    assert.equal((await rpc("filesystem.Filesystem/ListDir", { path: "/sys/kernel", depth: 1 })).status, 200);
    const mem = await httpRequest(files("/proc/self/mem"));
    assert.ok(mem.status >= 400 && mem.status < 600);
  });

  it("ListDir of a huge tree stops at the message limit instead of holding it all in memory", async () => {
    const r = await rpc("filesystem.Filesystem/ListDir", { path: "/usr", depth: 1000 });
    if (r.status === 200) return; // a small /usr fits
    assert.equal(r.json.code, "resource_exhausted", JSON.stringify(r.json).slice(0, 300));
  });
});

describe("FIFOs and sockets", () => {
  it("GET of a FIFO and of a socket → 400 at once (no reader wait)", async () => {
    for (const p of ["fifo", "sock", "mixed/pipe"]) {
      const r = await within(3000, `GET ${p}`, () => httpRequest(files(S(p))));
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /not a regular file/);
    }
  });

  it("Stat and ListDir describe FIFOs and sockets", async () => {
    const fifo = await rpc("filesystem.Filesystem/Stat", { path: S("fifo") });
    assert.match(fifo.json.entry.permissions, /^p/);
    const sock = await rpc("filesystem.Filesystem/Stat", { path: S("sock") });
    assert.match(sock.json.entry.permissions, /^S/);
    const list = await rpc("filesystem.Filesystem/ListDir", { path: base });
    const names = list.json.entries.map((e: { name: string }) => e.name);
    assert.ok(names.includes("fifo") && names.includes("sock"));
  });

  it("an upload to a FIFO or socket → 400 at once, raw and multipart; the FIFO stays a FIFO", async () => {
    for (const p of ["fifo", "sock"]) {
      const raw = await within(3000, `POST ${p}`, () => httpRequest(files(S(p)), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "data" }));
      assert.equal(raw.status, 400, raw.text);
      const boundary = "b0undary";
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${S(p)}"\r\n\r\ndata\r\n--${boundary}--\r\n`;
      const mp = await within(3000, `POST multipart ${p}`, () => httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": `multipart/form-data; boundary=${boundary}` }, body }));
      assert.equal(mp.status, 400, mp.text);
    }
    assert.ok(statSync(S("fifo")).isFIFO());
  });

  it("compose with a FIFO as a source → 400; WatchDir and CreateWatcher on a FIFO → invalid_argument", async () => {
    const r = await within(3000, "compose", () =>
      httpRequest(`${d.url}/files/compose`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ source_paths: [S("fifo")], destination: S("composed") }) }),
    );
    assert.equal(r.status, 400, r.text);
    const w = await rpc("filesystem.Filesystem/CreateWatcher", { path: S("fifo") });
    assert.equal(w.json.code, "invalid_argument");
  });

  it("Copy of a directory holding a FIFO and a socket skips them", async () => {
    const r = await rpc("envdts.v1.FilesystemExt/Copy", { source: S("mixed"), destination: S("mixed-copy") });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(Number(r.json.skipped) >= 1);
  });

  it("afterwards: /health, no descriptor left open on any of these files", async () => {
    assert.equal(await health(d.url), 204);
    assert.equal(fdKinds(d.pid).file, fdKinds(d.pid).file); // sanity: readable
    const open = execFileSync("ls", ["-l", `/proc/${d.pid}/fd`]).toString();
    assert.doesNotMatch(open, new RegExp(base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });
});

describe("the sandboxed user is the one asking", () => {
  it("paths relative to the user's home resolve there, ~other is refused", async () => {
    const r = await unaryJson(d.url, "filesystem.Filesystem/Stat", { path: "~root/.bashrc" }, { authorization: basic("user") });
    assert.equal(r.json.code, "invalid_argument");
  });
});
