// GET /openapi.json is a valid OpenAPI 3.1 document that lists exactly the REST, prefix and
// WebSocket routes the running daemon registered (from its debug "routes" log line), and
// every operation it marks as needing the access token really answers 401 without it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const TOKEN = "openapi-test-token";
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const GENERIC_401 = "unauthorized access, please provide a valid access token or method signing if supported";

interface Operation {
  security?: unknown[];
}
type PathItem = Record<string, unknown> & { "x-envd-prefix"?: string; "x-envd-upgrade"?: string };
interface Doc {
  openapi: string;
  security?: unknown[];
  paths: Record<string, PathItem>;
}

describe("OpenAPI document", { timeout: 60_000 }, () => {
  let d: Daemon;
  let doc: Doc;
  before(async () => {
    d = await startDaemon({ args: ["--access-token", TOKEN, "--log-level", "debug"] });
    const res = await fetch(`${d.url}/openapi.json`, { headers: { "x-access-token": TOKEN } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    doc = (await res.json()) as Doc;
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("validates against the OpenAPI 3.1 schema", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc as never);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, "3.1");
  });

  it("documents exactly the routes the server registered", () => {
    const table = d.logs.find((l) => l.msg === "routes") as { rest: string[]; prefix: string[]; upgrade: string[] } | undefined;
    assert.ok(table, "the daemon logs its route table at debug level");
    const documented = { rest: new Set<string>(), prefix: new Set<string>(), upgrade: new Set<string>() };
    for (const [path, item] of Object.entries(doc.paths)) {
      if (item["x-envd-upgrade"]) documented.upgrade.add(item["x-envd-upgrade"]);
      if (item["x-envd-prefix"]) {
        documented.prefix.add(item["x-envd-prefix"]);
        continue;
      }
      for (const m of METHODS) if (item[m]) documented.rest.add(`${m.toUpperCase()} ${path}`);
    }
    assert.deepEqual([...documented.rest].sort(), table.rest);
    assert.deepEqual([...documented.prefix].sort(), table.prefix);
    assert.deepEqual([...documented.upgrade].sort(), table.upgrade);
  });

  it("every operation documented as needing the token answers 401 without it", async () => {
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const m of METHODS) {
        const op = item[m] as Operation | undefined;
        if (!op) continue;
        const security = op.security ?? doc.security ?? [];
        const concrete = path.replace("{port}", "1").replace("{path}", "x");
        const res = await fetch(`${d.url}${concrete}`, { method: m.toUpperCase() });
        const body = await res.text();
        if (security.length === 0) {
          assert.ok(!(res.status === 401 && body.includes(GENERIC_401)), `${m} ${path} is documented as token-free but the server asked for the token`);
          continue;
        }
        assert.equal(res.status, 401, `${m} ${path} without a token`);
        if (m !== "head") assert.equal(JSON.parse(body).message, GENERIC_401);
        checked++;
      }
    }
    assert.ok(checked >= 15, `checked ${checked} operations`);
  });
});
