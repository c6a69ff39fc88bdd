/**
 * Content-coding negotiation for /files with E2B's rules (envd encoding.go): only gzip
 * is supported; identity is acceptable unless `identity;q=0`, or `*;q=0` without an
 * explicit positive identity entry.
 */

/** A content coding envd-ts can send or accept. */
export type Coding = "gzip" | "identity";

/** The codings envd can produce or consume besides identity, in preference order. */
export const SUPPORTED_CODINGS = ["gzip"] as const;

interface Weighted {
  coding: string;
  q: number;
}

/**
 * The q value as Go's strconv.ParseFloat reads it (no surrounding spaces allowed);
 * unparsable values leave the default weight 1, as in envd.
 */
function parseQ(text: string): number | undefined {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  return undefined;
}

function parseWeighted(value: string): Weighted {
  let v = value.trim();
  let q = 1;
  const semi = v.indexOf(";");
  if (semi !== -1) {
    const params = v.slice(semi + 1);
    v = v.slice(0, semi).trim();
    for (const raw of params.split(";")) {
      const p = raw.trim();
      if (p.toLowerCase().startsWith("q=")) {
        const parsed = parseQ(p.slice(2));
        if (parsed !== undefined) q = parsed;
      }
    }
  }
  return { coding: v.toLowerCase(), q };
}

function parseAcceptEncodingHeader(header: string): { entries: Weighted[]; identityRejected: boolean } {
  if (header === "") return { entries: [], identityRejected: false };
  const entries = header.split(",").map(parseWeighted);
  let identityRejected = false;
  let identityAccepted = false;
  let wildcardRejected = false;
  for (const e of entries) {
    if (e.coding === "identity") {
      if (e.q === 0) identityRejected = true;
      else identityAccepted = true;
    } else if (e.coding === "*" && e.q === 0) wildcardRejected = true;
  }
  if (wildcardRejected && !identityAccepted) identityRejected = true;
  return { entries, identityRejected };
}

/** Whether the client accepts an unencoded response (Range and conditional requests need it). */
export function identityAcceptable(acceptEncoding: string): boolean {
  return !parseAcceptEncodingHeader(acceptEncoding).identityRejected;
}

/**
 * The coding to send for an Accept-Encoding header, or undefined when nothing
 * acceptable is supported (envd answers 406).
 */
export function negotiateCoding(acceptEncoding: string): Coding | undefined {
  if (acceptEncoding === "") return "identity";
  const { entries, identityRejected } = parseAcceptEncodingHeader(acceptEncoding);
  // A stable sort: entries of equal weight keep the client's order, as Go's small-slice sort does.
  const sorted = entries
    .map((e, i) => ({ e, i }))
    .sort((a, b) => b.e.q - a.e.q || a.i - b.i)
    .map(({ e }) => e);
  for (const e of sorted) {
    if (e.q === 0) continue;
    if (e.coding === "identity") return "identity";
    if (e.coding === "*") return identityRejected ? SUPPORTED_CODINGS[0] : "identity";
    if ((SUPPORTED_CODINGS as readonly string[]).includes(e.coding)) return e.coding as Coding;
  }
  return identityRejected ? undefined : "identity";
}

/**
 * The coding of a request body from its Content-Encoding header, or an error text
 * in envd's words for codings it cannot decode.
 */
export function requestCoding(contentEncoding: string | undefined): { coding: Coding } | { error: string } {
  if (!contentEncoding) return { coding: "identity" };
  const coding = parseWeighted(contentEncoding).coding;
  if (coding === "identity") return { coding: "identity" };
  if ((SUPPORTED_CODINGS as readonly string[]).includes(coding)) return { coding: coding as Coding };
  return { error: `unsupported Content-Encoding: ${contentEncoding}, supported: [${SUPPORTED_CODINGS.join(" ")}]` };
}

/**
 * Whether the header is exactly `gzip, deflate`: what Node's fetch (undici, the e2b
 * SDK's transport) and Python's requests and httpx put on every request whether or
 * not the caller asked. Such a client has no preference, and for a download it is
 * better served uncompressed: undici decodes gzip so slowly that a 64 MiB text file
 * took 2.6 s (bytes) to 13 s (text) gzipped against 0.35 to 0.5 s plain
 * (bench/NOTES.md). A caller that wants compression says so with any other header
 * naming gzip (the SDK's `gzip: true` sends `gzip` alone; browsers add br, curl
 * --compressed puts deflate first).
 */
export function isImplicitFetchDefault(acceptEncoding: string): boolean {
  const entries = acceptEncoding.split(",").map((e) => e.trim().toLowerCase());
  return entries.length === 2 && entries[0] === "gzip" && entries[1] === "deflate";
}
