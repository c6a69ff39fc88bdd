// The Python client (clients/python, package envd_ts) run by python3 against a real daemon:
// sync and asyncio, by URL and through an object shaped like the e2b Python SDK's Sandbox (the
// SDK itself is not installable here). Skipped where no python3 has httpx and protobuf.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { haveV1Controllers } from "./limits-helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;

/** The first python3 that can import the client's dependencies. */
function findPython(): string | undefined {
  for (const p of ["python3", "/usr/bin/python3"]) {
    const r = spawnSync(p, ["-c", "import httpx, google.protobuf"], { encoding: "utf8" });
    if (r.status === 0) return p;
  }
  return undefined;
}

const python = findPython();

describe("the Python client against a daemon", { skip: !python && "no python3 with httpx and protobuf (Debian: python3-httpx python3-protobuf)" }, () => {
  let d: Daemon;
  let work: string;

  before(async () => {
    d = await startDaemon({ args: ["--access-token", "py-secret"] });
    work = mkdtempSync(join(tmpdir(), "envd-py-"));
    chmodSync(work, 0o777);
  });
  after(async () => {
    rmSync(work, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("runs every check of clients/python/tests/e2e.py", async () => {
    const child = spawn(python!, [join(ROOT, "clients/python/tests/e2e.py")], {
      env: { ...process.env, ENVD_URL: d.url, ENVD_TOKEN: "py-secret", WORK_DIR: work, OOM: haveV1Controllers() ? "1" : "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const code = await new Promise((r) => child.on("close", r));
    assert.equal(code, 0, `python failed:\n${out}\n${err}`);
    const expected = [
      "sandbox-shaped object: URL, token and user",
      "errors: unauthenticated, unavailable",
      ...(haveV1Controllers() ? ["64M limit, 256M allocation: oom_killed"] : []),
      "re-attach from the oldest byte returns every byte",
      "restart policy and history",
      "signal by name; not_found; invalid_argument",
      "copy a tree, paged listing",
      "proxy create, wait for port, delete",
      "usage stream",
      "asyncio client",
    ];
    assert.deepEqual(out.trim().split("\n"), [...expected.map((e) => `ok ${e}`), "done"]);
  });
});
