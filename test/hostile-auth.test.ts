// Auth under attack: every route the daemon serves (read from its own route table) × missing,
// wrong, wrong-length, empty, smuggled and correct tokens, forged, reused and expired /files
// signatures, and CORS preflights. Prints the route × case → status table.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileSignature } from "../src/auth/signature.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { httpRequest } from "./helpers/files-http.js";
import { health, rawExchange, waitFor } from "./helpers/hostile.js";

const TOKEN = "s3cret-token-0123456789abcdef";
const TOKEN_CASES = {
  none: undefined,
  wrong: TOKEN.replace(/.$/, "X"),
  short: TOKEN.slice(0, 5),
  long: TOKEN + "x".repeat(4096),
  empty: "",
  "two-tokens": `${TOKEN.replace(/.$/, "X")}, ${TOKEN}`,
} as const;

/** Routes that need no token: the health check and the web terminal's static script and styles. */
const PUBLIC = new Set(["GET /health", "GET /terminal/terminal.js", "GET /terminal/terminal.css"]);
/** Routes a browser opens: they also take the token as ?access_token= or in the terminal's cookie. */
const BROWSER = new Set(["GET /terminal", "UPGRADE /terminal/ws"]);
const TERMINAL_COOKIE = "envd_terminal_token";

let d: Daemon;
let dir: string;
let file: string;
let routes: { rest: string[]; prefix: string[]; upgrade: string[]; rpc: string[] };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "envd-hostile-auth-"));
  file = join(dir, "f.txt");
  writeFileSync(file, "secret content\n");
  d = await startDaemon({ args: ["--access-token", TOKEN, "--log-level", "debug"] });
  const rec = d.logs.find((l) => l.msg === "routes") as unknown as (typeof routes & { lazyServices: string[] }) | undefined;
  assert.ok(rec, "the daemon logs its route table at debug level");
  // Extension services register after start (at first use, or in the warm-up of an unbundled
  // daemon); each logs its RPCs. Every one of them is part of the table.
  const lazyRpc = () => d.logs.filter((l) => l.msg === "rpc services registered").flatMap((l) => (l as unknown as { rpc: string[] }).rpc);
  const registered = (service: string) => lazyRpc().some((p) => p.startsWith(`/${service}/`));
  assert.ok(rec.lazyServices.includes("envdts.v1.ProcessControl"), JSON.stringify(rec.lazyServices));
  assert.ok(await waitFor(() => rec.lazyServices.every(registered), 10_000), `registered: ${JSON.stringify(lazyRpc())}`);
  routes = { ...rec, rpc: [...rec.rpc, ...lazyRpc()] };
});

after(async () => {
  rmSync(dir, { recursive: true, force: true });
  assert.equal(await d?.stop(), 0);
});

/** One request to a route: how a client would call it, minus any credential. */
interface Target {
  label: string;
  method: string;
  path: string;
  contentType?: string;
  /** Body for the accepted case; chosen so that nothing is changed by a request that gets through. */
  body?: string;
  upgrade?: boolean;
}

function targets(): Target[] {
  const out: Target[] = [];
  for (const key of routes.rest) {
    const [method, path] = key.split(" ") as [string, string];
    if (path === "/files") out.push({ label: key, method, path: `/files?path=${encodeURIComponent(file)}`, contentType: method === "POST" ? "text/plain" : undefined, body: method === "POST" ? "" : undefined });
    else if (path === "/init") out.push({ label: key, method, path, contentType: "application/json", body: JSON.stringify({ accessToken: TOKEN }) });
    else out.push({ label: key, method, path, contentType: method === "POST" ? "application/json" : undefined, body: method === "POST" ? "{" : undefined });
  }
  for (const prefix of routes.prefix) out.push({ label: `ANY ${prefix}*`, method: "GET", path: `${prefix}1/` });
  // The terminal's ?pid=0 attaches to no process: a connection that gets through starts no shell.
  for (const prefix of routes.upgrade) out.push({ label: `UPGRADE ${prefix}`, method: "GET", path: prefix === "/proxy/" ? "/proxy/1/" : prefix.startsWith("/terminal") ? `${prefix}?pid=0` : prefix, upgrade: true });
  // Invalid JSON: a request that gets through is refused by the protocol layer before any handler runs.
  for (const path of routes.rpc) out.push({ label: `RPC ${path}`, method: "POST", path, contentType: "application/json", body: "{" });
  return out;
}

