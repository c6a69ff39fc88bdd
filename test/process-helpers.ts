// Shared helpers for the process tests: real clients (the e2b SDK, @grpc/grpc-js
// over h2c, connect-node) against a real daemon. Not a test file itself.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Daemon } from "./helpers/daemon.js";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));

/** The e2b SDK pointed at a daemon (debug mode: no API calls). */
export async function e2bSandbox(d: Daemon) {
  process.env.E2B_DEBUG = "true";
  process.env.E2B_SANDBOX_URL = d.url;
  const e2b = await import("e2b");
  const sbx = await e2b.Sandbox.create();
  return { e2b, sbx };
}

/** gRPC stubs for process.Process and envdts.v1.ProcessControl over h2c, loaded from our .proto files. */
export function grpcClients(d: Daemon) {
  const def = protoLoader.loadSync(["process.proto", "envdts/v1/process_ext.proto"], {
    includeDirs: [PROTO_DIR],
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pkg = grpc.loadPackageDefinition(def) as any;
  const addr = `127.0.0.1:${d.port}`;
  const opts = { "grpc.max_receive_message_length": 64 * 1024 * 1024, "grpc.max_send_message_length": 64 * 1024 * 1024 };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const proc: any = new pkg.process.Process(addr, grpc.credentials.createInsecure(), opts);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const ext: any = new pkg.envdts.v1.ProcessControl(addr, grpc.credentials.createInsecure(), opts);
  return {
    proc,
    ext,
    close() {
      proc.close();
      ext.close();
    },
  };
}

/** Promisifies a unary gRPC call. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function unary<T = any>(client: any, method: string, req: unknown, metadata?: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) => {
    const cb = (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res));
    if (metadata) client[method](req, metadata, cb);
    else client[method](req, cb);
  });
}

/** Collects every message of a server stream until it ends; rejects on a stream error (with the messages so far). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function collect<T = any>(call: grpc.ClientReadableStream<T>, onMessage?: (m: T) => void): Promise<T[]> {
  const out: T[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (m: T) => {
      out.push(m);
      onMessage?.(m);
    });
    call.on("error", (e) => reject(Object.assign(e, { messages: out })));
    call.on("end", () => resolve(out));
  });
}

/** Basic auth header selecting a user, as the SDK sends it. */
export function userAuth(user: string): string {
  return "Basic " + Buffer.from(`${user}:`).toString("base64");
}

/** gRPC metadata acting as `user`. */
export function userMetadata(user: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", userAuth(user));
  return md;
}

/** Connect streaming request body: one envelope with a JSON message. */
export function connectEnvelope(json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Parses a Connect streaming response body into its frames. */
export function connectFrames(buf: Buffer): { flags: number; json: Record<string, unknown> }[] {
  const out: { flags: number; json: Record<string, unknown> }[] = [];
  let i = 0;
  while (i + 5 <= buf.length) {
    const flags = buf[i]!;
    const len = buf.readUInt32BE(i + 1);
    out.push({ flags, json: JSON.parse(buf.subarray(i + 5, i + 5 + len).toString("utf8")) });
    i += 5 + len;
  }
  return out;
}

/** POSTs a Connect server-streaming call with the JSON codec and returns its frames. */
export async function connectStream(d: Daemon, path: string, msg: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  const res = await fetch(`${d.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", ...headers },
    body: new Uint8Array(connectEnvelope(msg)),
    signal,
  });
  return { status: res.status, contentType: res.headers.get("content-type"), frames: connectFrames(Buffer.from(await res.arrayBuffer())) };
}

/** POSTs a Connect unary call with the JSON codec. */
export async function connectUnary(d: Daemon, path: string, msg: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${d.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
    body: JSON.stringify(msg),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Whether a pid is alive (a zombie counts as dead). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Pids of the descendants of `pid` (children, grandchildren, ...) found in /proc. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "latin1");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(name), Number(f[1]));
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    for (const [c, pp] of parent) if (pp === p) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}


/** Polls `fn` until it returns true or `ms` pass. */
export async function waitFor(fn: () => boolean | Promise<boolean>, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Concatenates the data of output events of one stream (ext events from gRPC). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function outputOf(events: any[], stream?: string): string {
  return Buffer.concat(events.filter((e) => e.output && (!stream || e.output.stream === stream)).map((e) => e.output.data as Buffer)).toString("utf8");
}
