// src/gen must be exactly what `buf generate` makes from proto/ today: no stale or hand-edited code.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

describe("generated code", () => {
  it("src/gen matches a fresh `buf generate` of proto/ byte for byte", () => {
    // buf.gen.yaml writes to src/gen with clean: true, so generate in a copy, never in place.
    const tmp = mkdtempSync(join(tmpdir(), "envd-codegen-"));
    try {
      for (const entry of ["proto", "buf.yaml", "buf.gen.yaml"]) cpSync(join(ROOT, entry), join(tmp, entry), { recursive: true });
      const bin = join(ROOT, "node_modules/.bin");
      const r = spawnSync(join(bin, "buf"), ["generate"], {
        cwd: tmp,
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `buf generate failed: ${r.stderr}`);

      const fresh = join(tmp, "src/gen");
      const committed = join(ROOT, "src/gen");
      const freshFiles = listFiles(fresh);
      assert.ok(freshFiles.length > 0);
      assert.deepEqual(listFiles(committed), freshFiles, "the same files (run `npm run generate` after changing proto/)");
      for (const f of freshFiles) {
        assert.ok(readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f))), `src/gen/${f} is stale: run \`npm run generate\``);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
