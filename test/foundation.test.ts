import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

describe("foundation", () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("GET /health answers 204 with no body", async () => {
    const res = await fetch(`${d.url}/health`);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(await res.text(), "");
  });
});