async function send(t: Target, headers: Record<string, string>, query = "", body = t.body): Promise<number> {
  const sep = t.path.includes("?") ? "&" : "?";
  if (t.upgrade) {
    const head = [`GET ${t.path}${query ? sep + query.slice(1) : ""} HTTP/1.1`, "host: x", "connection: Upgrade", "upgrade: websocket", "sec-websocket-version: 13", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    const r = await rawExchange(d.port, head.join("\r\n") + "\r\n\r\n", { ms: 3000 });
    return Number(r.raw.toString("latin1").split(" ")[1]);
  }
  const r = await httpRequest(`${d.url}${t.path}${query ? sep + query.slice(1) : ""}`, {
    method: t.method,
    headers: { ...(t.contentType ? { "content-type": t.contentType } : {}), ...headers },
    body,
  });
  return r.status;
}

describe("auth: every route × every credential", () => {
  const table = new Map<string, Record<string, number>>();
  const cols = new Set<string>();
  const record = (label: string, col: string, status: number) => {
    cols.add(col);
    table.set(label, { ...(table.get(label) ?? {}), [col]: status });
  };

  after(() => {
    const names = [...cols];
    const width = Math.max(...[...table.keys()].map((k) => k.length));
    const lines = [`${"route".padEnd(width)}  ${names.map((n) => n.padStart(Math.max(5, n.length))).join(" ")}`];
    for (const [label, row] of table) lines.push(`${label.padEnd(width)}  ${names.map((n) => String(row[n] ?? "-").padStart(Math.max(5, n.length))).join(" ")}`);
    console.log(`# auth table (access token set; status per route and credential)\n${lines.join("\n")}`);
  });

  it("the route table covers the control API, /files, every RPC, the proxy gateway and upgrades", () => {
    assert.ok(routes.rest.includes("GET /health") && routes.rest.includes("POST /files") && routes.rest.includes("POST /init"));
    assert.ok(routes.rpc.includes("/process.Process/Start") && routes.rpc.includes("/filesystem.Filesystem/Remove"));
    assert.ok(targets().length >= 50, String(targets().length));
  });

  it("without the right token, only the public routes answer; everything else is 401", async () => {
    for (const t of targets()) {
      for (const [name, value] of Object.entries(TOKEN_CASES)) {
        // /init carries its token in the body (E2B's design): the same cases go there.
        const initBody = t.label === "POST /init" ? JSON.stringify(value === undefined ? {} : { accessToken: value }) : t.body;
        const status = await send(t, value === undefined ? {} : { "x-access-token": value }, "", initBody);
        record(t.label, name, status);
        if (PUBLIC.has(t.label)) assert.ok(status < 300, `${t.label} ${name}: ${status}`);
        // E2B refuses an empty or backslashed /init token while decoding the body: 400.
        else if (t.label === "POST /init" && name === "empty") assert.equal(status, 400);
        else assert.equal(status, 401, `${t.label} with token case '${name}' got ${status}`);
      }
      // A token in the query string or a cookie counts only where a browser needs it (the web terminal).
      const noToken = t.label === "POST /init" ? "{}" : t.body;
      const q = await send(t, {}, `?access_token=${TOKEN}&x-access-token=${TOKEN}`, noToken);
      const c = await send(t, { cookie: `x-access-token=${TOKEN}; access_token=${TOKEN}; ${TERMINAL_COOKIE}=${TOKEN}` }, "", noToken);
      const qWrong = await send(t, {}, `?access_token=${TOKEN_CASES.wrong}`, noToken);
      record(t.label, "query", q);
      record(t.label, "cookie", c);
      record(t.label, "query-wrong", qWrong);
      if (PUBLIC.has(t.label)) continue;
      assert.equal(qWrong, 401, `${t.label} wrong token in query`);
      if (BROWSER.has(t.label)) {
        assert.notEqual(q, 401, `${t.label} token in query`);
        assert.notEqual(c, 401, `${t.label} token in cookie`);
      } else {
        assert.equal(q, 401, `${t.label} token in query`);
        assert.equal(c, 401, `${t.label} token in cookie`);
      }
    }
  });

  it("the terminal's WebSocket refuses another origin even with the cookie (cross-site WebSocket hijacking)", async () => {
    const head = ["GET /terminal/ws?pid=0 HTTP/1.1", `host: 127.0.0.1:${d.port}`, "origin: https://evil.example", "connection: Upgrade", "upgrade: websocket", "sec-websocket-version: 13", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", `cookie: ${TERMINAL_COOKIE}=${TOKEN}`];
    const r = await rawExchange(d.port, head.join("\r\n") + "\r\n\r\n", { ms: 3000 });
    const status = Number(r.raw.toString("latin1").split(" ")[1]);
    record("UPGRADE /terminal/ws", "evil-origin", status);
    assert.equal(status, 403);
  });

  it("with the right token, nothing is 401", async () => {
    for (const t of targets()) {
      const status = await send(t, { "x-access-token": TOKEN });
      record(t.label, "right", status);
      assert.notEqual(status, 401, t.label);
      // Header names are case-insensitive.
      assert.notEqual(await send(t, { "X-ACCESS-TOKEN": TOKEN }), 401, `${t.label} upper-case header`);
    }
  });

  it("CORS preflights are answered 204 everywhere, without a token", async () => {
    for (const t of targets()) {
      if (t.upgrade) continue;
      const r = await httpRequest(`${d.url}${t.path}`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": t.method, "access-control-request-headers": "x-access-token, content-type" } });
      record(t.label, "preflight", r.status);
      assert.equal(r.status, 204, t.label);
      assert.equal(r.headers["access-control-allow-origin"], "*");
      assert.equal(r.body.length, 0, "a preflight carries no data");
    }
  });

  it("/files signatures: valid ones pass; forged, reused for another path, user or operation, and expired ones get 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const q = (sig: string, exp?: number, path = file, user?: string) =>
      `?path=${encodeURIComponent(path)}&signature=${encodeURIComponent(sig)}${exp !== undefined ? `&signature_expiration=${exp}` : ""}${user ? `&username=${user}` : ""}`;
    for (const [method, op, other] of [["GET", "read", "write"], ["POST", "write", "read"]] as const) {
      const label = `${method} /files`;
      const target: Target = { label, method, path: "/files", contentType: method === "POST" ? "application/octet-stream" : undefined, body: method === "POST" ? "new content\n" : undefined };
      const go = async (col: string, query: string, expect: number | "not401") => {
        const status = await send(target, {}, query);
        record(label, col, status);
        if (expect === "not401") assert.notEqual(status, 401, `${label} ${col}`);
        else assert.equal(status, expect, `${label} ${col}`);
      };
      await go("sig-forged", q("v1_" + Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "")), 401);
      await go("sig-garbage", q("not-a-signature\u0000"), 401);
      await go("sig-other-path", q(fileSignature(join(dir, "other"), op, "", TOKEN)), 401);
      await go("sig-other-user", q(fileSignature(file, op, "user", TOKEN)), 401);
      await go("sig-other-op", q(fileSignature(file, other, "", TOKEN)), 401);
      await go("sig-other-token", q(fileSignature(file, op, "", TOKEN + "x")), 401);
      await go("sig-expired", q(fileSignature(file, op, "", TOKEN, now - 10), now - 10), 401);
      await go("sig-exp-tampered", q(fileSignature(file, op, "", TOKEN, now - 10), now + 3600), 401);
      await go("sig-valid", q(fileSignature(file, op, "", TOKEN, now + 3600), now + 3600), "not401");
      await go("sig-valid-noexp", q(fileSignature(file, op, "", TOKEN)), "not401");
      // Replaying a valid signature works until it expires: signatures are bearer credentials.
      await go("sig-replayed", q(fileSignature(file, op, "", TOKEN)), "not401");
    }
  });

  it("401s leak nothing: no file content, no other route's data", async () => {
    const r = await httpRequest(`${d.url}/files?path=${encodeURIComponent(file)}&signature=v1_x`);
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.text, /secret content/);
    const envs = await httpRequest(`${d.url}/envs`, { headers: { "x-access-token": TOKEN.slice(0, 5) } });
    assert.equal(envs.status, 401);
    assert.doesNotMatch(envs.text, /E2B_SANDBOX/);
    assert.equal(await health(d.url), 204);
  });

  it("gRPC over h2c without the token: UNAUTHENTICATED before any handler", async () => {
    const { connect } = await import("node:http2");
    const s = connect(d.url);
    const req = s.request({ ":method": "POST", ":path": "/process.Process/List", "content-type": "application/grpc", te: "trailers" });
    req.end(Buffer.from([0, 0, 0, 0, 0]));
    const status = await new Promise<number>((resolve) => req.on("response", (h) => resolve(Number(h[":status"]))));
    req.close();
    s.close();
    record("gRPC h2c /process.Process/List", "none", status);
    assert.equal(status, 401);
  });
});
