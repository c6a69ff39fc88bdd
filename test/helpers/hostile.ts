// Helpers for the hostile, faults, pid1 and stress suites: raw sockets, HTTP parsing,
// descriptor and memory accounting of a daemon, and a few Connect wire shortcuts.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { request } from "node:http";
import { connect as tcpConnect } from "node:net";
import { envelope, splitFrames } from "./connect-wire.js";

/** A parsed HTTP/1.1 response as read off a raw socket. */
export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes after this response (a second response on the same connection). */
  rest: Buffer;
}

/** Parses one HTTP/1.1 response (Content-Length or chunked); undefined while incomplete. */
export function parseResponse(raw: Buffer): ParsedResponse | undefined {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let off = end + 4;
  if (headers["transfer-encoding"]?.includes("chunked")) {
    const parts: Buffer[] = [];
    for (;;) {
      const nl = raw.indexOf("\r\n", off);
      if (nl < 0) return undefined;
      const size = parseInt(raw.subarray(off, nl).toString("latin1"), 16);
      if (raw.length < nl + 2 + size + 2) return undefined;
      parts.push(raw.subarray(nl + 2, nl + 2 + size));
      off = nl + 2 + size + 2;
      if (size === 0) return { status, headers, body: Buffer.concat(parts), rest: raw.subarray(off) };
    }
  }
  const len = Number(headers["content-length"] ?? (status === 204 || status === 304 ? 0 : NaN));
  if (Number.isNaN(len)) return { status, headers, body: raw.subarray(off), rest: Buffer.alloc(0) };
  if (raw.length < off + len) return undefined;
  return { status, headers, body: raw.subarray(off, off + len), rest: raw.subarray(off + len) };
}

/** What a raw exchange saw: the bytes, whether the server closed, and the first response. */
export interface RawResult {
  raw: Buffer;
  closed: boolean;
  response: ParsedResponse | undefined;
}

/**
 * Writes `bytes` on a fresh connection and collects what comes back until a full response
 * arrived (or the server closed, or `ms` passed). `keepSending` keeps writing filler after the
 * request, as a client still uploading an oversized body would.
 */
export function rawExchange(port: number, bytes: Buffer | string, opts: { ms?: number; keepSending?: Buffer; waitForClose?: boolean } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = tcpConnect(port, "127.0.0.1");
    let raw = Buffer.alloc(0);
    let closed = false;
    let settled = false;
    let pump: NodeJS.Timeout | undefined;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearInterval(pump);
      clearTimeout(timer);
      sock.destroy();
      resolve({ raw, closed, response: parseResponse(raw) });
    };
    const timer = setTimeout(finish, opts.ms ?? 5000);
    sock.on("data", (b) => {
      raw = Buffer.concat([raw, b]);
      if (!opts.waitForClose && parseResponse(raw)) finish();
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      closed = true;
      finish();
    });
    sock.write(bytes);
    if (opts.keepSending) pump = setInterval(() => !sock.destroyed && sock.write(opts.keepSending!), 5);
  });
}

/** A raw HTTP/1.1 POST with an exact body and headers (keep-alive, unless told otherwise). */
export function rawPost(path: string, contentType: string, body: Buffer | string, extra: Record<string, string | number> = {}): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const hdrs = { host: "x", "content-type": contentType, "content-length": b.length, ...extra };
  const head = `POST ${path} HTTP/1.1\r\n` + Object.entries(hdrs).map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
  return Buffer.concat([Buffer.from(head, "latin1"), b]);
}

/** A Connect/gRPC envelope with arbitrary flags and a length prefix that may lie. */
export function rawEnvelope(flags: number, claimedLength: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(claimedLength >>> 0, 1);
  return Buffer.concat([head, Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]);
}

/** The JSON of the end-stream frame (flags 2) of a Connect streaming body. */
export function endStreamJson(body: Buffer): any {
  const { frames } = splitFrames(body);
  const end = frames.find((f) => f.flags & 2);
  return end ? JSON.parse(end.data.toString("utf8")) : undefined;
}

