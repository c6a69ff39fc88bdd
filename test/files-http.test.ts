import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { gunzipSync, gzipSync } from "node:zlib";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { connect as connectH2 } from "node:http2";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest, leftoverTemps, multipart } from "./helpers/files-http.js";
import { readE2bMetadata, setXattr, getXattr } from "../src/filesystem/xattr.js";

const USER_UID = 1001;
const MTIME = new Date("2024-01-02T03:04:05Z");
const MTIME_HTTP = "Tue, 02 Jan 2024 03:04:05 GMT";

function q(path: string, extra = ""): string {
  return `/files?path=${encodeURIComponent(path)}${extra}`;
}

function json(text: string): { code: number; message: string } {
  return JSON.parse(text);
}

describe("GET /files", () => {
  let d: Daemon;
  let dir: string;
  const get = (path: string, headers: Record<string, string> = {}, extra = "") => httpRequest(d.url + q(path, extra), { headers });
  const file = (name: string, content: string | Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    utimesSync(p, MTIME, MTIME);
    return p;
  };

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync(join(tmpdir(), "envd-files-get-"));
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("streams the exact bytes with http.ServeContent's headers", async () => {
    const p = file("hello.txt", "hello world\n");
    const res = await get(p);
    assert.equal(res.status, 200);
    assert.equal(res.text, "hello world\n");
    assert.equal(res.headers["content-length"], "12");
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.headers["last-modified"], MTIME_HTTP);
    assert.equal(res.headers["accept-ranges"], "bytes");
    assert.equal(res.headers["vary"], "Accept-Encoding");
    assert.equal(res.headers["content-disposition"], "inline; filename=hello.txt");
  });

  it("answers an empty file with Content-Length: 0", async () => {
    const res = await get(file("empty.txt", ""));
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-length"], "0");
    assert.equal(res.body.length, 0);
  });

  it("follows symlinks, naming the link in Content-Disposition", async () => {
    const target = file("target.txt", "through the link");
    const link = join(dir, "link.txt");
    symlinkSync(target, link);
    const res = await get(link);
    assert.equal(res.status, 200);
    assert.equal(res.text, "through the link");
    assert.equal(res.headers["content-disposition"], "inline; filename=link.txt");
  });

  it("gives envd's errors: 404, directory 400, unknown user 401, bad expansion 400", async () => {
    const missing = join(dir, "nope.txt");
    let res = await get(missing);
    assert.equal(res.status, 404);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.deepEqual(json(res.text), { code: 404, message: `path '${missing}' does not exist` });
    res = await get(dir);
    assert.deepEqual(json(res.text), { code: 400, message: `path '${dir}' is a directory` });
    res = await get(join(dir, "hello.txt"), {}, "&username=no-such-user");
    assert.deepEqual(json(res.text), { code: 401, message: "error looking up user 'no-such-user': user: unknown user no-such-user" });
    res = await get("~other/x");
    assert.equal(res.status, 400);
    assert.match(json(res.text).message, /^error expanding and resolving path '~other\/x': /);
  });

  it("resolves a relative path against the requesting user's home", async () => {
    const name = `envd-files-test-${process.pid}.txt`;
    writeFileSync(join("/home/user", name), "in the home");
    try {
      const res = await get(name, {}, "&username=user");
      assert.equal(res.status, 200);
      assert.equal(res.text, "in the home");
    } finally {
      rmSync(join("/home/user", name), { force: true });
    }
  });

  it("formats Content-Disposition as Go's mime.FormatMediaType", async () => {
    const cases: Array<[string, string]> = [
      ["my document.pdf", 'inline; filename="my document.pdf"'],
      ['file"name.txt', 'inline; filename="file\\"name.txt"'],
      ["file\\name.txt", 'inline; filename="file\\\\name.txt"'],
      ["\u6587\u6863.pdf", "inline; filename*=utf-8''%E6%96%87%E6%A1%A3.pdf"],
      ["caf\u00e9 menu.txt", "inline; filename*=utf-8''caf%C3%A9%20menu.txt"],
      [".env", "inline; filename=.env"],
      ["archive.tar.gz", "inline; filename=archive.tar.gz"],
    ];
    for (const [name, expected] of cases) {
      const res = await get(file(name, "x"));
      assert.equal(res.status, 200, name);
      assert.equal(res.headers["content-disposition"], expected, name);
    }
  });

  it("takes Content-Type from the extension, else sniffs the first bytes", async () => {
    const png = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), randomBytes(64)]);
    assert.equal((await get(file("picture", png))).headers["content-type"], "image/png");
    assert.equal((await get(file("notes", "just words\n"))).headers["content-type"], "text/plain; charset=utf-8");
    assert.equal((await get(file("blob", Buffer.from([0, 1, 2, 3, 0xff])))).headers["content-type"], "application/octet-stream");
    assert.equal((await get(file("page", "<!DOCTYPE html><p>hi</p>"))).headers["content-type"], "text/html; charset=utf-8");
    assert.equal((await get(file("data.json", "{}"))).headers["content-type"], "application/json");
  });

  it("negotiates gzip with E2B's Accept-Encoding rules", async () => {
    const content = "compress me ".repeat(500);
    const p = file("big.txt", content);
    let res = await get(p, { "accept-encoding": "gzip" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.headers["content-length"], undefined);
    assert.equal(res.headers["last-modified"], undefined);
    assert.equal(res.headers["vary"], "Accept-Encoding");
    assert.equal(gunzipSync(res.body).toString(), content);

    res = await get(p, { "accept-encoding": "deflate, gzip" });
    assert.equal(res.headers["content-encoding"], "gzip");
    res = await get(p, { "accept-encoding": "gzip;q=0.5, identity" });
    assert.equal(res.headers["content-encoding"], undefined);
    assert.equal(res.text, content);
    res = await get(p, { "accept-encoding": "br" });
    assert.equal(res.headers["content-encoding"], undefined);
    assert.equal(res.headers["content-length"], String(content.length));
    res = await get(p, { "accept-encoding": "*;q=0, identity" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-encoding"], undefined);
    res = await get(p, { "accept-encoding": "*" });
    assert.equal(res.headers["content-encoding"], undefined);
    res = await get(p, { "accept-encoding": "*, identity;q=0" });
    assert.equal(res.headers["content-encoding"], "gzip");

    for (const refused of ["identity;q=0", "*;q=0", "br, identity;q=0"]) {
      res = await get(p, { "accept-encoding": refused });
      assert.equal(res.status, 406, refused);
      assert.deepEqual(json(res.text), { code: 406, message: "error parsing Accept-Encoding: no acceptable encoding found, supported: [gzip]" });
    }

    const unknownExt = file("data.unknownext", "x");
    res = await get(unknownExt, { "accept-encoding": "gzip" });
    assert.equal(res.headers["content-type"], "application/octet-stream");
  });

  it("gzips a download for callers who ask, not for a transport's blanket `gzip, deflate`", async () => {
    const content = "2026-12-07T00:00:00.027Z INFO worker-0 cache hit path=/api/v1/items status=200\n".repeat(2000);
    const p = file("app.log", content);
    const expect = async (acceptEncoding: string, coding: "gzip" | undefined) => {
      const res = await get(p, { "accept-encoding": acceptEncoding });
      assert.equal(res.status, 200, acceptEncoding);
      assert.equal(res.headers["content-encoding"], coding, acceptEncoding);
      assert.equal(res.headers["vary"], "Accept-Encoding");
      if (coding) {
        assert.equal(res.headers["content-length"], undefined, acceptEncoding);
        assert.ok(res.body.length < content.length / 10, `${acceptEncoding}: ${res.body.length} bytes`);
        assert.equal(gunzipSync(res.body).toString(), content, acceptEncoding);
      } else {
        assert.equal(res.headers["content-length"], String(content.length), acceptEncoding);
        assert.equal(res.text, content, acceptEncoding);
      }
    };
    // Node's fetch (the e2b SDK) and Python's requests/httpx send this on every request.
    await expect("gzip, deflate", undefined);
    await expect("GZIP,Deflate", undefined);
    // The SDK's read(path, { gzip: true }), curl --compressed, browsers, explicit choices.
    await expect("gzip", "gzip");
    await expect("deflate, gzip", "gzip");
    await expect("deflate, gzip, br, zstd", "gzip");
    await expect("gzip, deflate, br", "gzip");
    await expect("gzip, deflate, br, zstd", "gzip");
    await expect("gzip;q=1.0, deflate", "gzip");
    await expect("gzip, deflate, identity;q=0", "gzip");
    await expect("", undefined);
    // Data that does not compress goes out as it is even to those who ask.
    const noise = randomBytes(64 * 1024);
    const res = await get(file("noise.bin", noise), { "accept-encoding": "gzip" });
    assert.equal(res.headers["content-encoding"], undefined);
    assert.ok(res.body.equals(noise));
  });

  it("curl --compressed gets the download gzipped", async () => {
    const content = "compress me please\n".repeat(4000);
    const p = file("curl.txt", content);
    const out = execFileSync("curl", ["-sS", "--compressed", "-D", "-", "-o", join(dir, "curl.out"), d.url + q(p)], { encoding: "utf8" });
    assert.match(out, /^content-encoding: gzip\r$/im);
    assert.equal(readFileSync(join(dir, "curl.out"), "utf8"), content);
  });

  it("serves a single Range as 206", async () => {
    const p = file("range.txt", "0123456789ab");
    let res = await get(p, { range: "bytes=2-5" });
    assert.equal(res.status, 206);
    assert.equal(res.text, "2345");
    assert.equal(res.headers["content-range"], "bytes 2-5/12");
    assert.equal(res.headers["content-length"], "4");
    res = await get(p, { range: "bytes=-3" });
    assert.equal(res.text, "9ab");
    assert.equal(res.headers["content-range"], "bytes 9-11/12");
    res = await get(p, { range: "bytes=10-100" });
    assert.equal(res.text, "ab");
    // gzip is set aside for ranges, as in envd.
    res = await get(p, { range: "bytes=0-0", "accept-encoding": "gzip" });
    assert.equal(res.status, 206);
    assert.equal(res.headers["content-encoding"], undefined);
    assert.equal(res.text, "0");
  });

  it("serves several ranges as multipart/byteranges, byte for byte as Go writes it", async () => {
    const p = file("multi.txt", "0123456789ab");
    const res = await get(p, { range: "bytes=0-1, 4-5,-2" });
    assert.equal(res.status, 206);
    const m = /^multipart\/byteranges; boundary=([0-9a-f]{60})$/.exec(String(res.headers["content-type"]));
    assert.ok(m, String(res.headers["content-type"]));
    const b = m[1];
    const part = (range: string, data: string, first: boolean) =>
      `${first ? "" : "\r\n"}--${b}\r\nContent-Range: bytes ${range}/12\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${data}`;
    const expected = part("0-1", "01", true) + part("4-5", "45", false) + part("10-11", "ab", false) + `\r\n--${b}--\r\n`;
    assert.equal(res.text, expected);
    assert.equal(res.headers["content-length"], String(Buffer.byteLength(expected)));
  });

  it("answers unsatisfiable and malformed ranges with 416", async () => {
    const p = file("short.txt", "0123456789ab");
    let res = await get(p, { range: "bytes=50-60" });
    assert.equal(res.status, 416);
    assert.equal(res.headers["content-range"], "bytes */12");
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.headers["last-modified"], undefined);
    assert.equal(res.text, "invalid range: failed to overlap\n");
    res = await get(p, { range: "bytes=5-2" });
    assert.equal(res.status, 416);
    assert.equal(res.text, "invalid range\n");
    res = await get(p, { range: "lines=1-2" });
    assert.equal(res.status, 416);
    // An empty file ignores the Range header (200), as Go does.
    res = await get(file("empty2.txt", ""), { range: "bytes=0-10" });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-length"], "0");
    // Ranges adding up to more than the file are ignored.
    res = await get(p, { range: "bytes=0-11,0-11" });
    assert.equal(res.status, 200);
    assert.equal(res.text, "0123456789ab");
  });

  it("refuses Range and conditionals when identity is not acceptable", async () => {
    const p = file("strict.txt", "abc");
    const res = await get(p, { range: "bytes=0-1", "accept-encoding": "gzip; q=1,*; q=0" });
    assert.equal(res.status, 406);
    assert.equal(json(res.text).message, "identity encoding not acceptable for Range or conditional request");
  });

  it("answers conditional requests: 304, 412 and If-Range", async () => {
    const p = file("cond.txt", "conditional");
    let res = await get(p, { "if-modified-since": MTIME_HTTP });
    assert.equal(res.status, 304);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers["last-modified"], MTIME_HTTP);
    res = await get(p, { "if-modified-since": "Tue, 02 Jan 2024 03:04:04 GMT" });
    assert.equal(res.status, 200);
    res = await get(p, { "if-modified-since": "Tuesday, 02-Jan-24 03:04:05 GMT" });
    assert.equal(res.status, 304);
    res = await get(p, { "if-modified-since": "not a date" });
    assert.equal(res.status, 200);
    res = await get(p, { "if-none-match": "*" });
    assert.equal(res.status, 304);
    // A tag never matches (envd sends no ETag), and If-None-Match overrides If-Modified-Since.
    res = await get(p, { "if-none-match": '"abc"', "if-modified-since": MTIME_HTTP });
    assert.equal(res.status, 200);
    assert.equal(res.text, "conditional");
    res = await get(p, { "if-match": '"abc"' });
    assert.equal(res.status, 412);
    res = await get(p, { "if-unmodified-since": "Mon, 01 Jan 2024 00:00:00 GMT" });
    assert.equal(res.status, 412);
    res = await get(p, { range: "bytes=0-3", "if-range": MTIME_HTTP });
    assert.equal(res.status, 206);
    res = await get(p, { range: "bytes=0-3", "if-range": "Mon, 01 Jan 2024 00:00:00 GMT" });
    assert.equal(res.status, 200);
    assert.equal(res.text, "conditional");
  });

  it("answers parameter binding errors in plain text, as the generated wrapper does", async () => {
    const p = file("params.txt", "x");
    let res = await httpRequest(d.url + q(p, "&signature_expiration=abc"));
    assert.equal(res.status, 400);
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.text, 'Invalid format for parameter signature_expiration: error binding string parameter: strconv.ParseInt: parsing "abc": invalid syntax\n');
    res = await httpRequest(d.url + q(p, "&signature_expiration=99999999999999999999"));
    assert.match(res.text, /value out of range\n$/);
    res = await httpRequest(d.url + q(p, "&path=/other"));
    assert.equal(res.status, 400);
    assert.equal(res.text, "Invalid format for parameter path: multiple values for single value parameter 'path'\n");
  });
});

