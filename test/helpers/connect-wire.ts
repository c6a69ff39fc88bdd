/** One Connect/gRPC-Web envelope: flags byte, then the payload. */
export interface Frame {
  flags: number;
  data: Buffer;
}

/** Wraps a JSON message in a Connect streaming envelope (flags 0, 4-byte big-endian length). */
export function envelope(message: unknown): Buffer {
  const data = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

/** Splits a buffer into envelopes; returns the frames and the unparsed rest. */
export function splitFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  while (buf.length - off >= 5) {
    const len = buf.readUInt32BE(off + 1);
    if (buf.length - off - 5 < len) break;
    frames.push({ flags: buf[off]!, data: buf.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** Reads a Connect streaming response body frame by frame, as the bytes arrive. */
export async function* readFrames(body: ReadableStream<Uint8Array> | null): AsyncGenerator<Frame> {
  if (!body) return;
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    pending = Buffer.concat([pending, chunk]);
    const { frames, rest } = splitFrames(pending);
    pending = rest;
    yield* frames;
  }
  if (pending.length) throw new Error(`stream ended inside a frame (${pending.length} bytes left)`);
}

/** POSTs a server-streaming Connect JSON request with fetch (HTTP/1.1). */
export function connectStream(url: string, message: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", ...headers },
    body: new Uint8Array(envelope(message)),
    signal,
  });
}

/** Reads frames until `stop` says so or the stream ends; returns them as parsed JSON with their flags. */
export async function collectJsonFrames(
  res: Response,
  stop: (frames: { flags: number; json: any }[]) => boolean = () => false,
): Promise<{ flags: number; json: any }[]> {
  const out: { flags: number; json: any }[] = [];
  for await (const f of readFrames(res.body)) {
    out.push({ flags: f.flags, json: JSON.parse(f.data.toString("utf8")) });
    if (stop(out)) break;
  }
  return out;
}