/** GET /health with a deadline: the status, or "timeout"/an error code. */
export function health(url: string, ms = 5000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
    req.setTimeout(ms, () => {
      req.destroy();
      resolve("timeout");
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    req.end();
  });
}

/** The daemon's open descriptors by kind (socket, pipe, inotify, file, ...) and in total. */
export function fdKinds(pid: number): { total: number; socket: number; pipe: number; inotify: number; file: number; other: number } {
  const out = { total: 0, socket: 0, pipe: 0, inotify: 0, file: 0, other: 0 };
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    out.total++;
    if (target.startsWith("socket:")) out.socket++;
    else if (target.startsWith("pipe:")) out.pipe++;
    else if (target === "anon_inode:inotify") out.inotify++;
    else if (target.startsWith("/")) out.file++;
    else out.other++;
  }
  return out;
}

/** Resident memory of a process in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** Polls `check` until it holds or `ms` pass; returns its last value. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 5000, every = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Samples of GET /metrics/prometheus, by metric name (labels folded into a sum). */
export async function prometheus(url: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics/prometheus`, { headers });
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[3]));
  }
  return out;
}

/** Basic auth for a user, as the SDK sends it. */
export function basic(user: string): string {
  return "Basic " + Buffer.from(`${user}:`).toString("base64");
}

/** Starts a command with process.Process/Start (Connect JSON over HTTP/1.1 fetch). */
export function startCommand(url: string, cmd: string, opts: { user?: string; tag?: string; signal?: AbortSignal; pty?: boolean; headers?: Record<string, string> } = {}): Promise<Response> {
  return fetch(`${url}/process.Process/Start`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", authorization: basic(opts.user ?? "user"), ...opts.headers },
    body: new Uint8Array(
      envelope({
        process: { cmd: "/bin/bash", args: ["-c", cmd] },
        ...(opts.tag ? { tag: opts.tag } : {}),
        ...(opts.pty ? { pty: { size: { cols: 80, rows: 24 } } } : {}),
      }),
    ),
    signal: opts.signal,
  });
}

/** One decoded event of a process stream. */
export interface ProcEvent {
  kind: string;
  json: any;
  text?: string;
}

/** Reads a process stream's frames as events until `stop` says so or it ends. */
export async function readProcessEvents(res: Response, stop: (events: ProcEvent[]) => boolean = () => false): Promise<ProcEvent[]> {
  const out: ProcEvent[] = [];
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending = Buffer.concat([pending, chunk]);
    const { frames, rest } = splitFrames(pending);
    pending = rest;
    for (const f of frames) {
      const json = JSON.parse(f.data.toString("utf8"));
      if (f.flags & 2) {
        out.push({ kind: json.error ? "error" : "eos", json });
        return out;
      }
      const ev = json.event ?? {};
      const kind = Object.keys(ev)[0] ?? "unknown";
      const d = ev.data;
      const text = d ? Buffer.from(d.stdout ?? d.stderr ?? d.pty ?? "", "base64").toString("utf8") : undefined;
      out.push({ kind: d ? (d.stdout ? "stdout" : d.stderr ? "stderr" : "pty") : kind, json: ev, text });
      if (stop(out)) return out;
    }
  }
  return out;
}

/** A unary Connect JSON call: status and parsed body. */
export async function unaryJson(url: string, method: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/${method}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** Finds the pid of the node process running dist/main.js under `rootPid` (itself or a descendant). */
export function daemonPidUnder(rootPid: number): number | undefined {
  const cmd = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      return "";
    }
  };
  if (cmd(rootPid).includes("dist/main.js") && !cmd(rootPid).startsWith("unshare")) return rootPid;
  const children = new Map<number, number[]>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      /* gone */
    }
  }
  const stack = [...(children.get(rootPid) ?? [])];
  while (stack.length) {
    const p = stack.shift()!;
    if (cmd(p).includes("dist/main.js")) return p;
    stack.push(...(children.get(p) ?? []));
  }
  return undefined;
}

/** Process states (R, S, Z, ...) of the children of `pid`, by child pid. */
export function childStates(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === pid) out.set(Number(e), f[0]!);
    } catch {
      /* gone */
    }
  }
  return out;
}
