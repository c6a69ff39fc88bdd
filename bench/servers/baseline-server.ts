/**
 * The honest floor for a Node daemon: the same wire as envd-ts for the routes the
 * file figures use, with nothing else. GET/POST /files with busboy and fs streams
 * (no atomic rename, no metadata, no ownership), filesystem.Filesystem Stat and
 * ListDir with bare fs calls, and process.Process Start as a plain
 * child_process.spawn streamed in 32 KiB events (node-pty for PTYs, with
 * SendInput and SendSignal), all through connect-node.
 * HTTP/1.1 on argv[2], h2c on argv[3].
 *
 * Run: node --import tsx bench/servers/baseline-server.ts PORT H2PORT
 */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream, lstatSync, readdirSync, readFileSync, watch, type Stats } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import busboy from "busboy";
import { EntryInfoSchema, EventType, FileType, Filesystem, type EntryInfo, type WatchDirRequest } from "../../src/gen/filesystem_pb.js";
import { Process, type SendInputRequest, type SendSignalRequest, type StartRequest } from "../../src/gen/process_pb.js";
import { spawn as ptySpawn, type IPty } from "node-pty";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

const names = (file: string, col: number) => {
  const m = new Map<number, string>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const f = line.split(":");
    if (f.length > col) m.set(Number(f[col]), f[0]!);
  }
  return m;
};
const users = names("/etc/passwd", 2);
const accounts = new Map<string, { uid: number; gid: number; home: string }>();
for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
  const f = line.split(":");
  if (f.length > 5) accounts.set(f[0]!, { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
}
const groups = names("/etc/group", 2);

function permissions(mode: number): string {
  const type = (mode & 0o170000) === 0o040000 ? "d" : (mode & 0o170000) === 0o120000 ? "L" : "-";
  let s = type;
  for (let i = 8; i >= 0; i--) s += mode & (1 << i) ? "rwx"[(8 - i) % 3] : "-";
  return s;
}

function entry(path: string, st: Stats): EntryInfo {
  const fmt = st.mode & 0o170000;
  return create(EntryInfoSchema, {
    name: basename(path),
    type: fmt === 0o100000 ? FileType.FILE : fmt === 0o040000 ? FileType.DIRECTORY : FileType.UNSPECIFIED,
    path,
    size: BigInt(st.size),
    mode: st.mode & 0o777,
    permissions: permissions(st.mode),
    owner: users.get(st.uid) ?? String(st.uid),
    group: groups.get(st.gid) ?? String(st.gid),
    modifiedTime: { seconds: BigInt(Math.floor(st.mtimeMs / 1000)), nanos: Math.round((st.mtimeMs % 1000) * 1e6) },
  });
}

type Ev = { event: { event: { case: "start"; value: { pid: number } } | { case: "data"; value: { output: { case: "stdout" | "stderr"; value: Uint8Array } } } | { case: "end"; value: { exitCode: number; exited: boolean; status: string } } } };

const terminals = new Map<number, IPty>();

/** A PTY Start: node-pty running the command as the user; output as `pty` events. */
async function* startPty(req: StartRequest, u: { uid: number; gid: number; home: string }, env: Record<string, string>): AsyncGenerator<Ev> {
  const size = req.pty?.size;
  const term = ptySpawn(req.process?.cmd ?? "", req.process?.args ?? [], { cols: size?.cols || 80, rows: size?.rows || 24, cwd: u.home, env, uid: u.uid, gid: u.gid, name: env.TERM ?? "xterm" });
  terminals.set(term.pid, term);
  const queue: Ev[] = [];
  let wake: (() => void) | undefined;
  let exit: number | undefined;
  term.onData((d) => {
    queue.push({ event: { event: { case: "data", value: { output: { case: "pty" as never, value: Buffer.from(d, "utf8") } } } } });
    wake?.();
  });
  term.onExit((e) => {
    exit = e.exitCode;
    terminals.delete(term.pid);
    wake?.();
  });
  yield { event: { event: { case: "start", value: { pid: term.pid } } } };
  for (;;) {
    while (queue.length) yield queue.shift()!;
    if (exit !== undefined) break;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
  yield { event: { event: { case: "end", value: { exitCode: exit ?? -1, exited: true, status: `exit status ${exit}` } } } };
}

/** Start as a bare spawn as the Basic-auth user, with the daemon's environment; output in ≤ 32 KiB events. */
async function* start(req: StartRequest, authorization: string | null): AsyncGenerator<Ev> {
  const name = authorization ? Buffer.from(authorization.slice(6), "base64").toString().split(":")[0]! : "root";
  const u = accounts.get(name);
  if (!u) throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated);
  const env = { PATH: process.env.PATH ?? "", HOME: u.home, USER: name, LOGNAME: name, E2B_SANDBOX: "true", ...req.process?.envs };
  if (req.pty) {
    yield* startPty(req, u, env);
    return;
  }
  const child = spawn(req.process?.cmd ?? "", req.process?.args ?? [], { uid: u.uid, gid: u.gid, env, cwd: u.home, stdio: ["ignore", "pipe", "pipe"] });
  const queue: Ev[] = [];
  let wake: (() => void) | undefined;
  let open = 2;
  let exit: number | null | undefined;
  const push = (ev: Ev) => {
    queue.push(ev);
    wake?.();
  };
  const onData = (kind: "stdout" | "stderr") => (d: Buffer) => {
    for (let o = 0; o < d.length; o += 32768) push({ event: { event: { case: "data", value: { output: { case: kind, value: d.subarray(o, o + 32768) } } } } });
    if (queue.length > 16) child.stdout!.pause();
  };
  child.stdout!.on("data", onData("stdout"));
  child.stderr!.on("data", onData("stderr"));
  const closed = () => {
    if (--open === 0) wake?.();
  };
  child.stdout!.on("close", closed);
  child.stderr!.on("close", closed);
  child.on("exit", (code) => {
    exit = code;
    wake?.();
  });
  yield { event: { event: { case: "start", value: { pid: child.pid ?? 0 } } } };
  for (;;) {
    while (queue.length) {
      yield queue.shift()!;
      if (queue.length < 4) child.stdout!.resume();
    }
    if (open === 0 && exit !== undefined) break;
    await new Promise<void>((r) => (wake = r));
    wake = undefined;
  }
  yield { event: { event: { case: "end", value: { exitCode: exit ?? -1, exited: exit !== null, status: `exit status ${exit}` } } } };
}

function routes(router: ConnectRouter): void {
  router.service(Process, {
    start: (req: StartRequest, ctx: HandlerContext) => start(req, ctx.requestHeader.get("authorization")),
    sendInput(req: SendInputRequest) {
      const pid = req.process?.selector.case === "pid" ? req.process.selector.value : 0;
      const input = req.input?.input;
      if (input?.case === "pty") terminals.get(pid)?.write(Buffer.from(input.value).toString("latin1"));
      return {};
    },
    sendSignal(req: SendSignalRequest) {
      const pid = req.process?.selector.case === "pid" ? req.process.selector.value : 0;
      terminals.get(pid)?.kill("SIGKILL");
      return {};
    },
  } as never);
  router.service(Filesystem, {
    async stat(req) {
      try {
        return { entry: entry(req.path, lstatSync(req.path)) };
      } catch {
        throw new ConnectError(`file not found: ${req.path}`, Code.NotFound);
      }
    },
    /** fs.watch, forwarded as it comes: every event as CREATE or WRITE. */
    async *watchDir(req: WatchDirRequest, ctx: HandlerContext) {
      type W = { event: { case: "start"; value: object } | { case: "filesystem"; value: { name: string; type: EventType } } };
      const queue: W[] = [];
      let wake: (() => void) | undefined;
      const watcher = watch(req.path, (type, name) => {
        queue.push({ event: { case: "filesystem", value: { name: String(name ?? ""), type: type === "rename" ? EventType.CREATE : EventType.WRITE } } });
        wake?.();
      });
      ctx.signal.addEventListener("abort", () => wake?.());
      try {
        yield { event: { case: "start", value: {} } } as W;
        while (!ctx.signal.aborted) {
          while (queue.length) yield queue.shift()!;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      } finally {
        watcher.close();
      }
    },
    listDir(req) {
      const out: EntryInfo[] = [];
      for (const name of readdirSync(req.path)) {
        const p = join(req.path, name);
        out.push(entry(p, lstatSync(p)));
      }
      return { entries: out };
    },
  });
}

// Uncompressed answers, as the daemon sends them (compression costs ~25 ms per MiB here).
const rpc = connectNodeAdapter({ routes, compressMinBytes: 2 ** 31 - 1 });

async function upload(req: Req, res: Res, url: URL): Promise<void> {
  const target = url.searchParams.get("path");
  const type = String(req.headers["content-type"] ?? "");
  const written: { name: string; path: string; type: "file" }[] = [];
  if (type.startsWith("application/octet-stream")) {
    if (!target) throw new Error("path is required");
    await mkdir(dirname(target), { recursive: true });
    await pipeline(req, createWriteStream(target));
    written.push({ name: basename(target), path: target, type: "file" });
  } else {
    const bb = busboy({ headers: req.headers as Record<string, string> });
    const files: Promise<void>[] = [];
    bb.on("file", (_field, stream, info) => {
      const p = target ?? info.filename ?? "";
      written.push({ name: basename(p), path: p, type: "file" });
      files.push(mkdir(dirname(p), { recursive: true }).then(() => pipeline(stream, createWriteStream(p))));
    });
    await pipeline(req, bb);
    await Promise.all(files);
  }
  const body = JSON.stringify(written);
  res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

async function download(_req: Req, res: Res, url: URL): Promise<void> {
  const path = url.searchParams.get("path") ?? "";
  const st = await stat(path);
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": st.size });
  await pipeline(createReadStream(path, { highWaterMark: 64 * 1024 }), res as NodeJS.WritableStream);
}

function handle(req: Req, res: Res): void {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (url.pathname === "/health") {
    res.writeHead(204);
    res.end();
    return;
  }
  if (url.pathname === "/files") {
    const run = req.method === "POST" ? upload(req, res, url) : download(req, res, url);
    run.catch((err: Error) => {
      if (res.headersSent) res.destroy();
      else {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: 500, message: err.message }));
      }
    });
    return;
  }
  rpc(req as never, res as never);
}

createServer({ keepAliveTimeout: 600_000 }, handle).listen(Number(process.argv[2]), "127.0.0.1");
createH2Server(handle).listen(Number(process.argv[3]), "127.0.0.1");
