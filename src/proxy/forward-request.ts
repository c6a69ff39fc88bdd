import type { Agent, IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { HttpRequest, HttpResponse } from "../http/types.js";
import { downstreamHeaders, upstreamHeaders, type ForwardHeaderOptions } from "./headers.js";
import type { HttpTarget, ProxyTuning } from "./proxy-spec.js";
import { timerDelay } from "../system/timer-delay.js";

/** Everything a forwarded request or upgrade needs to know about its upstream. */
export interface ForwardContext {
  target: HttpTarget;
  tuning: ProxyTuning;
  /** Keep-alive pool for the target; an https.Agent for https:// targets. */
  agent: Agent;
  headers: ForwardHeaderOptions;
  /** Counts a failure and logs it; the client has been answered already. */
  onError(err: Error): void;
}

const BODYLESS_METHODS = new Set(["GET", "HEAD", "OPTIONS", "DELETE", "TRACE"]);

/** True when the request cannot carry a body, so it may be sent again after a failure. */
function hasNoBody(req: HttpRequest): boolean {
  if ("stream" in req) return req.stream.endAfterHeaders;
  return BODYLESS_METHODS.has(req.method ?? "") && !req.headers["transfer-encoding"] && (req.headers["content-length"] ?? "0") === "0";
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: "ETIMEDOUT" });
}

/** A short plain-text error answer from the proxy itself (502 or 504). */
function answerFailure(res: HttpResponse, err: Error & { code?: string }): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = err.code === "ETIMEDOUT" ? 504 : 502;
  const body = `proxy: ${err.message}\n`;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Streams one request to the target and its response back: bodies are piped both ways with
 * backpressure, chunked responses stay chunked, and the client leaving cancels the upstream
 * request. The body is only read once the upstream connection is up, so a failed connection
 * can be retried (connect timeout, max_retries, retry_delay_ms) without losing it.
 */
export function forwardRequest(req: HttpRequest, res: HttpResponse, path: string, fc: ForwardContext): void {
  const { target, tuning } = fc;
  const headers: OutgoingHttpHeaders = upstreamHeaders(req, target, fc.headers);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const noBody = hasNoBody(req);
  const isHttp2 = "stream" in req;
  let attempts = 0;
  let finished = false;
  let current: ReturnType<typeof httpRequest> | undefined;

  res.on("close", () => {
    if (!res.writableFinished) current?.destroy();
    finished = true;
  });

  const fail = (err: Error) => {
    if (finished) return;
    finished = true;
    fc.onError(err);
    answerFailure(res, err);
  };

  const attempt = () => {
    attempts++;
    let bodyStarted = false;
    let connectTimer: NodeJS.Timeout | undefined;
    const upReq = send({
      host: target.host,
      port: target.port,
      method: req.method,
      path,
      headers,
      agent: fc.agent,
      setHost: false,
      rejectUnauthorized: !tuning.insecureSkipVerify,
      servername: isIP(target.host) ? undefined : target.host,
    });
    current = upReq;
    upReq.on("socket", (sock) => {
      const start = () => {
        clearTimeout(connectTimer);
        if (finished) return;
        bodyStarted = true;
        if (noBody) upReq.end();
        else req.pipe(upReq);
      };
      if (sock.connecting) {
        connectTimer = setTimeout(() => upReq.destroy(timeoutError(`connect to ${target.host}:${target.port} timed out after ${tuning.connectTimeoutMs} ms`)), timerDelay(tuning.connectTimeoutMs));
        sock.once("connect", start);
      } else start();
    });
    if (tuning.readTimeoutMs > 0) upReq.setTimeout(timerDelay(tuning.readTimeoutMs), () => upReq.destroy(timeoutError(`upstream sent nothing for ${tuning.readTimeoutMs} ms`)));
    upReq.on("response", (upRes: IncomingMessage) => {
      clearTimeout(connectTimer);
      if (finished) {
        upRes.destroy();
        return;
      }
      const out = downstreamHeaders(upRes.headers);
      if (isHttp2) res.writeHead(upRes.statusCode ?? 502, out);
      else res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage ?? "", out);
      upRes.on("close", () => {
        if (!upRes.complete) {
          fc.onError(new Error("the upstream response ended early"));
          res.destroy();
        }
      });
      upRes.pipe(res as NodeJS.WritableStream);
    });
    upReq.on("error", (err: Error & { code?: string }) => {
      clearTimeout(connectTimer);
      if (finished || res.headersSent) {
        if (!finished) fail(err);
        return;
      }
      // A keep-alive socket the upstream closed just now fails a request that never reached it.
      const replayable = !bodyStarted || (noBody && upReq.reusedSocket);
      if (replayable && (attempts <= tuning.maxRetries || (upReq.reusedSocket && attempts === 1))) {
        setTimeout(attempt, upReq.reusedSocket ? 0 : timerDelay(tuning.retryDelayMs));
        return;
      }
      fail(Object.assign(new Error(`cannot reach ${target.host}:${target.port}: ${err.message}`), { code: err.code }));
    });
  };
  attempt();
}