describe("POST /files", () => {
  let d: Daemon;
  let dir: string;
  const post = (query: string, body: Buffer | string | Readable, headers: Record<string, string | number>) =>
    httpRequest(d.url + query, { method: "POST", body, headers });
  const raw = (path: string, body: Buffer | string, headers: Record<string, string | number> = {}, extra = "") =>
    post(q(path, extra), body, { "content-type": "application/octet-stream", ...headers });

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync(join(tmpdir(), "envd-files-post-"));
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sets the file mode from the extension's mode= in the same request, atomically", async () => {
    const p = join(dir, "moded", "secret.txt");
    let res = await raw(p, "top secret", {}, "&username=user&mode=0640");
    assert.equal(res.status, 200);
    assert.equal(statSync(p).mode & 0o7777, 0o640);
    assert.equal(statSync(p).uid, USER_UID);
    // Replacing a file: mode= wins over the old mode (which is kept otherwise).
    chmodSync(p, 0o755);
    res = await raw(p, "v2", {}, "&username=user&mode=600");
    assert.equal(res.status, 200);
    assert.equal(statSync(p).mode & 0o7777, 0o600);
    assert.equal(readFileSync(p, "utf8"), "v2");
    res = await raw(p, "v3", {}, "&username=user");
    assert.equal(statSync(p).mode & 0o7777, 0o600);
    // Every file of a multipart upload.
    const a = join(dir, "moded", "a.sh");
    const b = join(dir, "moded", "b.sh");
    const form = multipart([
      { name: "file", filename: a, content: "echo a" },
      { name: "file", filename: b, content: "echo b" },
    ]);
    res = await post(q("", "&username=user&mode=1755").replace("path=&", ""), form.body, { "content-type": form.contentType });
    assert.equal(res.status, 200, res.text);
    assert.equal(statSync(a).mode & 0o7777, 0o1755);
    assert.equal(statSync(b).mode & 0o7777, 0o1755);
    // Bad modes: a plain-text 400, nothing written.
    const never = join(dir, "moded", "never.txt");
    for (const [mode, why] of [
      ["999", `"999" is not an octal file mode such as 0640`],
      ["0x1ff", `"0x1ff" is not an octal file mode such as 0640`],
      ["rw-r-----", `"rw-r-----" is not an octal file mode such as 0640`],
      ["4755", `"4755" sets set-user-ID or set-group-ID, which uploads may not`],
      ["02755", `"02755" sets set-user-ID or set-group-ID, which uploads may not`],
    ]) {
      res = await raw(never, "x", {}, `&username=user&mode=${encodeURIComponent(mode!)}`);
      assert.equal(res.status, 400, mode);
      assert.equal(res.text, `Invalid format for parameter mode: ${why}\n`);
    }
    assert.equal(existsSync(never), false);
    // A device is written in place, where no mode can be set: refused, not ignored.
    res = await raw("/dev/null", "x", {}, "&username=root&mode=0600");
    assert.equal(res.status, 400);
    assert.match(res.text, /mode applies to regular files only/);
    assert.equal(statSync("/dev/null").mode & 0o777, 0o666);
  });

  it("writes a raw body and answers envd's JSON array without a trailing newline", async () => {
    const p = join(dir, "raw", "deep", "new.bin");
    const data = randomBytes(100_000);
    const res = await raw(p, data, {}, "&username=user");
    assert.equal(res.status, 200);
    assert.equal(res.text, `[{"name":"new.bin","path":"${p}","type":"file"}]`);
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.ok(readFileSync(p).equals(data));
    const st = statSync(p);
    assert.equal(st.uid, USER_UID);
    assert.equal(st.mode & 0o777, 0o644);
    for (const created of [join(dir, "raw"), join(dir, "raw", "deep")]) {
      const ds = statSync(created);
      assert.equal(ds.uid, USER_UID, created);
      assert.equal(ds.mode & 0o777, 0o755, created);
    }
    assert.notEqual(statSync(dir).uid, USER_UID, "existing parents are left alone");
    assert.deepEqual(leftoverTemps(join(dir, "raw", "deep")), []);
  });

  it("overwrites atomically, keeping the mode and chowning to the user", async () => {
    const p = join(dir, "keep-mode.txt");
    writeFileSync(p, "old old old");
    chmodSync(p, 0o600);
    const before = statSync(p);
    const res = await raw(p, "new", {}, "&username=user");
    assert.equal(res.status, 200);
    assert.equal(readFileSync(p, "utf8"), "new");
    const st = statSync(p);
    assert.equal(st.mode & 0o7777, 0o600);
    assert.equal(st.uid, USER_UID);
    assert.notEqual(st.ino, before.ino, "replaced by rename, not truncated in place");
    assert.deepEqual(leftoverTemps(dir), []);
  });

  it("writes through a symlink to its target", async () => {
    const target = join(dir, "real.txt");
    writeFileSync(target, "before");
    const link = join(dir, "alias.txt");
    symlinkSync(target, link);
    const res = await raw(link, "after");
    assert.equal(res.status, 200);
    assert.equal(readFileSync(target, "utf8"), "after");
    assert.ok(statSync(link).isFile());
    assert.deepEqual(JSON.parse(res.text), [{ name: "alias.txt", path: link, type: "file" }]);
  });

  it("gives envd's 400s for a missing path, a bad content type and bad encodings", async () => {
    let res = await post("/files", "x", { "content-type": "application/octet-stream" });
    assert.deepEqual(json(res.text), { code: 400, message: "path query parameter is required for raw body upload" });
    res = await post(q(join(dir, "x")), "x", { "content-type": "application/json" });
    assert.deepEqual(json(res.text), { code: 400, message: "unsupported content type: application/json, expected multipart/form-data or application/octet-stream" });
    res = await raw(join(dir, "x"), "x", { "content-encoding": "br" });
    assert.deepEqual(json(res.text), { code: 400, message: "error decompressing request body: unsupported Content-Encoding: br, supported: [gzip]" });
    res = await raw(join(dir, "x"), "definitely not gzip", { "content-encoding": "gzip" });
    assert.deepEqual(json(res.text), { code: 400, message: "error decompressing request body: failed to create gzip reader: gzip: invalid header" });
    res = await raw(join(dir, "x"), "", { "content-encoding": "gzip" });
    assert.deepEqual(json(res.text), { code: 400, message: "error decompressing request body: failed to create gzip reader: EOF" });
    res = await raw(join(dir, "x"), "x", {}, "&username=ghost");
    assert.deepEqual(json(res.text), { code: 401, message: "error looking up user 'ghost': user: unknown user ghost" });
    assert.equal(existsSync(join(dir, "x")), false);
  });

  it("refuses directories as targets and files as parents", async () => {
    const sub = join(dir, "a-dir");
    mkdirSync(sub);
    let res = await raw(sub, "x");
    assert.deepEqual(json(res.text), { code: 400, message: `path is a directory: ${sub}` });
    const f = join(dir, "a-file");
    writeFileSync(f, "x");
    res = await raw(join(f, "child.txt"), "x");
    assert.deepEqual(json(res.text), { code: 500, message: `error ensuring directories: path is a file: ${f}` });
  });

  it("decompresses gzip request bodies, raw and multipart", async () => {
    const p = join(dir, "gz.txt");
    const content = "zipped ".repeat(1000);
    let res = await raw(p, gzipSync(content), { "content-encoding": "gzip" });
    assert.equal(res.status, 200);
    assert.equal(readFileSync(p, "utf8"), content);
    const p2 = join(dir, "gz-multi.txt");
    const form = multipart([{ name: "file", filename: p2, content }]);
    res = await post(q(p2), gzipSync(form.body), { "content-type": form.contentType, "content-encoding": "gzip" });
    assert.equal(res.status, 200);
    assert.equal(readFileSync(p2, "utf8"), content);
  });

  it("writes every multipart file to its filename taken as a full path", async () => {
    const a = join(dir, "m", "a.txt");
    const b = join(dir, "m", "deep er", "b \u00fc.txt");
    const rel = `envd-files-rel-${process.pid}.txt`;
    const form = multipart([
      { name: "file", filename: a, content: "A" },
      { name: "other", filename: join(dir, "m", "ignored.txt"), content: "ignored" },
      { name: "file", filename: b, content: "B" },
      { name: "file", filename: rel, content: "R" },
    ]);
    try {
      const res = await post("/files?username=user", form.body, { "content-type": form.contentType });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(JSON.parse(res.text), [
        { name: "a.txt", path: a, type: "file" },
        { name: "b \u00fc.txt", path: b, type: "file" },
        { name: rel, path: join("/home/user", rel), type: "file" },
      ]);
      assert.equal(readFileSync(a, "utf8"), "A");
      assert.equal(readFileSync(b, "utf8"), "B");
      assert.equal(readFileSync(join("/home/user", rel), "utf8"), "R");
      assert.equal(existsSync(join(dir, "m", "ignored.txt")), false);
    } finally {
      rmSync(join("/home/user", rel), { force: true });
    }
  });

  it("answers [] for a multipart body without a file part", async () => {
    const form = multipart([{ name: "note", content: "hello", contentType: "text/plain" }]);
    const res = await post("/files", form.body, { "content-type": form.contentType });
    assert.equal(res.status, 200);
    assert.equal(res.text, "[]");
  });

  it("refuses a second part for the same ?path= and keeps the first", async () => {
    const p = join(dir, "twice.txt");
    const form = multipart([
      { name: "file", filename: "one.txt", content: "first" },
      { name: "file", filename: "two.txt", content: "second" },
    ]);
    const res = await post(q(p), form.body, { "content-type": form.contentType });
    assert.deepEqual(json(res.text), {
      code: 400,
      message: `you cannot upload multiple files to the same path '${p}' in one upload request, only the first specified file was uploaded`,
    });
    assert.equal(readFileSync(p, "utf8"), "first");
    assert.deepEqual(leftoverTemps(dir), []);
  });

  it("names the other uploaded files only when there are at least two (envd's quirk)", async () => {
    const [x, y, z] = [join(dir, "dx.txt"), join(dir, "dy.txt"), join(dir, "dz.txt")];
    const prefix = `you cannot upload multiple files to the same path '${x}' in one upload request, only the first specified file was uploaded`;
    let form = multipart([
      { name: "file", filename: x, content: "x" },
      { name: "file", filename: y, content: "y" },
      { name: "file", filename: x, content: "x again" },
    ]);
    let res = await post("/files", form.body, { "content-type": form.contentType });
    assert.deepEqual(json(res.text), { code: 400, message: prefix });
    form = multipart([
      { name: "file", filename: x, content: "x" },
      { name: "file", filename: y, content: "y" },
      { name: "file", filename: z, content: "z" },
      { name: "file", filename: x, content: "x again" },
    ]);
    res = await post("/files", form.body, { "content-type": form.contentType });
    assert.deepEqual(json(res.text), { code: 400, message: `${prefix}, also the following files were uploaded: ${y}, ${z}` });
    assert.equal(readFileSync(x, "utf8"), "x");
    assert.equal(readFileSync(z, "utf8"), "z");
  });

  it("refuses a file part without a filename when no path is given", async () => {
    const form = multipart([{ name: "file", content: "anonymous" }]);
    const res = await post("/files", form.body, { "content-type": form.contentType });
    assert.deepEqual(json(res.text), { code: 400, message: "error getting multipart custom part file name: filename not found in Content-Disposition header" });
  });

  it("answers a multipart body without a boundary with envd's 500", async () => {
    const res = await post("/files", "x", { "content-type": "multipart/form-data" });
    assert.deepEqual(json(res.text), { code: 500, message: "error parsing multipart form: no multipart boundary param in Content-Type" });
  });

  it("stores X-Metadata-* headers as user.e2b.* xattrs with replace semantics", async () => {
    const p = join(dir, "meta.txt");
    writeFileSync(p, "x");
    setXattr(p, "user.other", Buffer.from("kept"));
    let res = await raw(p, "with metadata", { "X-Metadata-Purpose": "test", "x-metadata-Author": "me" });
    assert.equal(res.status, 200);
    assert.equal(res.text, `[{"metadata":{"author":"me","purpose":"test"},"name":"meta.txt","path":"${p}","type":"file"}]`);
    assert.deepEqual(readE2bMetadata(p), { author: "me", purpose: "test" });
    assert.equal(getXattr(p, "user.other").toString(), "kept", "other attributes survive the replacement");

    res = await raw(p, "only one", { "X-Metadata-Author": "you" });
    assert.deepEqual(readE2bMetadata(p), { author: "you" });
    res = await raw(p, "none");
    assert.equal(res.text, `[{"name":"meta.txt","path":"${p}","type":"file"}]`);
    assert.deepEqual(readE2bMetadata(p), {});
  });

  it("works over h2c (HTTP/2 with prior knowledge) too", async () => {
    const p = join(dir, "h2.txt");
    const session = connectH2(d.url);
    const call = (headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const stream = session.request(headers);
        const chunks: Buffer[] = [];
        let status = 0;
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => resolve({ status, text: Buffer.concat(chunks).toString() }));
        stream.on("error", reject);
        stream.end(body);
      });
    try {
      let res = await call({ ":method": "POST", ":path": q(p), "content-type": "application/octet-stream" }, "over h2c");
      assert.equal(res.status, 200);
      assert.equal(res.text, `[{"name":"h2.txt","path":"${p}","type":"file"}]`);
      res = await call({ ":method": "GET", ":path": q(p), range: "bytes=5-7" });
      assert.equal(res.status, 206);
      assert.equal(res.text, "h2c");
    } finally {
      session.close();
    }
  });

  it("validates metadata as envd does", async () => {
    const p = join(dir, "bad-meta.txt");
    // Node's client sends the value as UTF-8; envd reports the first offending byte.
    let res = await raw(p, "x", { "X-Metadata-Author": "caf\u00e9" });
    assert.deepEqual(json(res.text), { code: 400, message: 'invalid metadata: metadata value for key "author" contains non-printable-ASCII byte 0xc3 at offset 3' });
    const longKey = "k".repeat(247);
    res = await raw(p, "x", { [`X-Metadata-${longKey}`]: "v" });
    assert.deepEqual(json(res.text), { code: 400, message: `invalid metadata: metadata key "${longKey}" exceeds 246 bytes` });
    const big: Record<string, string> = {};
    for (let i = 0; i < 5; i++) big[`X-Metadata-k${i}`] = "v".repeat(900);
    res = await raw(p, "x", big);
    assert.deepEqual(json(res.text), { code: 400, message: `invalid metadata: total metadata size ${5 * (9 + 2 + 900)} exceeds 4096 bytes` });
    assert.equal(existsSync(p), false);
  });
});

