import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * connect-es reports a request message it cannot decode from protobuf as `internal` ("parse
 * binary: ..."), and so a brotli body that does not decompress ("decompression failed"),
 * although the fault is the client's; connect-go (so E2B's envd) says `invalid_argument`, as
 * connect-es itself does for undecodable JSON and broken gzip. These helpers put
 * that right: the interceptor for streaming RPCs (whose messages are decoded inside the
 * handler), {@link fixUnaryParseError} and {@link fixGrpcParseTrailers} for unary Connect and
 * gRPC calls (decoded before any interceptor). Unary gRPC-Web calls still say `internal`: their
 * status travels inside the body, already serialized.
 */
const PARSE_ERROR = /^(parse binary: |decompression failed$)/;

function isParseError(err: unknown): err is ConnectError {
  return err instanceof ConnectError && err.code === Code.Internal && PARSE_ERROR.test(err.rawMessage);
}

function asInvalidArgument(err: ConnectError): ConnectError {
  return new ConnectError(err.rawMessage, Code.InvalidArgument, err.metadata, undefined, err.cause);
}

/** Turns decoding failures of streamed request messages into `invalid_argument`. */
export function parseErrorsAreInvalidArgument(): Interceptor {
  const mapped = async function* <T>(source: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* source;
    } catch (err) {
      throw isParseError(err) ? asInvalidArgument(err) : err;
    }
  };
  return (next) => async (req) => {
    const input = req.stream ? { ...req, message: mapped(req.message) } : req;
    try {
      const res = await next(input as typeof req);
      return res.stream ? { ...res, message: mapped(res.message) } : res;
    } catch (err) {
      throw isParseError(err) ? asInvalidArgument(err) : err;
    }
  };
}

/** The same for a unary Connect answer: HTTP 500 `internal` for such a message becomes 400 `invalid_argument`. */
export async function fixUnaryParseError(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  if (res.status !== 500 || !res.body || !res.header?.get("content-type")?.startsWith("application/json")) return res;
  const chunks: Uint8Array[] = [];
  for await (const c of res.body) chunks.push(c);
  const raw = Buffer.concat(chunks);
  let json: { code?: string; message?: string } | undefined;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    /* not ours to fix */
  }
  if (json?.code !== "internal" || !PARSE_ERROR.test(json.message ?? "")) return { ...res, body: (async function* () { yield raw; })() };
  const body = Buffer.from(JSON.stringify({ ...json, code: "invalid_argument" }));
  res.header.set("content-length", String(body.length));
  return { ...res, status: 400, body: (async function* () { yield body; })() };
}

/** For a unary gRPC call: trailer status 13 for such a message (as written to the wire) becomes 3. */
export function fixGrpcParseTrailers(res: { addTrailers(headers: Record<string, string | string[]>): void }): void {
  const addTrailers = res.addTrailers.bind(res);
  res.addTrailers = (trailers) => {
    const message = trailers["grpc-message"];
    const parse = typeof message === "string" && /^(parse(%20| )binary(%3A|:)|decompression(%20| )failed$)/i.test(message);
    addTrailers(trailers["grpc-status"] === "13" && parse ? { ...trailers, "grpc-status": String(Code.InvalidArgument) } : trailers);
  };
}
