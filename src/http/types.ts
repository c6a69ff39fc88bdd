import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { Duplex } from "node:stream";

/** A request over HTTP/1.1 or HTTP/2; handlers are written against both. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** The response to an {@link HttpRequest}. */
export type HttpResponse = ServerResponse | Http2ServerResponse;
/** A REST route; may throw HttpError, which the server turns into E2B's JSON error. */
export type RouteHandler = (req: HttpRequest, res: HttpResponse, url: URL) => void | Promise<void>;
/** Takes over an HTTP/1.1 connection whose request asked for a protocol upgrade (WebSocket). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
