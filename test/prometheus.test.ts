// Prometheus exposition at GET /metrics/prometheus, read back with real parsers: the npm
// package parse-prometheus-text-format, Prometheus' own Python client parser (Debian's
// python3-prometheus-client) for labelled histograms, and `promtool check metrics` when it is
// installed. E2B's JSON GET /metrics must stay as it was.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { once } from "node:events";
import parsePrometheusText from "parse-prometheus-text-format";
import { ProxyType } from "../src/gen/envdts/v1/proxy_pb.js";
import { MetricsRegistry } from "../src/system/metrics-registry.js";
import { renderPrometheusText } from "../src/system/prometheus-text.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";
import { closeServer, listenLocal, proxyClient } from "./helpers/proxy.js";

const TOKEN = "prometheus-test-token";
const SYSTEM_PYTHON = "/usr/bin/python3";

interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}

/** Parses with the npm parser; it throws on lines it cannot read. */
function parseNpm(text: string): Map<string, ParsedFamily> {
  const families = (parsePrometheusText as unknown as (t: string) => ParsedFamily[])(text);
  return new Map(families.map((f) => [f.name, f]));
}

interface PySample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const hasPythonClient = existsSync(SYSTEM_PYTHON) && spawnSync(SYSTEM_PYTHON, ["-c", "import prometheus_client.parser"]).status === 0;

