// `envd COMMAND`: the subcommands people inside the sandbox use, run as processes (dist/main.js
// and the release bundle) against a real daemon, checked by what they print and exit with.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { waitFor } from "./process-helpers.js";
import { haveV1Controllers } from "./limits-helpers.js";
import { ensureRelease, RELEASE } from "./helpers/release.js";

const ROOT = new URL("..", import.meta.url).pathname;
const noV1 = !haveV1Controllers() && "cgroup v1 memory/pids/cpu/cpuacct controllers are not mounted";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `envd ARGS` (dist/main.js unless another entry is given) to its end. */
function envd(args: string[], env: Record<string, string>, entry = join(ROOT, "dist/main.js"), input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], { env: { ...process.env, ENVD_ACCESS_TOKEN: "", ...env }, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function jsonOf(r: Run) {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe("envd subcommands against a daemon", () => {
  let d: Daemon;
  let env: Record<string, string>;
  let dir: string;

  before(async () => {
    d = await startDaemon();
    env = { ENVD_PORT: String(d.port) };
    dir = mkdtempSync(join(tmpdir(), "envd-cli-"));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    assert.equal(await d.stop(), 0);
  });

  it("envd exec streams stdout and stderr apart and exits with the command's code", async () => {
    const r = await envd(["exec", "--tag", "seven", "--", "sh", "-c", "echo out; echo err >&2; exit 7"], env);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
  });

  it("envd exec -i forwards stdin to the command, then EOF", async () => {
    const r = await envd(["exec", "-i", "--", "sh", "-c", "tr a-z A-Z; echo eof"], env, undefined, "hello\nworld\n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "HELLO\nWORLD\neof\n");
  });

  it("envd exec: killed by a signal exits 128+n and says how it ended", async () => {
    const r = await envd(["exec", "--", "sh", "-c", "kill -USR1 $$"], env);
    assert.equal(r.code, 128 + 10);
    assert.match(r.stderr, /signaled SIGUSR1/);
  });

  it("envd exec --memory 64M: an allocation of 256M is OOM killed, exit 137", { skip: noV1 }, async () => {
    const r = await envd(["exec", "--memory", "64M", "--user", "user", "--", "perl", "-e", 'my $s = "x" x (256 << 20); print "done\\n"'], env);
    assert.equal(r.code, 137);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /oom_killed/);
  });

  it("envd exec with limits, user and a restart policy; envd ps shows them with outcome and usage", async () => {
    const r = await envd(["exec", "--tag", "flaky", "--user", "user", "--pids", "64", "--cpu-time", "10s", "--restart", "on-failure", "--max-restarts", "2", "--backoff", "10ms", "--", "sh", "-c", "id -un; exit 3"], env);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, "user\nuser\nuser\n");
    assert.equal((r.stderr.match(/restarting in/g) ?? []).length, 2);
    const [p] = jsonOf(await envd(["ps", "--json", "--tag", "flaky"], env));
    assert.equal(p.state, "stopped");
    assert.equal(p.restartCount, 2);
    assert.equal(p.exit.outcome, "exited");
    assert.equal(p.exit.exitCode, 3);
    assert.equal(p.user, "user");
    assert.equal(p.runs.length, 3);
    assert.ok(p.enforcement.some((e: string) => e.startsWith("pids_max")), JSON.stringify(p.enforcement));
    assert.ok(typeof p.usage.cpuUserUs === "number");

    const table = await envd(["ps"], env);
    assert.equal(table.code, 0);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^ID\s+PID\s+TAG\s+STATE\s+OUTCOME\s+RESTARTS\s+CPU\s+MEM\s+TIME\s+USER\s+COMMAND$/);
    assert.ok(lines.some((l) => /\bflaky\s+stopped\s+exited 3\s+2\b.*user\s+sh -c 'id -un; exit 3'$/.test(l)), table.stdout);
  });

  it("envd ps lists running processes first; envd kill -s sends any signal and stops restarts", async () => {
    const started = await envd(["exec", "-d", "--tag", "sleeper", "--restart", "always", "--", "sleep", "600"], env);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    assert.match(id, /^\d+$/);
    const running = jsonOf(await envd(["ps", "--json", "--running"], env));
    assert.deepEqual(running.map((p: { id: number }) => String(p.id)), [id]);
    const all = jsonOf(await envd(["ps", "--json"], env));
    assert.equal(String(all[0].id), id, "running first");

    const k = await envd(["kill", "-s", "USR2", id], env);
    assert.equal(k.code, 0, k.stderr);
    await waitFor(async () => jsonOf(await envd(["ps", "--json", "--tag", "sleeper"], env))[0].state === "stopped", 20_000, "the sleeper to stop");
    const [p] = jsonOf(await envd(["ps", "--json", "--tag", "sleeper"], env));
    assert.equal(p.exit.outcome, "signaled");
    assert.equal(p.exit.signalName, "SIGUSR2");
    assert.equal(p.restartCount, 0, "no restart after envd kill");

    const missing = await envd(["kill", "no-such-tag"], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^envd kill: \[not_found\]/);
  });

  it("envd logs replays held output (stdout and stderr apart), from an offset too; -f follows to the end", async () => {
    const done = await envd(["exec", "--tag", "chatty", "--", "sh", "-c", "echo one; echo two >&2; echo three"], env);
    assert.equal(done.code, 0);
    const r = await envd(["logs", "chatty"], env);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, "one\nthree\n");
    assert.equal(r.stderr, "two\n");
    const chunks: { stream: string; offset: number; data: string }[] = (await envd(["logs", "chatty", "--json"], env)).stdout.trim().split("\n").map((l) => JSON.parse(l));
    // How the bytes were cut into chunks depends on timing; offsets are contiguous either way.
    let next = 0;
    for (const c of chunks) {
      assert.equal(c.offset, next);
      next += Buffer.byteLength(c.data);
    }
    assert.equal(chunks.filter((c) => c.stream === "stdout").map((c) => c.data).join(""), "one\nthree\n");
    assert.equal(chunks.filter((c) => c.stream === "stderr").map((c) => c.data).join(""), "two\n");
    const last = chunks.at(-1)!;
    const from = await envd(["logs", "chatty", "--from", String(last.offset)], env);
    assert.equal(last.stream === "stderr" ? from.stderr : from.stdout, last.data);
    assert.equal(last.stream === "stderr" ? from.stdout : from.stderr, "");

    const marker = join(dir, "go");
    const bg = await envd(["exec", "-d", "--tag", "slow", "--", "sh", "-c", `echo early; while [ ! -e ${marker} ]; do sleep 0.05; done; echo late`], env);
    assert.equal(bg.code, 0);
    // The late line is released only once the follower printed the early one, so it can only arrive live.
    const follower = spawn(process.execPath, [join(ROOT, "dist/main.js"), "logs", "-f", "slow"], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let followed = "";
    follower.stdout.on("data", (c) => {
      followed += c;
      if (followed.includes("early")) writeFileSync(marker, "");
    });
    const code = await new Promise((r) => follower.on("close", r));
    assert.equal(code, 0);
    assert.equal(followed, "early\nlate\n");

    const bad = await envd(["logs", "slow", "--from", "yesterday"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from: 'yesterday'/);
  });

  it("envd top prints the sandbox's usage and each running process, as text and as JSON lines", async () => {
    const bg = await envd(["exec", "-d", "--tag", "busy", "--", "sh", "-c", "while :; do :; done"], env);
    assert.equal(bg.code, 0);
    try {
      const j = await envd(["top", "-n", "3", "-d", "0.2", "--json"], env);
      assert.equal(j.code, 0, j.stderr);
      const samples = j.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(samples.length, 3);
      assert.ok(samples.every((s) => s.usage.memoryTotalBytes > 0 && s.usage.cpuCount > 0));
      const busy = samples.at(-1).processes.find((p: { tag?: string }) => p.tag === "busy");
      assert.ok(busy, "the busy loop is listed");
      assert.ok(busy.cpuPercent > 0, `cpu ${busy.cpuPercent}`);
      const t = await envd(["top", "-n", "1"], env);
      assert.equal(t.code, 0);
      assert.match(t.stdout, /^envd top - .*load/);
      assert.match(t.stdout, /\bbusy\b.*while :; do :; done/);
    } finally {
      await envd(["kill", "-s", "KILL", "busy"], env);
    }
  });

  it("envd proxy add, ls and rm; envd ports lists listeners", async () => {
    const add = await envd(["proxy", "add", "--id", "cli-proxy", "--json", "127.0.0.1:0", `127.0.0.1:${d.port}`], env);
    const created = jsonOf(add);
    assert.equal(created.id, "cli-proxy");
    const res = await fetch(`http://${created.boundAddress}/health`);
    assert.equal(res.status, 204);
    const ls = await envd(["proxy", "ls"], env);
    assert.match(ls.stdout, new RegExp(`^cli-proxy\\s+tcp\\s+${created.boundAddress.replace(/\./g, "\\.")}\\s+127\\.0\\.0\\.1:${d.port}\\s+manual\\s+\\d+/\\d+`, "m"));
    const ports = jsonOf(await envd(["ports", "--json"], env));
    const bound = Number(created.boundAddress.split(":")[1]);
    assert.ok(ports.some((p: { port: number }) => p.port === bound), "the proxy's listener is listed");
    assert.equal((await envd(["proxy", "rm", "cli-proxy"], env)).code, 0);
    const again = await envd(["proxy", "rm", "cli-proxy"], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[not_found\]/);
    const usage = await envd(["proxy", "add", "--type", "gopher", "a:1", "b:2"], env);
    assert.equal(usage.code, 2);
  });

  it("usage errors exit 2 with a hint; an unreachable daemon exits 1; the daemon's own flags are untouched", async () => {
    const unknown = await envd(["frobnicate"], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^envd: Unexpected argument 'frobnicate'.*\nRun 'envd --help' for the flags\.\n$/s, "not a subcommand: the daemon's own error");
    const overview = await envd(["help"], env);
    const names = [...overview.stdout.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1]!);
    assert.deepEqual(names, ["ps", "logs", "exec", "kill", "top", "proxy", "ports"]);
    for (const name of names) {
      const h = await envd([name, "--help"], env);
      assert.equal(h.code, 0, `${name} is dispatched to the subcommands`);
      assert.match(h.stdout, new RegExp(`^Usage: envd ${name}`));
    }
    const noCmd = await envd(["exec"], env);
    assert.equal(noCmd.code, 2);
    assert.match(noCmd.stderr, /no command/);
    const badFlag = await envd(["ps", "--bogus"], env);
    assert.equal(badFlag.code, 2);
    const down = await envd(["ps"], { ENVD_PORT: "1" });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /\[unavailable\]/);
    const help = await envd(["--help"], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--port VALUE/);
    assert.match(help.stdout, /envd COMMAND/);
    const version = await envd(["-version"], env);
    assert.equal(version.stdout, "0.6.13\n");
  });
});

