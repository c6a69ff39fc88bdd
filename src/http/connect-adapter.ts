import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "../log.js";
import { clampDeadlineHeaders } from "./deadline-headers.js";
import { jsonTooDeep, tooDeepMessage } from "./json-depth.js";
import { rpcLogKey } from "./rpc-interceptors.js";
import { fixGrpcParseTrailers, fixUnaryParseError, parseErrorsAreInvalidArgument } from "./parse-errors.js";
import type { HttpRequest, HttpResponse } from "./types.js";

/** A message size no response reaches (connect compresses messages of at least this many bytes). */
const NEVER_COMPRESS = 2 ** 31 - 1;

/**
 * Services registered at their first request: their code and protobuf descriptors are
 * imported then, so a daemon whose clients never call them (every E2B client) neither
 * decodes nor keeps them.
 */
export interface LazyServices {
  /** Fully-qualified names of the services `load` registers ("envdts.v1.System"). */
  typeNames: string[];
  /**
   * Imports the services and returns what registers them. `loadAll` registers every lazy
   * service (gRPC reflection, which lists them all, calls it before answering).
   */
  load(): Promise<(router: ConnectRouter, loadAll: () => Promise<void>) => void>;
}

/** Options for {@link connectHandler}. */
export interface ConnectHandlerOptions extends ConnectRouterOptions {
  routes(router: ConnectRouter): void;
  lazy?: LazyServices[];
  /** Told the request path of every RPC as it is registered, lazy ones included. */
  onRegistered?(requestPaths: string[]): void;
  /** Answers paths that name no registered RPC. */
  notFound(req: HttpRequest, res: HttpResponse): void;
  log: Logger;
}

/** What {@link connectHandler} returns: the request handler, and a way to register the lazy services now. */
export interface RpcHandler {
  (req: HttpRequest, res: HttpResponse, contextValues: ContextValues): void;
  loadLazyServices(): Promise<void>;
}

/**
 * Serves Connect, gRPC and gRPC-Web for the registered services, like connect-node's
 * connectNodeAdapter, but reports write failures through our logger instead of console.error.
 */
export function connectHandler(options: ConnectHandlerOptions): RpcHandler {
  options.acceptCompression ??= [compressionGzip, compressionBrotli];
  // JSON that is not UTF-8 is refused (invalid_argument), as Go's protojson refuses it, instead of
  // reaching handlers with U+FFFD in place of the bad bytes. connect-es reads textDecoder from here.
  // A document nested too deep is refused before it is parsed (see json-depth.ts); connect-es
  // reports what the decoder throws as invalid_argument.
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const textDecoder = {
    decode(data: Uint8Array): string {
      if (jsonTooDeep(data)) throw new ConnectError(tooDeepMessage(), Code.InvalidArgument);
      return utf8.decode(data);
    },
  };
  options.jsonOptions ??= { textDecoder } as unknown as ConnectRouterOptions["jsonOptions"];
  // Compressed requests are accepted, but answers go out uncompressed (always allowed):
  // gzip of process output cost ~25 ms per MiB here, capping a stream at ~30 MB/s
  // against ~250 MB/s uncompressed, and the e2b SDK cannot ask for it anyway.
  options.compressMinBytes ??= NEVER_COMPRESS;
  // Innermost, so the request log records the corrected code.
  options.interceptors = [...(options.interceptors ?? []), parseErrorsAreInvalidArgument()];
  const router = createConnectRouter(options);
  const byPath = new Map<string, (typeof router.handlers)[number]>();
  const indexNewHandlers = () => {
    const added = router.handlers.filter((h) => !byPath.has(h.requestPath));
    for (const h of added) byPath.set(h.requestPath, h);
    options.onRegistered?.(added.map((h) => h.requestPath));
  };
  options.routes(router);
  indexNewHandlers();

  const lazyLoads = new Map<string, () => Promise<void>>();
  const loadAll = async (): Promise<void> => {
    await Promise.all([...new Set(lazyLoads.values())].map((load) => load()));
  };
  for (const lazy of options.lazy ?? []) {
    let loading: Promise<void> | undefined;
    const load = () =>
      (loading ??= lazy.load().then(
        (register) => {
          register(router, loadAll);
          indexNewHandlers();
        },
        (err) => {
          loading = undefined;
          throw err;
        },
      ));
    for (const name of lazy.typeNames) lazyLoads.set(name, load);
  }

  const serve = (req: HttpRequest, res: HttpResponse, contextValues: ContextValues): void => {
    const path = (req.url ?? "").split("?", 1)[0]!;
    const handler = byPath.get(path);
    if (!handler) {
      const load = lazyLoads.get(path.slice(1, path.lastIndexOf("/")));
      if (load) {
        load().then(
          () => (byPath.has(path) ? serve(req, res, contextValues) : options.notFound(req, res)),
          (err) => {
            options.log.error({ err, path }, "cannot load an RPC service");
            if (!res.headersSent) res.writeHead(500).end();
          },
        );
        return;
      }
      options.notFound(req, res);
      return;
    }
    clampDeadlineHeaders(req);
    const uReq = universalRequestFromNodeRequest(req as never, res as never, undefined, contextValues);
    handler(uReq)
      .then(fixUnaryParseError)
      .then((uRes) => {
        const info = contextValues.get(rpcLogKey);
        if (info) info.response = uRes;
        if (/^application\/grpc(?!-web)/i.test(String(req.headers["content-type"] ?? ""))) {
          respecGrpcMessage(uRes.header, res);
          fixGrpcParseTrailers(res as never);
        }
        return universalResponseToNodeResponse(uRes, res as never);
      })
      .catch((reason) => {
        // Aborted is a client that went away mid-response: nothing to report.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.log.warn({ err: reason, rpc: `${handler.service.typeName}/${handler.method.name}` }, "rpc response failed");
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
  };
  return Object.assign(serve, { loadLazyServices: loadAll });
}

/**
 * connect-es percent-encodes grpc-message with encodeURIComponent, so "a: b/c" goes out as
 * "a%3A%20b%2Fc"; @grpc/grpc-js decodes with decodeURI and shows "a%3A b%2Fc". The gRPC spec
 * encodes only '%' and bytes outside printable ASCII, which every client decodes alike.
 */
function respecGrpcMessage(header: Headers | undefined, res: HttpResponse): void {
  const fix = (encoded: string): string => {
    let raw: string;
    try {
      raw = decodeURIComponent(encoded);
    } catch {
      return encoded;
    }
    let out = "";
    for (const b of Buffer.from(raw, "utf8")) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    return out;
  };
  const inHeader = header?.get("grpc-message");
  if (header && inHeader != null) header.set("grpc-message", fix(inHeader));
  const addTrailers = res.addTrailers.bind(res) as (t: Record<string, string | string[]>) => void;
  res.addTrailers = ((trailers: Record<string, string | string[]>) => {
    const m = trailers["grpc-message"];
    addTrailers(typeof m === "string" ? { ...trailers, "grpc-message": fix(m) } : trailers);
  }) as typeof res.addTrailers;
}
