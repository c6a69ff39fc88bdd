// The documentation stays true to the code: the flag table in docs/operations.md is the one
// generated from FLAGS (src/config.ts), and every relative link in README.md and docs/*.md
// reaches an existing file, and an existing heading when it names one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FLAGS } from "../src/config.ts";
import { flagsTable, withFlagsTable } from "../scripts/gen-flags-doc.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOCS = [join(ROOT, "README.md"), ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => join(ROOT, "docs", f))];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/<[^>]*>/g, "")
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Links outside code: [text](target) with a relative target. */
function relativeLinks(markdown: string): string[] {
  const text = markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  const links: string[] = [];
  for (const m of text.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    links.push(target);
  }
  return links;
}

test("docs/operations.md lists exactly the flags of FLAGS (npm run docs:flags)", () => {
  const doc = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
  assert.equal(withFlagsTable(doc, FLAGS), doc, "the flag table is stale: run npm run docs:flags");
  for (const f of FLAGS) assert.ok(doc.includes(`\`--${f.name}`), `--${f.name} is missing from docs/operations.md`);
  assert.equal(flagsTable(FLAGS).split("\n").length, FLAGS.length + 2);
});

test("the flag check notices a flag that is not documented", () => {
  const doc = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
  const more = [...FLAGS, { name: "not-documented", type: "boolean" as const, help: "x" }];
  assert.notEqual(withFlagsTable(doc, more), doc);
});

test("every relative link in README.md and docs/*.md resolves, anchors included", () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of DOCS) {
    for (const link of relativeLinks(readFileSync(file, "utf8"))) {
      checked++;
      const [path, anchor] = link.split("#", 2) as [string, string | undefined];
      const target = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
      if (!target.startsWith(ROOT + "/") && target !== ROOT) {
        broken.push(`${file.slice(ROOT.length + 1)}: ${link} (outside the repository)`);
        continue;
      }
      if (!existsSync(target)) {
        broken.push(`${file.slice(ROOT.length + 1)}: ${link} (no such file)`);
        continue;
      }
      if (anchor && target.endsWith(".md") && statSync(target).isFile() && !anchors(readFileSync(target, "utf8")).has(anchor)) {
        broken.push(`${file.slice(ROOT.length + 1)}: ${link} (no such heading)`);
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found: the link parser is broken`);
  assert.deepEqual(broken, []);
});

test("the link check notices a missing file and a missing heading", () => {
  assert.deepEqual(relativeLinks("see [a](docs/nope.md) and [b](https://x.y) and `[c](d.md)`"), ["docs/nope.md"]);
  assert.ok(anchors("## Root jail (`--fs-root DIR`, off by default)\n").has("root-jail---fs-root-dir-off-by-default"));
  assert.ok(!anchors("## Other\n").has("root-jail"));
});

test("code comments name features, not protocol section numbers or issue numbers", () => {
  // Built from pieces so this file does not match itself.
  const banned = new RegExp(["PROTOCOL" + " §", "\\b[Ii]ssue" + " #?\\d+", "bench/" + "README"].join("|"));
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!["node_modules", "gen", "build", "results"].includes(entry.name)) walk(path);
      } else if (/\.(ts|mts|mjs|js|c|h|md)$/.test(entry.name)) {
        readFileSync(path, "utf8")
          .split("\n")
          .forEach((line, i) => {
            if (banned.test(line)) found.push(`${path.slice(ROOT.length + 1)}:${i + 1}: ${line.trim()}`);
          });
      }
    }
  };
  for (const dir of ["src", "native", "test", "bench", "scripts"]) walk(join(ROOT, dir));
  assert.deepEqual(found, []);
});

test("README.md's documentation map lists every docs/*.md", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const missing = readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .filter((f) => !readme.includes(`](docs/${f})`));
  assert.deepEqual(missing, [], "add these to the table under 'Documentation' in README.md");
});