/** Parses with prometheus_client.parser.text_string_to_metric_families (the reference parser). */
function parsePython(text: string): Map<string, { type: string; samples: PySample[] }> {
  const script = [
    "import sys, json, math",
    "from prometheus_client.parser import text_string_to_metric_families",
    "out = {}",
    "for f in text_string_to_metric_families(sys.stdin.read()):",
    "    out[f.name] = {'type': f.type, 'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]}",
    "print(json.dumps(out))",
  ].join("\n");
  const r = spawnSync(SYSTEM_PYTHON, ["-c", script], { input: text, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return new Map(Object.entries(JSON.parse(r.stdout) as Record<string, { type: string; samples: PySample[] }>));
}

function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const f = families.get(name);
  if (!f) return undefined;
  const m = f.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

describe("prometheus text rendering", () => {
  it("escapes help and label values so both parsers read back the exact strings", () => {
    const reg = new MetricsRegistry();
    const awkward = 'a "quoted" \\ back\nslash';
    reg.counter("t_escapes_total", "help with \\ and\nnewline", ["v"]).inc({ v: awkward }, 3);
    reg.registerGauge("t_callback", "gauge from a callback", () => [
      { labels: { k: "x" }, value: 1.5 },
      { labels: { k: "y" }, value: Infinity },
    ]);
    const h = reg.histogram("t_latency_seconds", "latency", ["route"], [0.1, 1]);
    h.observe({ route: "/a" }, 0.05);
    h.observe({ route: "/a" }, 0.5);
    h.observe({ route: "/a" }, 5);
    h.observe({ route: "/b" }, 0.2);
    reg.registerGauge("t_broken", "a callback that throws is left out", () => {
      throw new Error("boom");
    });
    const text = renderPrometheusText(reg.collect());

    const npm = parseNpm(text);
    assert.equal(npm.get("t_escapes_total")?.help, "help with \\ and\nnewline");
    assert.equal(npm.get("t_escapes_total")?.type, "COUNTER");
    assert.deepEqual(npm.get("t_escapes_total")?.metrics, [{ value: "3", labels: { v: awkward } }]);
    assert.equal(value(npm, "t_callback", { k: "x" }), 1.5);
    assert.equal(npm.get("t_callback")?.metrics.find((m) => m.labels?.k === "y")?.value, "+Inf");
    assert.equal(npm.has("t_broken"), false);

    if (!hasPythonClient) return;
    const py = parsePython(text);
    const hist = py.get("t_latency_seconds")!;
    assert.equal(hist.type, "histogram");
    const a = (suffix: string, le?: string) =>
      hist.samples.find((s) => s.name === `t_latency_seconds${suffix}` && s.labels.route === "/a" && (le === undefined || s.labels.le === le))?.value;
    assert.equal(a("_bucket", "0.1"), 1);
    assert.equal(a("_bucket", "1.0") ?? a("_bucket", "1"), 2);
    assert.equal(a("_bucket", "+Inf"), 3);
    assert.equal(a("_count"), 3);
    assert.equal(a("_sum"), 5.55);
    assert.equal(py.get("t_escapes")?.samples[0]?.labels.v, awkward);
  });
});

describe("GET /metrics/prometheus", { timeout: 60_000 }, () => {
  let d: Daemon;
  const echo = createServer((s) => s.pipe(s));
  const echoSockets = new Set<Socket>();
  echo.on("connection", (s) => (echoSockets.add(s), s.on("close", () => echoSockets.delete(s))));
  const auth = { "x-access-token": TOKEN };

  before(async () => {
    d = await startDaemon({ args: ["--access-token", TOKEN] });
  });
  after(async () => {
    await closeServer(echo, echoSockets);
    assert.equal(await d.stop(), 0);
  });

  const stat = (path: string) =>
    fetch(`${d.url}/filesystem.Filesystem/Stat`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ path }) });

  it("needs the access token like every non-exempt route", async () => {
    const res = await fetch(`${d.url}/metrics/prometheus`);
    assert.equal(res.status, 401);
    await res.arrayBuffer();
  });

  it("counts requests per route, RPC codes, errors, proxies and the daemon's own resources", async () => {
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${d.url}/health`)).status, 204);
    assert.equal((await stat("/tmp")).status, 200);
    const missing = await stat("/definitely/not/here");
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const unmatched = await fetch(`${d.url}/no/such/route/${Math.random()}`, { headers: auth });
    assert.equal(unmatched.status, 404);
    await unmatched.arrayBuffer();

    // A TCP proxy carrying 10,000 bytes each way.
    const echoPort = await listenLocal(echo);
    const created = await proxyClient(d.url, TOKEN).createProxy({
      config: { id: "prom-tcp", type: ProxyType.TCP, localAddress: "127.0.0.1:0", remoteAddress: `127.0.0.1:${echoPort}` },
    });
    const proxyPort = Number(created.proxy!.boundAddress.split(":").pop());
    const sock = connect({ host: "127.0.0.1", port: proxyPort });
    await once(sock, "connect");
    const payload = Buffer.alloc(10_000, 7);
    let got = 0;
    const echoed = new Promise<void>((resolve) => sock.on("data", (c: Buffer) => ((got += c.length), got >= payload.length && resolve())));
    sock.write(payload);
    await echoed;

    const res = await fetch(`${d.url}/metrics/prometheus`, { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const m = parseNpm(text);

    assert.equal(m.get("envd_http_requests_total")?.type, "COUNTER");
    assert.equal(value(m, "envd_http_requests_total", { method: "GET", route: "/health", status: "204" }), 3);
    assert.equal(value(m, "envd_http_requests_total", { method: "GET", route: "unmatched", status: "404" }), 1);
    // Raw paths never become labels.
    assert.ok(!text.includes("/no/such/route"));
    assert.equal(value(m, "envd_rpc_requests_total", { procedure: "/filesystem.Filesystem/Stat", code: "ok" }), 1);
    assert.equal(value(m, "envd_rpc_requests_total", { procedure: "/filesystem.Filesystem/Stat", code: "not_found" }), 1);
    assert.equal(value(m, "envd_errors_total", { kind: "rpc", route: "/filesystem.Filesystem/Stat" }), 1);
    assert.equal(m.get("envd_http_request_duration_seconds")?.type, "HISTOGRAM");

    assert.equal(value(m, "envd_proxies_active", { kind: "tcp" }), 1);
    assert.equal(value(m, "envd_proxy_connections_active", { proxy: "prom-tcp" }), 1);
    assert.equal(value(m, "envd_proxy_bytes_total", { proxy: "prom-tcp", direction: "from_clients" }), 10_000);
    assert.equal(value(m, "envd_proxy_bytes_total", { proxy: "prom-tcp", direction: "to_clients" }), 10_000);

    assert.equal(m.get("process_cpu_seconds_total")?.type, "COUNTER");
    assert.ok(value(m, "process_cpu_seconds_total")! > 0);
    assert.ok(value(m, "process_resident_memory_bytes")! > 10 * 1024 * 1024);
    assert.ok(value(m, "process_open_fds")! > 3);
    assert.ok(Math.abs(value(m, "process_start_time_seconds")! - Date.now() / 1000) < 120);
    assert.equal(value(m, "envd_info", { envd_version: "0.6.13" }), 1);
    const sentBefore = value(m, "envd_http_sent_bytes_total")!;
    assert.ok(sentBefore > 0);
    assert.ok(value(m, "envd_http_connections_total")! >= 1);

    if (hasPythonClient) {
      const py = parsePython(text);
      const h = py.get("envd_http_request_duration_seconds")!;
      const health = h.samples.filter((s) => s.labels.route === "/health" && s.labels.method === "GET");
      const buckets = health.filter((s) => s.name.endsWith("_bucket"));
      assert.ok(buckets.length > 2);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, "buckets are cumulative");
      assert.equal(buckets.at(-1)!.labels.le, "+Inf");
      assert.equal(buckets.at(-1)!.value, 3);
      assert.equal(health.find((s) => s.name.endsWith("_count"))?.value, 3);
    }

    if (spawnSync("promtool", ["--version"]).status === 0) {
      const lint = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      assert.equal(lint.status, 0, lint.stdout + lint.stderr);
    }

    // The scrape itself went out through the port: the next scrape counts its bytes.
    const again = parseNpm(await (await fetch(`${d.url}/metrics/prometheus`, { headers: auth })).text());
    assert.ok(value(again, "envd_http_sent_bytes_total")! >= sentBefore + text.length);
    assert.equal(value(again, "envd_http_requests_total", { method: "GET", route: "/metrics/prometheus", status: "200" }), 1);

    sock.destroy();
    await proxyClient(d.url, TOKEN).deleteProxy({ id: "prom-tcp" });
    const afterDelete = parseNpm(await (await fetch(`${d.url}/metrics/prometheus`, { headers: auth })).text());
    assert.equal(value(afterDelete, "envd_proxies_active", { kind: "tcp" }), undefined);
  });

  it("shows live processes, PTYs and watchers as gauges", async () => {
    const scrape = async () => parseNpm(await (await fetch(`${d.url}/metrics/prometheus`, { headers: auth })).text());
    const before = await scrape();
    assert.equal(value(before, "envd_processes_active", {}), 0);
    assert.equal(value(before, "envd_watchers_active", {}), 0);
    // A PTY shell and a polling watcher, through Connect JSON as any client would.
    const rpc = (path: string, body: unknown, streaming = false) => {
      const json = Buffer.from(JSON.stringify(body));
      const payload = streaming ? Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), json]) : json;
      if (streaming) payload.writeUInt32BE(json.length, 1);
      return fetch(`${d.url}${path}`, {
        method: "POST",
        headers: { ...auth, "content-type": streaming ? "application/connect+json" : "application/json", "connect-protocol-version": "1" },
        body: payload,
      });
    };
    const ctl = new AbortController();
    const started = await fetch(`${d.url}/process.Process/Start`, {
      method: "POST",
      signal: ctl.signal,
      headers: { ...auth, "content-type": "application/connect+json", "connect-protocol-version": "1" },
      body: (() => {
        const json = Buffer.from(JSON.stringify({ process: { cmd: "/bin/sleep", args: ["30"] }, pty: { size: { cols: 80, rows: 24 } }, tag: "prom-pty" }));
        const b = Buffer.alloc(5 + json.length);
        b.writeUInt32BE(json.length, 1);
        json.copy(b, 5);
        return b;
      })(),
    });
    assert.equal(started.status, 200);
    const reader = started.body!.getReader();
    await reader.read(); // the start event
    const watcher = await rpc("/filesystem.Filesystem/CreateWatcher", { path: "/tmp" });
    assert.equal(watcher.status, 200);
    const { watcherId } = (await watcher.json()) as { watcherId: string };
    const live = await scrape();
    assert.equal(value(live, "envd_processes_active", {}), 1);
    assert.equal(value(live, "envd_ptys_active", {}), 1);
    assert.equal(value(live, "envd_watchers_active", {}), 1);
    assert.equal(value(live, "envd_watchers_polling", {}), 1);
    assert.equal((await rpc("/filesystem.Filesystem/RemoveWatcher", { watcherId })).status, 200);
    assert.equal((await rpc("/process.Process/SendSignal", { process: { tag: "prom-pty" }, signal: "SIGNAL_SIGKILL" })).status, 200);
    ctl.abort();
    // The end of a killed process is processed asynchronously after SendSignal answers.
    let done = await scrape();
    for (let i = 0; i < 100 && value(done, "envd_processes_active", {}) !== 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      done = await scrape();
    }
    assert.equal(value(done, "envd_processes_active", {}), 0);
    assert.equal(value(done, "envd_ptys_active", {}), 0);
    assert.equal(value(done, "envd_watchers_active", {}), 0);
  });

  it("leaves E2B's JSON GET /metrics unchanged", async () => {
    const res = await fetch(`${d.url}/metrics`, { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ["cpu_count", "cpu_used_pct", "disk_total", "disk_used", "mem_cache", "mem_total", "mem_total_mib", "mem_used", "mem_used_mib", "ts"]);
  });
});
