import { connect as h2connect, constants as h2c, type ClientHttp2Session } from "node:http2";
import { Readable } from "node:stream";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Filesystem } from "../../src/gen/filesystem_pb.js";
import { Process } from "../../src/gen/process_pb.js";
import type { Sandbox as SandboxType } from "e2b";

let sdkClass: Promise<typeof SandboxType> | undefined;

/**
 * An e2b SDK Sandbox talking to `url` (debug mode: no API calls, the SDK goes
 * straight to the daemon, over HTTP/1.1 with JSON, as users run it).
 */
export async function sdkSandbox(url: string): Promise<SandboxType> {
  process.env.E2B_DEBUG = "true";
  sdkClass ??= import("e2b").then((m) => m.Sandbox);
  const Sandbox = await sdkClass;
  return Sandbox.create({ sandboxUrl: url } as never);
}

/** The binary client: Connect protocol, protobuf binary, HTTP/2 prior knowledge (h2c), one connection. */
export function binaryTransport(url: string): Transport {
  return createConnectTransport({
    httpVersion: "2",
    baseUrl: url,
    useBinaryFormat: true,
  });
}

/** process.Process and filesystem.Filesystem over the binary transport. */
export interface BinaryClients {
  process: Client<typeof Process>;
  filesystem: Client<typeof Filesystem>;
}

/** Both services on one binary transport (one h2c connection). */
export function binaryClients(url: string): BinaryClients {
  const t = binaryTransport(url);
  return { process: createClient(Process, t), filesystem: createClient(Filesystem, t) };
}

/**
 * /files over one h2c session: what a client that can speak HTTP/2 does with the
 * daemon's REST routes (raw octet-stream bodies, no multipart, no base64).
 */
export class H2Files {
  private session: ClientHttp2Session;

  constructor(url: string, private readonly user: string) {
    this.session = h2connect(url);
    this.session.on("error", () => {});
  }

  private path(p: string): string {
    return `/files?path=${encodeURIComponent(p)}&username=${encodeURIComponent(this.user)}`;
  }

  /** Uploads `body` to `path`; resolves with the response status. */
  upload(path: string, body: Readable | Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = this.session.request({ [h2c.HTTP2_HEADER_METHOD]: "POST", [h2c.HTTP2_HEADER_PATH]: this.path(path), "content-type": "application/octet-stream" });
      let status = 0;
      req.on("response", (h) => (status = Number(h[h2c.HTTP2_HEADER_STATUS])));
      req.on("error", reject);
      req.resume();
      req.on("end", () => (status === 200 ? resolve(status) : reject(new Error(`upload answered ${status}`))));
      if (Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }

  /** Downloads `path`, discarding the bytes; resolves with how many arrived. */
  download(path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = this.session.request({ [h2c.HTTP2_HEADER_METHOD]: "GET", [h2c.HTTP2_HEADER_PATH]: this.path(path) });
      let status = 0;
      let n = 0;
      req.on("response", (h) => (status = Number(h[h2c.HTTP2_HEADER_STATUS])));
      req.on("data", (d: Buffer) => (n += d.length));
      req.on("error", reject);
      req.on("end", () => (status === 200 ? resolve(n) : reject(new Error(`download answered ${status}`))));
      req.end();
    });
  }

  close(): void {
    this.session.close();
  }
}