describe("the daemon does not load the subcommands", () => {
  // A module loader hook writes down every module a process loads from dist/.
  const hooks = `data:text/javascript,${encodeURIComponent(`
    import { appendFileSync } from "node:fs";
    export async function load(url, context, next) {
      if (url.includes("/dist/")) appendFileSync(process.env.LOADED_LOG, url + "\\n");
      return next(url, context);
    }`)}`;
  const register = `data:text/javascript,${encodeURIComponent(`import { register } from "node:module"; register(${JSON.stringify(hooks)});`)}`;

  it("a daemon start loads no module of dist/cli or dist/client; `envd ps` does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "envd-cli-load-"));
    try {
      const daemonLog = join(dir, "daemon");
      const d = await startDaemon({ env: { LOADED_LOG: daemonLog, NODE_OPTIONS: `--import=${register}` } });
      let cliLog = "";
      try {
        const r = await envd(["ps"], { ENVD_PORT: String(d.port), LOADED_LOG: join(dir, "cli"), NODE_OPTIONS: `--import=${register}` });
        assert.equal(r.code, 0, r.stderr);
        cliLog = readFileSync(join(dir, "cli"), "utf8");
      } finally {
        assert.equal(await d.stop(), 0);
      }
      const daemonLoaded = readFileSync(daemonLog, "utf8");
      assert.match(daemonLoaded, /\/dist\/main\.js/, "the hook saw the daemon's modules");
      assert.doesNotMatch(daemonLoaded, /\/dist\/(cli|client)\//);
      assert.match(cliLog, /\/dist\/cli\/index\.js/);
      assert.match(cliLog, /\/dist\/client\/index\.js/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("envd subcommands with an access token, and from the release bundle", () => {
  let d: Daemon;
  let bundle: string;

  before(async () => {
    d = await startDaemon({ args: ["--access-token", "cli-secret"] });
    ensureRelease();
    bundle = join(RELEASE, "envd.cjs");
    assert.ok(existsSync(bundle));
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("ENVD_ACCESS_TOKEN or --access-token is sent; without it the daemon refuses", async () => {
    const env = { ENVD_PORT: String(d.port) };
    const refused = await envd(["ps"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[unauthenticated\]/);
    assert.equal((await envd(["ps"], { ...env, ENVD_ACCESS_TOKEN: "cli-secret" })).code, 0);
    assert.equal((await envd(["ps", "--access-token", "cli-secret", "--port", String(d.port)], {})).code, 0);
  });

  it("the bundle of the single executable carries the subcommands", async () => {
    const env = { ENVD_PORT: String(d.port), ENVD_ACCESS_TOKEN: "cli-secret" };
    const r = await envd(["exec", "--tag", "bundled", "--", "sh", "-c", "echo from-bundle; exit 4"], env, bundle);
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, "from-bundle\n");
    const [p] = jsonOf(await envd(["ps", "--json", "--tag", "bundled"], env, bundle));
    assert.equal(p.exit.exitCode, 4);
  });

  it("so does the single executable", async () => {
    const env = { ...process.env, ENVD_PORT: String(d.port), ENVD_ACCESS_TOKEN: "cli-secret" };
    const run = (args: string[]) => spawnSync(join(RELEASE, "envd"), args, { env, encoding: "utf8", timeout: 60_000 });
    const r = run(["exec", "--tag", "sea", "--", "sh", "-c", "echo from-sea; kill -TERM $$"]);
    assert.equal(r.status, 128 + 15, r.stderr);
    assert.equal(r.stdout, "from-sea\n");
    const ps = run(["ps", "--tag", "sea"]);
    assert.equal(ps.status, 0, ps.stderr);
    assert.match(ps.stdout, /\bsea\s+stopped\s+signaled SIGTERM\b/);
  });
});
