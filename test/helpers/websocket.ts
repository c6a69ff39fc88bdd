// A tiny RFC 6455 client and echo server for the proxy tests: enough framing to prove that
// bytes cross a proxy intact (text, binary, 16- and 64-bit lengths, masking, ping, close).
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** One WebSocket frame. */
export interface Frame {
  opcode: number;
  payload: Buffer;
}

function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** Encodes one final frame; clients must mask, servers must not. */
export function encodeFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else {
    head.push(maskBit | 127);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** Accumulates bytes and yields complete frames (unfragmented frames only). */
class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const frames: Frame[] = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const opcode = this.buf[0]! & 0x0f;
      const masked = (this.buf[1]! & 0x80) !== 0;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) break;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) break;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const keyOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) break;
      const payload = Buffer.from(this.buf.subarray(off, off + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ this.buf[keyOff + (i & 3)]!;
      frames.push({ opcode, payload });
      this.buf = this.buf.subarray(off + len);
    }
    return frames;
  }
}

/**
 * Makes `server` a WebSocket echo server: it greets with "hello <url> <x-forwarded-prefix>",
 * then echoes every text and binary frame, answers pings and closes on close.
 */
export function attachEchoServer(server: Server): void {
  server.on("upgrade", (req: IncomingMessage, socket: Duplex) => {
    socket.on("error", () => {});
    const key = req.headers["sec-websocket-key"];
    if (req.headers.upgrade?.toLowerCase() !== "websocket" || typeof key !== "string") {
      socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`);
    socket.write(encodeFrame(1, Buffer.from(`hello ${req.url} ${req.headers["x-forwarded-prefix"] ?? "-"}`), false));
    const reader = new FrameReader();
    socket.on("data", (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.opcode === 8) {
          socket.end(encodeFrame(8, f.payload, false));
          return;
        }
        if (f.opcode === 9) socket.write(encodeFrame(10, f.payload, false));
        else if (f.opcode === 1 || f.opcode === 2) socket.write(encodeFrame(f.opcode, f.payload, false));
      }
    });
  });
}

/** A connected client. */
export interface WsClient {
  socket: Socket;
  send(data: string | Buffer): void;
  /** The next frame from the server. */
  next(): Promise<Frame>;
  /** Sends close and waits for the server's close frame and the socket's end. */
  close(): Promise<void>;
}

/** The handshake failed: the status line and the raw response. */
export class WsHandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly response: string,
  ) {
    super(`websocket handshake failed with ${status}: ${response.split("\r\n")[0]}`);
  }
}

/** Opens a WebSocket to host:port/path with extra request headers. */
export function connectWebSocket(port: number, path: string, headers: Record<string, string> = {}, host = "127.0.0.1"): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64");
    const socket = connect({ host, port });
    let head = Buffer.alloc(0);
    const frames: Frame[] = [];
    const waiters: ((f: Frame) => void)[] = [];
    const reader = new FrameReader();
    const deliver = (f: Frame) => {
      const w = waiters.shift();
      if (w) w(f);
      else frames.push(f);
    };
    socket.on("error", reject);
    socket.on("connect", () => {
      let req = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
      socket.write(req + "\r\n");
    });
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHead);
      const text = head.subarray(0, end).toString("latin1");
      const status = Number(text.split(" ")[1]);
      if (status !== 101) {
        socket.on("end", () => reject(new WsHandshakeError(status, head.toString("latin1"))));
        socket.on("data", (more: Buffer) => (head = Buffer.concat([head, more])));
        socket.resume();
        return;
      }
      if (!new RegExp(`sec-websocket-accept: ${acceptKey(key).replace(/[+/=]/g, "\\$&")}`, "i").test(text)) {
        reject(new Error("bad Sec-WebSocket-Accept"));
        socket.destroy();
        return;
      }
      socket.on("data", (c: Buffer) => reader.push(c).forEach(deliver));
      const rest = head.subarray(end + 4);
      if (rest.length) reader.push(rest).forEach(deliver);
      resolve({
        socket,
        send: (data) => socket.write(encodeFrame(typeof data === "string" ? 1 : 2, Buffer.from(data), true)),
        next: () => new Promise<Frame>((r) => (frames.length ? r(frames.shift()!) : waiters.push(r))),
        close: async () => {
          const ended = new Promise<void>((r) => socket.once("close", () => r()));
          socket.write(encodeFrame(8, Buffer.from([0x03, 0xe8]), true));
          await ended;
        },
      });
    };
    socket.on("data", onHead);
  });
}