describe("POST /files/compose", () => {
  let d: Daemon;
  let dir: string;
  const compose = (body: unknown) =>
    httpRequest(`${d.url}/files/compose`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

  before(async () => {
    d = await startDaemon();
    dir = mkdtempSync(join(tmpdir(), "envd-files-compose-"));
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("concatenates the sources in order, deletes them and answers the entry", async () => {
    const parts = ["one ", "two ", "three"].map((c, i) => {
      const p = join(dir, `part${i}`);
      writeFileSync(p, c);
      return p;
    });
    const dest = join(dir, "out", "joined.txt");
    const res = await compose({ source_paths: parts, destination: dest, username: "user" });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers["content-type"], "application/json");
    assert.equal(res.text, `{"name":"joined.txt","path":"${dest}","type":"file"}\n`);
    assert.equal(readFileSync(dest, "utf8"), "one two three");
    assert.equal(statSync(dest).uid, USER_UID);
    for (const p of parts) assert.equal(existsSync(p), false);
    assert.deepEqual(leftoverTemps(join(dir, "out")), []);
  });

  it("gives envd's validation errors", async () => {
    const src = join(dir, "src.txt");
    writeFileSync(src, "s");
    let res = await compose({ source_paths: [], destination: join(dir, "d") });
    assert.deepEqual(json(res.text), { code: 400, message: "source_paths must not be empty" });
    res = await compose({ source_paths: [src] });
    assert.deepEqual(json(res.text), { code: 400, message: "destination is required" });
    res = await compose({ source_paths: [join(dir, "gone")], destination: join(dir, "d") });
    assert.deepEqual(json(res.text), { code: 404, message: `source file not found: ${join(dir, "gone")}` });
    res = await compose({ source_paths: [src], destination: src });
    assert.deepEqual(json(res.text), { code: 400, message: `source path "${src}" cannot be the same as destination` });
    res = await compose({ source_paths: [dir], destination: join(dir, "d") });
    assert.deepEqual(json(res.text), { code: 400, message: `source path is not a regular file: ${dir}` });
    res = await compose({ source_paths: [src], destination: join(dir, "d"), username: "ghost" });
    assert.deepEqual(json(res.text), { code: 401, message: "error looking up user 'ghost': user: unknown user ghost" });
    res = await compose("");
    assert.deepEqual(json(res.text), { code: 400, message: "invalid request body: EOF" });
    res = await compose({ source_paths: "nope", destination: "x" });
    assert.equal(json(res.text).message, "invalid request body: json: cannot unmarshal string into Go struct field ComposeRequest.source_paths of type []string");
    assert.ok(existsSync(src));
  });
});

describe("/files with an access token", () => {
  const TOKEN = "0123456789abcdef0123456789abcdef";
  let d: Daemon;
  let dir: string;
  let sign: typeof import("../src/auth/signature.js").fileSignature;

  before(async () => {
    sign = (await import("../src/auth/signature.js")).fileSignature;
    d = await startDaemon({ args: ["--access-token", TOKEN] });
    dir = mkdtempSync(join(tmpdir(), "envd-files-token-"));
    writeFileSync(join(dir, "secret.txt"), "signed content");
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("accepts a correct X-Access-Token and refuses a wrong one", async () => {
    const p = join(dir, "secret.txt");
    let res = await httpRequest(d.url + q(p), { headers: { "x-access-token": TOKEN } });
    assert.equal(res.text, "signed content");
    res = await httpRequest(d.url + q(p), { headers: { "x-access-token": "wrong" } });
    assert.deepEqual(json(res.text), { code: 401, message: "access token present in header but does not match" });
  });

  it("accepts valid signatures and refuses missing, forged and expired ones", async () => {
    const p = join(dir, "secret.txt");
    let res = await httpRequest(d.url + q(p));
    assert.deepEqual(json(res.text), { code: 401, message: "missing signature query parameter" });

    res = await httpRequest(d.url + q(p, `&signature=${encodeURIComponent(sign(p, "read", "", TOKEN))}`));
    assert.equal(res.status, 200);
    assert.equal(res.text, "signed content");

    const exp = Math.floor(Date.now() / 1000) + 60;
    res = await httpRequest(d.url + q(p, `&username=root&signature=${encodeURIComponent(sign(p, "read", "root", TOKEN, exp))}&signature_expiration=${exp}`));
    assert.equal(res.status, 200);

    res = await httpRequest(d.url + q(p, `&signature=${encodeURIComponent(sign(p, "read", "", "not-the-token"))}`));
    assert.deepEqual(json(res.text), { code: 401, message: "invalid signature" });
    res = await httpRequest(d.url + q(p, `&signature=${encodeURIComponent(sign(p, "write", "", TOKEN))}`));
    assert.deepEqual(json(res.text), { code: 401, message: "invalid signature" }, "a write signature does not read");

    const past = Math.floor(Date.now() / 1000) - 10;
    res = await httpRequest(d.url + q(p, `&signature=${encodeURIComponent(sign(p, "read", "", TOKEN, past))}&signature_expiration=${past}`));
    assert.deepEqual(json(res.text), { code: 401, message: "signature is already expired" });

    const up = join(dir, "uploaded.txt");
    res = await httpRequest(d.url + q(up, `&signature=${encodeURIComponent(sign(up, "write", "", TOKEN))}`), {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: "via signed url",
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(readFileSync(up, "utf8"), "via signed url");
  });

  it("keeps /files/compose behind the token (no signatures)", async () => {
    const src = join(dir, "c1");
    writeFileSync(src, "c");
    const body = JSON.stringify({ source_paths: [src], destination: join(dir, "c-out") });
    let res = await httpRequest(`${d.url}/files/compose`, { method: "POST", body, headers: { "content-type": "application/json" } });
    assert.deepEqual(json(res.text), { code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" });
    res = await httpRequest(`${d.url}/files/compose`, { method: "POST", body, headers: { "content-type": "application/json", "x-access-token": TOKEN } });
    assert.equal(res.status, 200);
  });
});

describe("/files size limit (--max-file-bytes)", () => {
  let d: Daemon;
  let dir: string;
  const LIMIT = 1000;

  before(async () => {
    d = await startDaemon({ args: ["--max-file-bytes", String(LIMIT)] });
    dir = mkdtempSync(join(tmpdir(), "envd-files-limit-"));
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("refuses larger uploads with 413 before anything is written", async () => {
    const p = join(dir, "limited.txt");
    writeFileSync(p, "old");
    const tooBig = Buffer.alloc(LIMIT + 1, 0x61);
    const expected = { code: 413, message: `file is larger than the limit of ${LIMIT} bytes` };
    let res = await httpRequest(d.url + q(p), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: tooBig });
    assert.deepEqual(json(res.text), expected);
    res = await httpRequest(d.url + q(join(dir, "new-dir", "x")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: tooBig });
    assert.equal(res.status, 413);
    assert.equal(existsSync(join(dir, "new-dir")), false, "no parent created for a refused upload");
    // Without Content-Length (chunked) and through gzip the bytes are counted as they arrive.
    res = await httpRequest(d.url + q(p), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Readable.from([tooBig.subarray(0, 600), tooBig.subarray(600)]) });
    assert.deepEqual(json(res.text), expected);
    res = await httpRequest(d.url + q(p), { method: "POST", headers: { "content-type": "application/octet-stream", "content-encoding": "gzip" }, body: gzipSync(Buffer.alloc(5000)) });
    assert.deepEqual(json(res.text), expected);
    const form = multipart([{ name: "file", filename: p, content: tooBig }]);
    res = await httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": form.contentType }, body: form.body });
    assert.deepEqual(json(res.text), expected);
    assert.equal(readFileSync(p, "utf8"), "old");
    assert.deepEqual(leftoverTemps(dir), []);
    res = await httpRequest(d.url + q(p), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: Buffer.alloc(LIMIT, 0x62) });
    assert.equal(res.status, 200);
  });

  it("refuses whole-file downloads larger than the limit, but serves small ranges", async () => {
    const big = join(dir, "big.bin");
    writeFileSync(big, Buffer.alloc(LIMIT * 2));
    let res = await httpRequest(d.url + q(big));
    assert.deepEqual(json(res.text), { code: 413, message: `file size ${LIMIT * 2} exceeds the limit of ${LIMIT} bytes` });
    res = await httpRequest(d.url + q(big), { headers: { "accept-encoding": "gzip" } });
    assert.equal(res.status, 413);
    res = await httpRequest(d.url + q(big), { headers: { range: "bytes=0-99" } });
    assert.equal(res.status, 206);
    assert.equal(res.body.length, 100);
  });
});

describe("/files root jail (--fs-root)", () => {
  let d: Daemon;
  let dir: string;
  let jail: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "envd-files-jail-"));
    jail = join(dir, "jail");
    mkdirSync(jail);
    writeFileSync(join(jail, "inside.txt"), "inside");
    writeFileSync(join(dir, "outside.txt"), "outside");
    symlinkSync(join(dir, "outside.txt"), join(jail, "escape.txt"));
    d = await startDaemon({ args: ["--fs-root", jail] });
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves inside the root and refuses escapes with 403", async () => {
    let res = await httpRequest(d.url + q(join(jail, "inside.txt")));
    assert.equal(res.text, "inside");
    for (const p of [join(dir, "outside.txt"), join(jail, "..", "outside.txt"), join(jail, "escape.txt"), "/etc/passwd"]) {
      res = await httpRequest(d.url + q(p));
      assert.equal(res.status, 403, p);
      assert.equal(json(res.text).code, 403);
    }
  });

  it("refuses uploads and compose outside the root, writing nothing", async () => {
    let res = await httpRequest(d.url + q(join(dir, "new", "x.txt")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.equal(res.status, 403);
    assert.equal(existsSync(join(dir, "new")), false);
    res = await httpRequest(d.url + q(join(jail, "escape.txt")), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "x" });
    assert.equal(res.status, 403);
    assert.equal(readFileSync(join(dir, "outside.txt"), "utf8"), "outside");
    const form = multipart([{ name: "file", filename: join(dir, "multi-out.txt"), content: "x" }]);
    res = await httpRequest(`${d.url}/files`, { method: "POST", headers: { "content-type": form.contentType }, body: form.body });
    assert.equal(res.status, 403);
    res = await httpRequest(`${d.url}/files/compose`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ source_paths: [join(jail, "inside.txt")], destination: join(dir, "composed") }),
    });
    assert.equal(res.status, 403);
    assert.equal(existsSync(join(dir, "composed")), false);
    assert.ok(existsSync(join(jail, "inside.txt")));
  });
});

describe("/files permission enforcement (--enforce-file-permissions)", () => {
  let d: Daemon;
  let dir: string;

  before(async () => {
    d = await startDaemon({ args: ["--enforce-file-permissions"] });
    dir = mkdtempSync(join(tmpdir(), "envd-files-perm-"));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "root-only.txt"), "secret");
    chmodSync(join(dir, "root-only.txt"), 0o600);
    writeFileSync(join(dir, "readable.txt"), "public");
    chmodSync(join(dir, "readable.txt"), 0o644);
    mkdirSync(join(dir, "user-dir"));
    chownSync(join(dir, "user-dir"), USER_UID, USER_UID);
  });
  after(async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets a user read only what the mode bits allow", async () => {
    let res = await httpRequest(d.url + q(join(dir, "root-only.txt"), "&username=user"));
    assert.equal(res.status, 403);
    assert.equal(json(res.text).message, `permission denied: user 'user' cannot read '${join(dir, "root-only.txt")}'`);
    res = await httpRequest(d.url + q(join(dir, "root-only.txt")));
    assert.equal(res.text, "secret", "root may read anything");
    res = await httpRequest(d.url + q(join(dir, "readable.txt"), "&username=user"));
    assert.equal(res.text, "public");
  });

  it("lets a user write only where the mode bits allow", async () => {
    const post = (p: string) =>
      httpRequest(d.url + q(p, "&username=user"), { method: "POST", headers: { "content-type": "application/octet-stream" }, body: "by user" });
    let res = await post(join(dir, "new-in-root-dir.txt"));
    assert.equal(res.status, 403);
    assert.equal(existsSync(join(dir, "new-in-root-dir.txt")), false);
    res = await post(join(dir, "readable.txt"));
    assert.equal(res.status, 403);
    assert.equal(readFileSync(join(dir, "readable.txt"), "utf8"), "public");
    res = await post(join(dir, "sub", "deeper.txt"));
    assert.equal(res.status, 403);
    assert.equal(existsSync(join(dir, "sub")), false);
    res = await post(join(dir, "user-dir", "mine.txt"));
    assert.equal(res.status, 200);
    assert.equal(readFileSync(join(dir, "user-dir", "mine.txt"), "utf8"), "by user");
  });
});
