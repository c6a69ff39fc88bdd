import { WebSocket, type RawData } from "ws";
import type { Logger } from "../log.js";
import type { ManagedProcess } from "../process/managed-process.js";
import type { Subscription } from "../process/subscription.js";
import type { ClientMessage, ServerMessage } from "./protocol.js";
import { jsonTooDeep, tooDeepMessage } from "../http/json-depth.js";

/** Above this much unsent output the pump waits for the socket, and the process's own backpressure takes over. */
const SEND_HIGH_WATER = 256 * 1024;
/** Pings keep proxies from closing an idle terminal and find clients that vanished. */
const PING_INTERVAL_MS = 30_000;
const MAX_DIMENSION = 10_000;

/** Sends one control message as a text frame. */
export function sendMessage(ws: WebSocket, msg: ServerMessage): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function validSize(cols: unknown, rows: unknown): boolean {
  return Number.isInteger(cols) && Number.isInteger(rows) && (cols as number) > 0 && (rows as number) > 0 && (cols as number) <= MAX_DIMENSION && (rows as number) <= MAX_DIMENSION;
}

function applyInput(proc: ManagedProcess, msg: ClientMessage | Buffer, log: Logger): void {
  const child = proc.child;
  if (!child) return;
  try {
    if (Buffer.isBuffer(msg)) child.writePty(msg);
    else if (msg.type === "input" && typeof msg.data === "string") child.writePty(Buffer.from(msg.data, "utf8"));
    else if (msg.type === "resize" && validSize(msg.cols, msg.rows)) proc.resize(msg.cols, msg.rows);
  } catch (err) {
    // The shell exited between the frame and the write; its exit message is on its way.
    log.debug({ pid: proc.pid, err: (err as Error).message }, "terminal input not delivered");
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Connects one WebSocket to one PTY process: `opened`, then the process's output as binary
 * frames (replay first, when attaching from an offset), input and resizes from the client,
 * and `exit` when the process ends. A client going away only detaches: the shell keeps
 * running and can be attached again with its pid and the offset the client had reached.
 */
export async function runSession(ws: WebSocket, proc: ManagedProcess, sub: Subscription, opened: ServerMessage, log: Logger): Promise<void> {
  let alive = true;
  const ping = setInterval(() => {
    if (!alive) return ws.terminate();
    alive = false;
    ws.ping();
  }, PING_INTERVAL_MS);
  ping.unref();
  ws.on("pong", () => (alive = true));
  ws.on("message", (data, isBinary) => {
    if (isBinary) return applyInput(proc, toBuffer(data), log);
    let msg: ClientMessage;
    try {
      const raw = toBuffer(data);
      if (jsonTooDeep(raw)) throw new Error(tooDeepMessage());
      msg = JSON.parse(raw.toString("utf8")) as ClientMessage;
    } catch {
      return sendMessage(ws, { type: "error", message: "text frames must be JSON: {\"type\":\"resize\",\"cols\":N,\"rows\":N} or {\"type\":\"input\",\"data\":\"...\"}" });
    }
    applyInput(proc, msg, log);
  });
  ws.on("close", () => sub.close());
  ws.on("error", (err) => log.debug({ err: err.message }, "terminal socket error"));

  sendMessage(ws, opened);
  try {
    for (;;) {
      const ev = await sub.next();
      if (!ev || ws.readyState !== WebSocket.OPEN) break;
      if (ev.kind === "data") {
        if (ws.bufferedAmount < SEND_HIGH_WATER) ws.send(ev.chunk.data, { binary: true });
        else await new Promise<void>((resolve) => ws.send(ev.chunk.data, { binary: true }, () => resolve()));
      } else if (ev.kind === "exited" && ev.final) {
        const { exitCode, signal, status, outcome } = ev.exit;
        sendMessage(ws, { type: "exit", pid: ev.pid, exitCode, signal, status, outcome });
        ws.close(1000, "process exited");
        break;
      }
    }
  } finally {
    clearInterval(ping);
    sub.close();
  }
}
