import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { readE2bMetadata } from "../src/filesystem/xattr.js";

type E2b = typeof import("e2b");
type Sandbox = InstanceType<E2b["Sandbox"]>;

const TOKEN = "f".repeat(64);

async function collect(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function streamOf(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const p of parts) controller.enqueue(p);
      controller.close();
    },
  });
}

describe("/files through the e2b SDK (debug mode)", () => {
  let d: Daemon;
  let secured: Daemon;
  let dir: string;
  let e2b: E2b;
  let sbx: Sandbox;

  before(async () => {
    d = await startDaemon();
    secured = await startDaemon({ args: ["--access-token", TOKEN] });
    dir = mkdtempSync(join(tmpdir(), "envd-files-sdk-"));
    process.env.E2B_DEBUG = "true";
    process.env.E2B_SANDBOX_URL = d.url;
    e2b = (await import("e2b")) as unknown as E2b;
    sbx = await e2b.Sandbox.create();
  });
  after(async () => {
    await d.stop();
    await secured.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes and reads text", async () => {
    const p = join(dir, "text.txt");
    const info = await sbx.files.write(p, "hello from the SDK \u2713");
    assert.deepEqual({ name: info.name, path: info.path, type: info.type }, { name: "text.txt", path: p, type: "file" });
    assert.equal(readFileSync(p, "utf8"), "hello from the SDK \u2713");
    assert.equal(await sbx.files.read(p), "hello from the SDK \u2713");
  });

  it("writes and reads bytes and blobs", async () => {
    const p = join(dir, "bytes.bin");
    const data = randomBytes(300_000);
    await sbx.files.write(p, new Uint8Array(data).buffer);
    assert.ok(readFileSync(p).equals(data));
    const bytes = await sbx.files.read(p, { format: "bytes" });
    assert.ok(Buffer.from(bytes).equals(data));
    const b = join(dir, "blob.bin");
    await sbx.files.write(b, new Blob([data.subarray(0, 1000), data.subarray(1000)]));
    const blob = await sbx.files.read(b, { format: "blob" });
    assert.ok(Buffer.from(await blob.arrayBuffer()).equals(data));
  });

  it("writes a ReadableStream (octet-stream upload) and reads a stream", async () => {
    const p = join(dir, "stream.bin");
    const a = randomBytes(70_000);
    const b = randomBytes(50_000);
    await sbx.files.write(p, streamOf(a, b));
    const expected = Buffer.concat([a, b]);
    assert.ok(readFileSync(p).equals(expected));
    const got = await collect(await sbx.files.read(p, { format: "stream" }));
    assert.ok(got.equals(expected));
  });

  it("writes several files in one request", async () => {
    const files = [
      { path: join(dir, "many", "one.txt"), data: "one" },
      { path: join(dir, "many", "nested", "two.txt"), data: "two" },
      { path: join(dir, "many", "three.txt"), data: new Blob(["three"]) },
    ];
    const infos = await sbx.files.write(files);
    assert.deepEqual(
      infos.map((i) => i.path),
      files.map((f) => f.path),
    );
    assert.equal(readFileSync(files[1]!.path, "utf8"), "two");
    assert.equal(await sbx.files.read(files[2]!.path), "three");
  });

  it("uses gzip both ways when asked", async () => {
    const p = join(dir, "gzip.txt");
    const text = "gzip me please ".repeat(2000);
    await sbx.files.write(p, text, { gzip: true });
    assert.equal(readFileSync(p, "utf8"), text);
    assert.equal(await sbx.files.read(p, { gzip: true }), text);
    const bytes = await sbx.files.read(p, { format: "bytes", gzip: true });
    assert.equal(Buffer.from(bytes).toString(), text);
  });

  it("stores metadata and replaces it on the next write", async () => {
    const p = join(dir, "meta.txt");
    const info = await sbx.files.write(p, "tagged", { metadata: { author: "sdk", purpose: "test" } });
    assert.deepEqual(info.metadata, { author: "sdk", purpose: "test" });
    assert.deepEqual(readE2bMetadata(p), { author: "sdk", purpose: "test" });
    const again = await sbx.files.write(p, "untagged");
    assert.equal(again.metadata, undefined);
    assert.deepEqual(readE2bMetadata(p), {});
  });

  it("reads empty files as empty values", async () => {
    const p = join(dir, "empty.txt");
    writeFileSync(p, "");
    assert.equal(await sbx.files.read(p), "");
    assert.equal((await sbx.files.read(p, { format: "bytes" })).length, 0);
    assert.equal((await sbx.files.read(p, { format: "blob" })).size, 0);
  });

  it("writes as another user, relative to that user's home", async () => {
    const name = `envd-files-sdk-${process.pid}.txt`;
    try {
      const info = await sbx.files.write(name, "mine", { user: "user" });
      assert.equal(info.path, join("/home/user", name));
      assert.equal(statSync(info.path).uid, 1001);
      assert.equal(await sbx.files.read(name, { user: "user" }), "mine");
    } finally {
      rmSync(join("/home/user", name), { force: true });
    }
  });

  it("maps a missing file to FileNotFoundError", async () => {
    await assert.rejects(sbx.files.read(join(dir, "does-not-exist")), (err: unknown) => err instanceof e2b.FileNotFoundError);
  });

  it("serves uploadUrl/downloadUrl signed URLs while a token is set", async () => {
    const secure = await e2b.Sandbox.connect("debug_sandbox_id");
    // Debug mode never learns the token from the API; give it the one the daemon was started with.
    (secure as unknown as { envdAccessToken: string }).envdAccessToken = TOKEN;
    const p = join(dir, "signed.txt");
    // The SDK builds URLs on E2B_SANDBOX_URL; point them at the daemon that has the token.
    const onSecured = (u: string) => {
      const url = new URL(u);
      url.host = new URL(secured.url).host;
      return url.toString();
    };

    const up = onSecured(await secure.uploadUrl(p));
    assert.match(up, /signature=v1_/);
    const form = new FormData();
    form.append("file", new Blob(["uploaded through a signed url"]), "ignored-name.txt");
    let res = await fetch(up, { method: "POST", body: form });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(readFileSync(p, "utf8"), "uploaded through a signed url");

    const down = onSecured(await secure.downloadUrl(p, { useSignatureExpiration: 60 }));
    assert.match(down, /signature_expiration=\d+/);
    res = await fetch(down);
    assert.equal(await res.text(), "uploaded through a signed url");

    // The same URL for another user does not verify.
    const forged = new URL(down);
    forged.searchParams.set("username", "user");
    res = await fetch(forged);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { message: string }).message, "invalid signature");
  });
});
