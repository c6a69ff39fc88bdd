// Deployment files, checked as far as this machine allows (there is no Docker engine and
// no Kubernetes): the systemd unit with `systemd-analyze verify` against the built binary;
// the Dockerfile with dockerfile-utils' linter plus its meaning (stages, user, healthcheck,
// entrypoint), and its ENTRYPOINT + CMD and HEALTHCHECK run for real against release/envd;
// the Kubernetes example parsed as YAML with its probes on /health at port 49983.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { parseAllDocuments } from "yaml";
import { parseCli } from "../src/config.js";
import { ensureRelease, RELEASE, ROOT, startCommand } from "./helpers/release.js";

const DEPLOY = join(ROOT, "deploy");

/** A systemd unit as section → key → values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      sections.set(section[1]!, (current = new Map()));
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(current && eq > 0, `unit line outside a section or without '=': ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

/** The daemon flags of a command line, checked by the daemon's own parser. */
function assertDaemonFlags(flags: string[]): void {
  const parsed = parseCli(flags, {});
  assert.equal(parsed.kind, "run", `flags ${flags.join(" ")}`);
}

describe("deployment files", { timeout: 120_000 }, () => {
  let scratch: string;
  before(() => {
    ensureRelease();
    scratch = mkdtempSync(join(tmpdir(), "envd-deploy-"));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  describe("systemd unit deploy/envd.service", () => {
    const text = readFileSync(join(DEPLOY, "envd.service"), "utf8");

    it("has E2B's protections: OOMScoreAdjust=-1000, Delegate=yes, Restart=always, no start limit", () => {
      const unit = parseUnit(text);
      const service = unit.get("Service")!;
      const one = (k: string) => {
        assert.equal(service.get(k)?.length, 1, `${k} once`);
        return service.get(k)![0];
      };
      assert.equal(one("OOMScoreAdjust"), "-1000");
      assert.equal(one("OOMPolicy"), "continue");
      assert.equal(one("Delegate"), "yes");
      assert.equal(one("Restart"), "always");
      assert.equal(one("Type"), "simple");
      assert.equal(one("User"), "root");
      assert.equal(unit.get("Unit")!.get("StartLimitIntervalSec")?.[0], "0");
      assert.equal(unit.get("Install")!.get("WantedBy")?.[0], "multi-user.target");
      const [bin, ...flags] = one("ExecStart")!.split(/\s+/);
      assert.equal(bin, "/usr/bin/envd");
      assertDaemonFlags(flags);
      assert.ok(flags.join(" ").includes("--port 49983"));
    });

    it("passes `systemd-analyze verify` with ExecStart pointing at the built release/envd", () => {
      const dir = mkdtempSync(join(scratch, "unit-"));
      const copy = join(dir, "envd.service");
      writeFileSync(copy, text.replace("ExecStart=/usr/bin/envd", `ExecStart=${join(RELEASE, "envd")}`));
      const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), "", "no warnings");

      // The check can fail: a misspelt key and an out-of-range value are reported.
      writeFileSync(copy, text.replace("ExecStart=/usr/bin/envd", `ExecStart=${join(RELEASE, "envd")}`).replace("Delegate=yes", "Delegat=yes").replace("OOMScoreAdjust=-1000", "OOMScoreAdjust=-1001"));
      const bad = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      assert.match(bad.stderr, /Unknown key 'Delegat'/);
      assert.match(bad.stderr, /OOM score adjust value out of range/);
    });
  });

  describe("deploy/Dockerfile", () => {
    const text = readFileSync(join(DEPLOY, "Dockerfile"), "utf8");
    const df = DockerfileParser.parse(text);
    const json = (content: string | null) => JSON.parse(content!.slice(content!.indexOf("["))) as string[];

    it("lints clean with dockerfile-utils", () => {
      assert.deepEqual(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
      // The linter does report problems.
      assert.ok(validate("FROM debian\nHEALTHCHECK --interval=x CMD true\nFOO bar\n").length >= 2);
    });

    it("builds in a Node stage and ships only release/envd on Debian with a `user` account", () => {
      const froms = df.getFROMs();
      assert.equal(froms.length, 2);
      assert.equal(froms[0]!.getImageName(), "node");
      assert.match(froms[0]!.getImageTag() ?? "", /^20-bookworm/);
      assert.equal(froms[0]!.getBuildStage(), "build");
      assert.equal(froms[1]!.getImageName(), "debian");
      assert.match(froms[1]!.getImageTag() ?? "", /^bookworm/);

      const instructions = df.getInstructions();
      const finalStage = instructions.slice(instructions.indexOf(froms[1]!));
      const buildStage = instructions.slice(0, instructions.indexOf(froms[1]!));
      // Every build-stage COPY source exists in the repository, and the build runs our script.
      for (const copy of buildStage.filter((i) => i.getKeyword() === "COPY")) {
        const args = copy.getArguments().map((a) => a.getValue());
        for (const src of args.slice(0, -1)) assert.ok(existsSync(join(ROOT, src)), `COPY source ${src}`);
      }
      const run = buildStage.find((i) => i.getKeyword() === "RUN")!.getArgumentsContent()!;
      assert.match(run, /npm ci && npm run build:release/);
      assert.ok(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts["build:release"]);

      const copies = df.getCOPYs().filter((c) => finalStage.includes(c));
      const fromBuild = copies.filter((c) => c.getFromFlag()?.getValue() === "build").map((c) => c.getArgumentsContent());
      assert.deepEqual(fromBuild, ["/src/release/envd /usr/bin/envd"]);
      assert.ok(!copies.some((c) => /node_modules/.test(c.getArgumentsContent() ?? "")), "no node_modules in the image");
      const runs = finalStage.filter((i) => i.getKeyword() === "RUN").map((i) => i.getArgumentsContent() ?? "").join("\n");
      assert.match(runs, /useradd --create-home --home-dir \/home\/user --shell \/bin\/bash user/);
      assert.match(runs, /\btini\b/);
      assert.ok(finalStage.some((i) => i.getKeyword() === "EXPOSE" && i.getArgumentsContent() === "49983"));
      assert.ok(copies.some((c) => c.getArgumentsContent() === "deploy/envd.service /etc/systemd/system/envd.service"));
    });

    it("its ENTRYPOINT + CMD and HEALTHCHECK work when run against release/envd", async () => {
      const entrypoint = json(df.getENTRYPOINTs()[0]!.getArgumentsContent());
      const cmd = json(df.getCMDs()[0]!.getArgumentsContent());
      const health = df.getHEALTHCHECKs()[0]!;
      const healthCmd = json(health.getArgumentsContent());
      assert.deepEqual(entrypoint.slice(0, 2), ["/usr/bin/tini", "--"]);
      assert.equal(entrypoint[2], "/usr/bin/envd");
      assert.deepEqual(healthCmd, ["/usr/bin/envd", "--probe"]);
      assertDaemonFlags(cmd);

      // The image's command line with the binary at its place in this checkout. Port 0 and a
      // private run dir only because this machine is not a container; the flags are the image's.
      const bin = join(mkdtempSync(join(scratch, "image-")), "envd");
      copyFileSync(join(RELEASE, "envd"), bin);
      const swap = (argv: string[]) => argv.map((a) => (a === "/usr/bin/envd" ? bin : a));
      const hasTini = existsSync("/usr/bin/tini");
      const argv = swap(hasTini ? [...entrypoint, ...cmd] : [...entrypoint.slice(2), ...cmd]);
      const d = await startCommand(argv, { cwd: scratch, env: { PATH: "/usr/bin:/bin", XDG_RUNTIME_DIR: mkdtempSync(join(scratch, "xdg-")) }, runDir: mkdtempSync(join(scratch, "run-")) });
      try {
        const probe = spawnSync(swap(healthCmd)[0]!, [...swap(healthCmd).slice(1), "--port", String(d.port)], { encoding: "utf8" });
        assert.equal(probe.status, 0, probe.stdout + probe.stderr);
        // CMD's --default-user user is in effect.
        const env = await fetch(`${d.url}/envs`);
        assert.equal(env.status, 200);
      } finally {
        // tini forwards SIGTERM; the daemon stops cleanly.
        assert.equal(await d.stop(), 0);
      }
    });
  });

  describe("Kubernetes example deploy/k8s/sandbox-pod.yaml", () => {
    const docs = parseAllDocuments(readFileSync(join(DEPLOY, "k8s/sandbox-pod.yaml"), "utf8"));

    it("parses as YAML without errors or warnings", () => {
      for (const doc of docs) {
        assert.deepEqual(doc.errors, []);
        assert.deepEqual(doc.warnings, []);
      }
    });

    it("runs envd-ts in a Pod with readiness and liveness probes on GET /health at 49983", () => {
      const objects = docs.map((d) => d.toJS()) as any[];
      const pod = objects.find((o) => o.kind === "Pod");
      assert.equal(pod.apiVersion, "v1");
      const [container] = pod.spec.containers;
      assert.match(container.image, /^envd-ts-sandbox:/);
      assertDaemonFlags(container.args);
      const ports = new Map<string, number>(container.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
      const resolvePort = (port: string | number) => (typeof port === "number" ? port : ports.get(port));
      for (const probe of ["readinessProbe", "livenessProbe"]) {
        const p = container[probe];
        assert.ok(p, probe);
        assert.equal(p.httpGet.path, "/health", probe);
        assert.equal(resolvePort(p.httpGet.port), 49983, probe);
        assert.ok(p.periodSeconds > 0 && p.timeoutSeconds > 0, probe);
      }
      // The token comes from a Secret defined alongside; /health needs none, so probes pass.
      const tokenEnv = container.env.find((e: { name: string }) => e.name === "ENVD_ACCESS_TOKEN");
      const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name === tokenEnv.valueFrom.secretKeyRef.name);
      assert.ok(secret?.stringData?.[tokenEnv.valueFrom.secretKeyRef.key]);
      const service = objects.find((o) => o.kind === "Service");
      assert.deepEqual(service.spec.selector, pod.metadata.labels);
      assert.equal(resolvePort(service.spec.ports[0].targetPort), 49983);
    });
  });
});
