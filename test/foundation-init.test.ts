// POST /init and GET /envs (docs/protocol.md, "HTTP API"): body handling, replay guard, env var
// replacement, and the access token it sets.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

function init(d: Daemon, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${d.url}/init`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function envs(d: Daemon, token?: string): Promise<Record<string, string>> {
  const res = await fetch(`${d.url}/envs`, { headers: token ? { "x-access-token": token } : {} });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, string>;
}

const at = (ms: number) => new Date(ms).toISOString();

describe("POST /init", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("answers 204 with X-Envd-Version 0.6.13 and no-store, for an empty body too", async () => {
    for (const body of ["", "{}", "null"]) {
      const res = await init(d, body);
      assert.equal(res.status, 204, `body '${body}'`);
      assert.equal(res.headers.get("x-envd-version"), "0.6.13");
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(await res.text(), "");
    }
  });

  it("answers invalid JSON, or JSON of the wrong shape, with 400 and an empty body", async () => {
    for (const body of ["{", "not json", "[1,2]", '"text"', "42", '{"envVars":[1]}', '{"envVars":{"A":1}}', '{"accessToken":5}', '{"timestamp":"yesterday"}', '{"timestamp":"2024-01-01"}', '{"timestamp":"2024-01-01 10:00:00Z"}', '{"accessToken":""}', '{"accessToken":"a\\\\b"}']) {
      const res = await init(d, body);
      assert.equal(res.status, 400, `body ${body}`);
      assert.equal(await res.text(), "", `body ${body}`);
      assert.equal(res.headers.get("x-envd-version"), "0.6.13", "the version header is on errors too");
    }
  });

  it("envVars replace the previous set; E2B_SANDBOX stays; older or equal timestamps are ignored", async () => {
    const t0 = Date.now();
    assert.equal((await init(d, { envVars: { A: "1", B: "2" }, timestamp: at(t0) })).status, 204);
    assert.deepEqual(await envs(d), { A: "1", B: "2", E2B_SANDBOX: "true" });

    assert.equal((await init(d, { envVars: { B: "3" }, timestamp: at(t0 + 1000) })).status, 204);
    assert.deepEqual(await envs(d), { B: "3", E2B_SANDBOX: "true" }, "A is gone: replace, not merge");

    const stale = await init(d, { envVars: { STALE: "x" }, timestamp: at(t0 + 500) });
    assert.equal(stale.status, 204, "a replayed /init still answers 204");
    assert.deepEqual(await envs(d), { B: "3", E2B_SANDBOX: "true" }, "older timestamp ignored");
    assert.equal((await init(d, { envVars: { SAME: "x" }, timestamp: at(t0 + 1000) })).status, 204);
    assert.deepEqual(await envs(d), { B: "3", E2B_SANDBOX: "true" }, "equal timestamp ignored");

    assert.equal((await init(d, { envVars: { E2B_SANDBOX: "hacked", C: "4" } })).status, 204, "no timestamp: always applied");
    assert.deepEqual(await envs(d), { C: "4", E2B_SANDBOX: "true" }, "internal variables cannot be overridden");

    assert.equal((await init(d, { timestamp: at(t0 + 2000) })).status, 204);
    assert.deepEqual(await envs(d), { C: "4", E2B_SANDBOX: "true" }, "absent envVars leave them as they are");
    assert.equal((await init(d, { envVars: {}, timestamp: at(t0 + 3000) })).status, 204);
    assert.deepEqual(await envs(d), { E2B_SANDBOX: "true" }, "an empty map clears them");
  });

  it("sets the access token, which is then required everywhere but the exceptions", async () => {
    const token = "init-token-" + "a".repeat(53);
    const res = await init(d, { accessToken: token, envVars: { K: "v" } });
    assert.equal(res.status, 204);

    const denied = await fetch(`${d.url}/envs`);
    assert.equal(denied.status, 401);
    assert.deepEqual(await denied.json(), { code: 401, message: "unauthorized access, please provide a valid access token or method signing if supported" });
    assert.equal((await fetch(`${d.url}/envs`, { headers: { "x-access-token": "wrong" } })).status, 401);
    assert.deepEqual(await envs(d, token), { K: "v", E2B_SANDBOX: "true" });
    assert.equal((await fetch(`${d.url}/health`)).status, 204);

    const rpc = await fetch(`${d.url}/envdts.v1.System/HealthCheck`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(rpc.status, 401);
  });

  it("once a token is set, /init must carry it: mismatch and reset give 401 in plain text", async () => {
    const token = "init-token-" + "a".repeat(53);
    const mismatch = await init(d, { accessToken: "other-token", envVars: { X: "1" } });
    assert.equal(mismatch.status, 401);
    assert.match(mismatch.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(await mismatch.text(), "access token validation failed");
    assert.equal(mismatch.headers.get("x-envd-version"), "0.6.13");

    const reset = await init(d, { envVars: { X: "1" } });
    assert.equal(reset.status, 401);
    assert.equal(await reset.text(), "access token reset not authorized");

    // Validation comes before the replay guard: a stale request with a bad token is refused, not ignored.
    const staleBad = await init(d, { accessToken: "other-token", timestamp: at(0) });
    assert.equal(staleBad.status, 401);

    assert.deepEqual(await envs(d, token), { K: "v", E2B_SANDBOX: "true" }, "refused requests changed nothing");
    assert.equal((await init(d, { accessToken: token, envVars: { X: "2" } })).status, 204, "the holder may re-init (no X-Access-Token needed)");
    assert.deepEqual(await envs(d, token), { X: "2", E2B_SANDBOX: "true" });
  });
});

describe("POST /init with a token from --access-token", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ args: ["--access-token", "flag-token"] });
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("refuses to clear or replace the flag's token, and accepts it", async () => {
    const reset = await init(d, {});
    assert.equal(reset.status, 401);
    assert.equal(await reset.text(), "access token reset not authorized");
    const wrong = await init(d, { accessToken: "another" });
    assert.equal(wrong.status, 401);
    assert.equal(await wrong.text(), "access token validation failed");
    assert.equal((await init(d, { accessToken: "flag-token", envVars: { FROM: "init" } })).status, 204);
    assert.deepEqual(await envs(d, "flag-token"), { FROM: "init", E2B_SANDBOX: "true" });
  });
});
