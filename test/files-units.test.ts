import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseRange } from "../src/files-http/byte-ranges.js";
import { inlineDisposition } from "../src/files-http/content-disposition.js";
import { goExt, loadMimeTable, typeByExtension } from "../src/files-http/content-type.js";
import { identityAcceptable, negotiateCoding, requestCoding } from "../src/files-http/encoding.js";
import { parseHttpDate } from "../src/files-http/http-date.js";
import { detectContentType } from "../src/files-http/sniff.js";

describe("/files helpers, against Go's behaviour", () => {
  it("negotiates Accept-Encoding like envd's encoding.go", () => {
    const cases: Array<[string, string | undefined]> = [
      ["", "identity"],
      ["gzip", "gzip"],
      ["GZIP", "gzip"],
      ["gzip, deflate", "gzip"],
      ["deflate, gzip", "gzip"],
      ["identity, gzip", "identity"],
      ["gzip;q=0.5, identity", "identity"],
      ["gzip;q=0", "identity"],
      ["gzip; q=0", "identity"],
      ["gzip;q= 0", "gzip"], // Go cannot parse " 0": the weight stays 1
      ["identity;q=0", undefined],
      ["identity;q=0, gzip;q=0", undefined],
      ["*;q=0", undefined],
      ["*;q=0, gzip", "gzip"],
      ["*", "identity"],
      ["*, identity;q=0", "gzip"],
      ["br", "identity"],
    ];
    for (const [header, want] of cases) assert.equal(negotiateCoding(header), want, header);
    assert.equal(identityAcceptable("gzip;q=1, *;q=0"), false);
    assert.equal(identityAcceptable("*;q=0, identity;q=0.1"), true);
    assert.deepEqual(requestCoding("GZip"), { coding: "gzip" });
    assert.deepEqual(requestCoding("x-gzip"), { error: "unsupported Content-Encoding: x-gzip, supported: [gzip]" });
  });

  it("parses Range headers like http.ServeContent", () => {
    assert.deepEqual(parseRange("bytes=0-0", 10), [{ start: 0, length: 1 }]);
    assert.deepEqual(parseRange("bytes= 2 - 3 ,", 10), [{ start: 2, length: 2 }]);
    assert.deepEqual(parseRange("bytes=-20", 10), [{ start: 0, length: 10 }]);
    assert.deepEqual(parseRange("bytes=8-", 10), [{ start: 8, length: 2 }]);
    assert.deepEqual(parseRange("bytes=20-30,1-1", 10), [{ start: 1, length: 1 }]);
    assert.equal(parseRange("bytes=20-30", 10), "invalid range: failed to overlap");
    assert.equal(parseRange("bytes=3-1", 10), "invalid range");
    assert.equal(parseRange("bytes=--1", 10), "invalid range");
    assert.equal(parseRange("bytes=a-b", 10), "invalid range");
    assert.equal(parseRange("items=0-1", 10), "invalid range");
    assert.deepEqual(parseRange("", 10), []);
  });

  it("formats Content-Disposition like mime.FormatMediaType", () => {
    assert.equal(inlineDisposition("a.txt"), "inline; filename=a.txt");
    assert.equal(inlineDisposition("a b"), 'inline; filename="a b"');
    assert.equal(inlineDisposition("a;b"), 'inline; filename="a;b"');
    assert.equal(inlineDisposition("tab\there"), 'inline; filename="tab\there"');
    assert.equal(inlineDisposition("it's.txt"), "inline; filename=it's.txt");
    assert.equal(inlineDisposition("\u00fc 100%*.txt"), "inline; filename*=utf-8''%C3%BC%20100%25%2A.txt");
    assert.equal(inlineDisposition(""), 'inline; filename=""');
  });

  it("looks types up by extension as Go's mime package does", async () => {
    await loadMimeTable();
    assert.equal(goExt("/a/b.tar.gz"), ".gz");
    assert.equal(goExt("/a.d/file"), "");
    assert.equal(goExt(".bashrc"), ".bashrc");
    assert.equal(typeByExtension(".js"), "text/javascript; charset=utf-8");
    assert.equal(typeByExtension(".HTML"), "text/html; charset=utf-8");
    assert.equal(typeByExtension(".txt"), "text/plain; charset=utf-8");
    assert.equal(typeByExtension(".csv"), "text/csv; charset=utf-8");
    assert.equal(typeByExtension(".zip"), "application/zip");
    assert.equal(typeByExtension(".nope-not-a-type"), "");
  });

  it("sniffs like http.DetectContentType", () => {
    const t = (s: string) => detectContentType(Buffer.from(s, "latin1"));
    assert.equal(t(""), "text/plain; charset=utf-8");
    assert.equal(t("  <html><body>"), "text/html; charset=utf-8");
    assert.equal(t("<htmlx"), "text/plain; charset=utf-8");
    assert.equal(t("\n<?xml version"), "text/xml; charset=utf-8");
    assert.equal(t("%PDF-1.7"), "application/pdf");
    assert.equal(t("\x1f\x8b\x08\x00"), "application/x-gzip");
    assert.equal(t("PK\x03\x04"), "application/zip");
    assert.equal(t("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), "video/mp4");
    assert.equal(t("\xef\xbb\xbfhi"), "text/plain; charset=utf-8");
    assert.equal(t("\x00asm\x01\x00\x00\x00"), "application/wasm");
    assert.equal(t("binary\x00data"), "application/octet-stream");
  });

  it("reads the three HTTP date forms Go accepts", () => {
    const want = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
    assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), want);
    assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), want);
    assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), want);
    assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"), undefined);
    assert.equal(parseHttpDate("Sun, 31 Feb 1994 08:49:37 GMT"), undefined);
    assert.equal(parseHttpDate("1994-11-06T08:49:37Z"), undefined);
  });
});
