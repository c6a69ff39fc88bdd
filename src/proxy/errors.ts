import { Code, ConnectError } from "@connectrpc/connect";

/** The kinds of failure the proxy API reports; each maps to one Connect code. */
export type ProxyErrorCode =
  | "invalid_argument"
  | "already_exists"
  | "failed_precondition"
  | "not_found"
  | "permission_denied"
  | "deadline_exceeded"
  | "resource_exhausted";

const CONNECT_CODES: Record<ProxyErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  not_found: Code.NotFound,
  permission_denied: Code.PermissionDenied,
  deadline_exceeded: Code.DeadlineExceeded,
  resource_exhausted: Code.ResourceExhausted,
};

/** An error a user can act on, raised where its cause is known and mapped at the RPC edge. */
export class ProxyError extends Error {
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The one place proxy errors become Connect errors; anything unexpected is `internal`. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ProxyError) return new ConnectError(err.message, CONNECT_CODES[err.code]);
  return new ConnectError((err as Error)?.message ?? String(err), Code.Internal);
}

/**
 * Why a listener could not be opened on `address`. A port in use is `failed_precondition`
 * (the address is valid, but something else holds it; `already_exists` is kept for duplicate ids).
 */
export function listenError(err: NodeJS.ErrnoException, address: string): ProxyError {
  switch (err.code) {
    case "EADDRINUSE":
      return new ProxyError("failed_precondition", `address ${address} is already in use`);
    case "EADDRNOTAVAIL":
      return new ProxyError("invalid_argument", `address ${address} is not available on this host`);
    case "EACCES":
    case "EPERM":
      return new ProxyError("permission_denied", `not allowed to listen on ${address}`);
    case "EAFNOSUPPORT":
    case "EINVAL":
      return new ProxyError("invalid_argument", `cannot listen on ${address}: ${err.message}`);
    default:
      return new ProxyError("failed_precondition", `cannot listen on ${address}: ${err.message}`);
  }
}
