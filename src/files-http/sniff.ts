/**
 * Go's http.DetectContentType (the WHATWG MIME sniffing table), used when a download's
 * extension says nothing, as http.ServeContent does in envd.
 */

/** Bytes considered, as in Go. */
export const SNIFF_LEN = 512;

type Matcher = (data: Buffer, firstNonWS: number) => string | undefined;

function bytes(s: string): Buffer {
  return Buffer.from(s, "latin1");
}

function exact(sig: string, ct: string): Matcher {
  const b = bytes(sig);
  return (data) => (data.length >= b.length && data.subarray(0, b.length).equals(b) ? ct : undefined);
}

function masked(mask: string, pat: string, ct: string, skipWS = false): Matcher {
  const m = bytes(mask);
  const p = bytes(pat);
  return (data, firstNonWS) => {
    const d = skipWS ? data.subarray(firstNonWS) : data;
    if (d.length < m.length) return undefined;
    for (let i = 0; i < m.length; i++) if ((d[i]! & m[i]!) !== p[i]) return undefined;
    return ct;
  };
}

function html(sig: string): Matcher {
  const h = bytes(sig);
  return (data, firstNonWS) => {
    const d = data.subarray(firstNonWS);
    if (d.length < h.length + 1) return undefined;
    for (let i = 0; i < h.length; i++) {
      let db = d[i]!;
      const b = h[i]!;
      if (b >= 0x41 && b <= 0x5a) db &= 0xdf;
      if (b !== db) return undefined;
    }
    const next = d[h.length];
    return next === 0x20 || next === 0x3e ? "text/html; charset=utf-8" : undefined;
  };
}

const mp4: Matcher = (data) => {
  if (data.length < 12) return undefined;
  const boxSize = data.readUInt32BE(0);
  if (data.length < boxSize || boxSize % 4 !== 0) return undefined;
  if (data.toString("latin1", 4, 8) !== "ftyp") return undefined;
  for (let st = 8; st < boxSize; st += 4) {
    if (st === 12) continue;
    if (data.toString("latin1", st, st + 3) === "mp4") return "video/mp4";
  }
  return undefined;
};

const text: Matcher = (data, firstNonWS) => {
  for (let i = firstNonWS; i < data.length; i++) {
    const b = data[i]!;
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) return undefined;
  }
  return "text/plain; charset=utf-8";
};

const SIGNATURES: Matcher[] = [
  ...["<!DOCTYPE HTML", "<HTML", "<HEAD", "<SCRIPT", "<IFRAME", "<H1", "<DIV", "<FONT", "<TABLE", "<A", "<STYLE", "<TITLE", "<B", "<BODY", "<BR", "<P", "<!--"].map(html),
  masked("\xFF\xFF\xFF\xFF\xFF", "<?xml", "text/xml; charset=utf-8", true),
  exact("%PDF-", "application/pdf"),
  exact("%!PS-Adobe-", "application/postscript"),
  masked("\xFF\xFF\x00\x00", "\xFE\xFF\x00\x00", "text/plain; charset=utf-16be"),
  masked("\xFF\xFF\x00\x00", "\xFF\xFE\x00\x00", "text/plain; charset=utf-16le"),
  masked("\xFF\xFF\xFF\x00", "\xEF\xBB\xBF\x00", "text/plain; charset=utf-8"),
  exact("\x00\x00\x01\x00", "image/x-icon"),
  exact("\x00\x00\x02\x00", "image/x-icon"),
  exact("BM", "image/bmp"),
  exact("GIF87a", "image/gif"),
  exact("GIF89a", "image/gif"),
  masked("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF", "RIFF\x00\x00\x00\x00WEBPVP", "image/webp"),
  exact("\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
  exact("\xFF\xD8\xFF", "image/jpeg"),
  masked("\xFF\xFF\xFF\xFF", ".snd", "audio/basic"),
  masked("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
  masked("\xFF\xFF\xFF", "ID3", "audio/mpeg"),
  masked("\xFF\xFF\xFF\xFF\xFF", "OggS\x00", "application/ogg"),
  masked("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", "MThd\x00\x00\x00\x06", "audio/midi"),
  masked("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "RIFF\x00\x00\x00\x00AVI ", "video/avi"),
  masked("\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF", "RIFF\x00\x00\x00\x00WAVE", "audio/wave"),
  mp4,
  exact("\x1A\x45\xDF\xA3", "video/webm"),
  masked("\x00".repeat(34) + "\xFF\xFF", "\x00".repeat(34) + "LP", "application/vnd.ms-fontobject"),
  exact("\x00\x01\x00\x00", "font/ttf"),
  exact("OTTO", "font/otf"),
  exact("ttcf", "font/collection"),
  exact("wOFF", "font/woff"),
  exact("wOF2", "font/woff2"),
  exact("\x1F\x8B\x08", "application/x-gzip"),
  exact("PK\x03\x04", "application/zip"),
  exact("Rar!\x1A\x07\x00", "application/x-rar-compressed"),
  exact("Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
  exact("\x00\x61\x73\x6D", "application/wasm"),
  text,
];

/** The MIME type Go would sniff from the first bytes of a file. */
export function detectContentType(head: Buffer): string {
  const data = head.length > SNIFF_LEN ? head.subarray(0, SNIFF_LEN) : head;
  let firstNonWS = 0;
  while (firstNonWS < data.length && [0x09, 0x0a, 0x0c, 0x0d, 0x20].includes(data[firstNonWS]!)) firstNonWS++;
  for (const sig of SIGNATURES) {
    const ct = sig(data, firstNonWS);
    if (ct) return ct;
  }
  return "application/octet-stream";
}
