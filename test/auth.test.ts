// Identity and auth (docs/protocol.md, "Authentication and identity"): the access token,
// Basic-auth user selection, signed URLs.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { basicAuthUsername, resolveRpcUser } from "../src/auth/request-user.js";
import { fileSignature, signatureProblem } from "../src/auth/signature.js";
import { AccessToken } from "../src/auth/access-token.js";
import { System } from "../src/gen/envdts/v1/system_pb.js";
import { collectJsonFrames, connectStream } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { grpc, grpcServerStream, grpcSystemClient, grpcUnary } from "./helpers/grpc-system.js";

const TOKEN_ERROR = { code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" };
const HEALTH_RPC = "/envdts.v1.System/HealthCheck";
const WATCH_RPC = "/envdts.v1.System/WatchResourceUsage";

const basic = (userColonPass: string) => `Basic ${Buffer.from(userColonPass).toString("base64")}`;

function unary(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}${HEALTH_RPC}`, { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers }, body: "{}" });
}

async function expectTokenError(res: Response, what: string): Promise<void> {
  assert.equal(res.status, 401, what);
  assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8", what);
  assert.deepEqual(await res.json(), TOKEN_ERROR, what);
}

describe("no access token set (the debug case)", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("checks nothing: every route answers without X-Access-Token, and a stray one is ignored", async () => {
    assert.equal((await fetch(`${d.url}/envs`)).status, 200);
    assert.equal((await fetch(`${d.url}/metrics`)).status, 200);
    assert.equal((await unary(d.url)).status, 200);
    assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": "anything" } })).status, 200);
    assert.equal((await unary(d.url, { "x-access-token": "anything" })).status, 200);
  });
});

describe("access token set by --access-token", () => {
  const token = "s3cret-token-0123456789abcdef";
  let d: Daemon;
  let grpcClient: any;
  before(async () => {
    d = await startDaemon({ args: ["--access-token", token] });
    grpcClient = grpcSystemClient(d.port);
  });
  after(async () => {
    grpcClient.close();
    assert.equal(await d.stop(), 0);
  });

  it("REST routes: missing and wrong tokens get E2B's 401 JSON, the right one passes", async () => {
    for (const path of ["/envs", "/metrics", "/no-such-route"]) {
      await expectTokenError(await fetch(`${d.url}${path}`), `${path} without token`);
      for (const wrong of ["wrong", token.toUpperCase(), token + "x", token.slice(0, -1), ""]) {
        await expectTokenError(await fetch(`${d.url}${path}`, { headers: { "x-access-token": wrong } }), `${path} with '${wrong}'`);
      }
    }
    assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": token } })).status, 200);
    assert.equal((await fetch(`${d.url}/metrics`, { headers: { "x-access-token": token } })).status, 200);
    assert.equal((await fetch(`${d.url}/no-such-route`, { headers: { "x-access-token": token } })).status, 404);
    for (const path of ["/freeze", "/fsfreeze", "/upgrade"]) {
      await expectTokenError(await fetch(`${d.url}${path}`, { method: "POST" }), path);
      assert.equal((await fetch(`${d.url}${path}`, { method: "POST", headers: { "x-access-token": token } })).status, 501);
    }
  });

  it("exempts exactly GET /health, GET|POST /files and POST /init", async () => {
    assert.equal((await fetch(`${d.url}/health`)).status, 204);
    await expectTokenError(await fetch(`${d.url}/health`, { method: "POST" }), "POST /health is not exempt");
    for (const method of ["GET", "POST"]) {
      const res = await fetch(`${d.url}/files?path=/tmp/x`, { method });
      const text = await res.text();
      assert.ok(!text.includes(TOKEN_ERROR.message), `${method} /files is not stopped by the token check (${res.status} ${text})`);
    }
    await expectTokenError(await fetch(`${d.url}/files/compose`, { method: "POST" }), "/files/compose is not exempt");
    const init = await fetch(`${d.url}/init`, { method: "POST", body: JSON.stringify({ accessToken: token }) });
    assert.equal(init.status, 204, "POST /init validates its own token");
  });

  it("Connect unary and streaming RPCs need the token", async () => {
    await expectTokenError(await unary(d.url), "unary without token");
    await expectTokenError(await unary(d.url, { "x-access-token": "nope" }), "unary with a wrong token");
    assert.equal((await unary(d.url, { "x-access-token": token })).status, 200);

    await expectTokenError(await connectStream(`${d.url}${WATCH_RPC}`, { intervalMs: 60_000 }), "stream without token");
    const ok = await connectStream(`${d.url}${WATCH_RPC}`, { intervalMs: 60_000 }, { "x-access-token": token });
    assert.equal(ok.status, 200);
    const frames = await collectJsonFrames(ok, (f) => f.length === 1);
    assert.ok("sample" in frames[0]!.json);

    const client = createClient(System, createConnectTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    await assert.rejects(client.healthCheck({}), (e) => ConnectError.from(e).code === Code.Unauthenticated);
    await client.healthCheck({}, { headers: { "x-access-token": token } });
  });

  it("real gRPC needs the token (HTTP 401 → UNAUTHENTICATED) and passes with it as metadata", async () => {
    await assert.rejects(grpcUnary(grpcClient, "HealthCheck", {}), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED);
    const md = new grpc.Metadata();
    md.set("x-access-token", token);
    assert.equal((await grpcUnary(grpcClient, "HealthCheck", {}, md)).status, "STATUS_SERVING");
  });

  it("CORS preflights are answered before the token check", async () => {
    const res = await fetch(`${d.url}/envs`, { method: "OPTIONS", headers: { origin: "https://x.example", "access-control-request-method": "GET", "access-control-request-headers": "x-access-token" } });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-headers"), "x-access-token");
  });

  it("the 401 still carries CORS headers for a browser", async () => {
    const res = await fetch(`${d.url}/envs`, { headers: { origin: "https://x.example" } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
  });
});

describe("Basic-auth user selection", () => {
  let d: Daemon;
  let grpcClient: any;
  before(async () => {
    d = await startDaemon();
    grpcClient = grpcSystemClient(d.port);
  });
  after(async () => {
    grpcClient.close();
    assert.equal(await d.stop(), 0);
  });

  it("a known user, no header, or a malformed header all pass (malformed means the default user, silently)", async () => {
    for (const authorization of [undefined, basic("user:"), basic("root:pw"), "Basic !!!notbase64", "Bearer abc", basic("nosuchuser"), "Basic", "Basic  " + basic("nosuchuser:").slice(6), "Basic bm9zdWNodXNlcjo"]) {
      const res = await unary(d.url, authorization === undefined ? {} : { authorization });
      assert.equal(res.status, 200, `Authorization: ${authorization}`);
    }
  });

  it("an unknown user is unauthenticated: 401 JSON for Connect unary", async () => {
    const res = await unary(d.url, { authorization: basic("nosuchuser:") });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.deepEqual(await res.json(), { code: "unauthenticated", message: "invalid username: 'nosuchuser'" });

    const empty = await unary(d.url, { authorization: basic(":") });
    assert.equal(empty.status, 401, "the empty username is looked up and fails");
    assert.deepEqual(await empty.json(), { code: "unauthenticated", message: "invalid username: ''" });
  });

  it("an unknown user on a Connect stream: HTTP 200 and an end-stream error frame", async () => {
    const res = await connectStream(`${d.url}${WATCH_RPC}`, { intervalMs: 100 }, { authorization: basic("nosuchuser:") });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/connect+json");
    const frames = await collectJsonFrames(res);
    assert.deepEqual(frames, [{ flags: 2, json: { error: { code: "unauthenticated", message: "invalid username: 'nosuchuser'" } } }]);
  });

  it("an unknown user over gRPC and gRPC-Web: unauthenticated", async () => {
    const md = new grpc.Metadata();
    md.set("authorization", basic("nosuchuser:"));
    await assert.rejects(grpcUnary(grpcClient, "GetSystemInfo", {}, md), (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED && e.details === "invalid username: 'nosuchuser'");
    const stream = await grpcServerStream(grpcClient, "WatchResourceUsage", { intervalMs: 100 }, md);
    assert.deepEqual(stream.messages, []);
    assert.equal(stream.status.code, grpc.status.UNAUTHENTICATED);

    const web = createClient(System, createGrpcWebTransport({ baseUrl: d.url, httpVersion: "1.1" }));
    await assert.rejects(web.healthCheck({}, { headers: { authorization: basic("nosuchuser:") } }), (e) => ConnectError.from(e).code === Code.Unauthenticated);
  });

  it("an unknown user on a REST route gets the authn middleware's 401 JSON too", async () => {
    for (const path of ["/health", "/envs", "/metrics"]) {
      const res = await fetch(`${d.url}${path}`, { headers: { authorization: basic("nosuchuser:") } });
      assert.equal(res.status, 401, path);
      assert.deepEqual(await res.json(), { code: "unauthenticated", message: "invalid username: 'nosuchuser'" });
    }
    assert.equal((await fetch(`${d.url}/health`, { headers: { authorization: basic("user:") } })).status, 204);
  });

  it("resolveRpcUser picks the Basic user, or the default user for a missing or malformed header", () => {
    assert.equal(resolveRpcUser(basic("user:"), "root").name, "user");
    assert.equal(resolveRpcUser(basic("root:"), "user").name, "root");
    for (const h of [undefined, null, "", "Bearer x", "Basic %%%", basic("user"), "Basic dXNlcjo", "basic  dXNlcjo="]) {
      assert.equal(resolveRpcUser(h, "root").name, "root", `header ${h}`);
    }
    assert.equal(resolveRpcUser(undefined, "user").home, "/home/user");
    assert.throws(() => resolveRpcUser(basic("ghost:"), "root"), (e) => e instanceof ConnectError && e.code === Code.Unauthenticated && e.rawMessage === "invalid username: 'ghost'");
    assert.throws(() => resolveRpcUser(undefined, "ghost"), (e) => e instanceof ConnectError && e.code === Code.Unauthenticated && e.rawMessage === "invalid default user: 'ghost'");
  });

  it("basicAuthUsername reads the header as Go's r.BasicAuth() does", () => {
    assert.equal(basicAuthUsername(basic("user:")), "user");
    assert.equal(basicAuthUsername("basic " + Buffer.from("user:").toString("base64")), "user", "scheme is case-insensitive");
    assert.equal(basicAuthUsername(basic("a:b:c")), "a", "splits at the first colon");
    assert.equal(basicAuthUsername(basic(":")), "");
    assert.equal(basicAuthUsername(basic("user")), undefined, "no colon");
    assert.equal(basicAuthUsername("Basic dXNlcjo"), undefined, "unpadded base64 is refused, as by StdEncoding");
    assert.equal(basicAuthUsername("Basic  dXNlcjo="), undefined, "exactly one space after the scheme");
    assert.equal(basicAuthUsername("Basic"), undefined);
  });
});

describe("signed /files URLs (src/auth/signature.ts)", () => {
  const token = "0123456789abcdef";
  const now = 1_700_000_000;

  it("matches fixed vectors (sha256, unpadded standard base64, v1_ prefix)", () => {
    assert.equal(fileSignature("/home/user/hello.txt", "read", "user", token), "v1_WdjdYWuZAvTTOfytYzNU0v6mjCnFUDhoHo5ldo96n/0");
    assert.equal(fileSignature("/home/user/hello.txt", "write", "", token, now), "v1_LudTc2rN0X3NrNoyePwtF9OP0D17fbzWE51/DrUQse0");
  });

  it("matches the e2b SDK's own getSignature", async () => {
    const { getSignature } = (await import("e2b")) as unknown as {
      getSignature(o: { path: string; operation: "read" | "write"; user: string | undefined; expirationInSeconds?: number; envdAccessToken?: string }): Promise<{ signature: string; expiration: number | null }>;
    };
    for (const [path, operation, user] of [
      ["/home/user/a b/ü.txt", "read", "user"],
      ["relative/path", "write", undefined],
      ["", "read", "root"],
    ] as const) {
      const plain = await getSignature({ path, operation, user, envdAccessToken: token });
      assert.equal(plain.expiration, null);
      assert.equal(fileSignature(path, operation, user ?? "", token), plain.signature);
      assert.equal(signatureProblem({ path, username: user ?? "", signature: plain.signature, expiration: undefined }, operation, token), undefined);

      const timed = await getSignature({ path, operation, user, envdAccessToken: token, expirationInSeconds: 120 });
      assert.equal(fileSignature(path, operation, user ?? "", token, timed.expiration!), timed.signature);
      assert.equal(signatureProblem({ path, username: user ?? "", signature: timed.signature, expiration: timed.expiration! }, operation, token), undefined);
    }
  });

  it("validates in E2B's order: missing, then forged, then expired (exp == now still valid)", () => {
    const q = (signature: string | undefined, expiration?: number, over: Partial<{ path: string; username: string }> = {}) => ({
      path: "/home/user/f",
      username: "user",
      signature,
      expiration,
      ...over,
    });
    const good = fileSignature("/home/user/f", "read", "user", token, now + 60);
    assert.equal(signatureProblem(q(good, now + 60), "read", token, now), undefined);
    assert.equal(signatureProblem(q(undefined), "read", token, now), "missing signature query parameter");
    assert.equal(signatureProblem(q(good, now + 60), "write", token, now), "invalid signature", "operation is signed");
    assert.equal(signatureProblem(q(good, now + 60, { path: "/home/user/g" }), "read", token, now), "invalid signature", "path is signed");
    assert.equal(signatureProblem(q(good, now + 60, { username: "" }), "read", token, now), "invalid signature", "user is signed");
    assert.equal(signatureProblem(q(good, now + 61), "read", token, now), "invalid signature", "expiration is signed");
    assert.equal(signatureProblem(q(good, undefined), "read", token, now), "invalid signature", "expiration cannot be dropped");
    assert.equal(signatureProblem(q(good, now + 60), "read", token + "x", now), "invalid signature", "token is signed");
    assert.equal(signatureProblem(q(good.slice(0, -1) + (good.endsWith("A") ? "B" : "A"), now + 60), "read", token, now), "invalid signature");
    assert.equal(signatureProblem(q(""), "read", token, now), "invalid signature");

    const expiring = fileSignature("/home/user/f", "read", "user", token, now);
    assert.equal(signatureProblem(q(expiring, now), "read", token, now), undefined, "exp == now is valid");
    assert.equal(signatureProblem(q(expiring, now), "read", token, now + 1), "signature is already expired");
    const forgedAndExpired = fileSignature("/other", "read", "user", token, now - 10);
    assert.equal(signatureProblem(q(forgedAndExpired, now - 10), "read", token, now), "invalid signature", "the signature is checked before the expiry");
  });

  it("AccessToken compares whole values and is unset by an empty token", () => {
    const t = new AccessToken("abc");
    assert.ok(t.matches("abc"));
    for (const c of ["ab", "abcd", "ABC", "", undefined, null]) assert.equal(t.matches(c), false, String(c));
    t.set("");
    assert.equal(t.isSet(), false);
    assert.equal(t.matches(""), false);
  });
});
