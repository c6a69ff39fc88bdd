import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** A Connect error code by its wire name ("not_found", "failed_precondition", ...). */
export type EnvdErrorCode =
  | "canceled"
  | "unknown"
  | "invalid_argument"
  | "deadline_exceeded"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "resource_exhausted"
  | "failed_precondition"
  | "aborted"
  | "out_of_range"
  | "unimplemented"
  | "internal"
  | "unavailable"
  | "data_loss"
  | "unauthenticated";

/**
 * The one error the client's idiomatic layer throws: the daemon's message with its Connect
 * code, whether the daemon refused the call, the connection failed, or the caller aborted.
 * The raw service clients (`client.raw.*`) throw connect-es's ConnectError instead.
 */
export class EnvdError extends Error {
  override readonly name = "EnvdError";
  /** The Connect code by name, e.g. "not_found". */
  readonly code: EnvdErrorCode;
  /** The same code as connect-es's numeric enum. */
  readonly connectCode: Code;
  /** The message as the daemon sent it, without the "[code]" prefix. */
  readonly rawMessage: string;

  constructor(code: Code, rawMessage: string, options?: { cause?: unknown }) {
    super(`[${codeToString(code)}] ${rawMessage}`, options);
    this.connectCode = code;
    this.code = codeToString(code) as EnvdErrorCode;
    this.rawMessage = rawMessage;
  }

  /** Any thrown value as an EnvdError (an AbortSignal's abort becomes "canceled"). */
  static from(err: unknown): EnvdError {
    if (err instanceof EnvdError) return err;
    const ce = ConnectError.from(err);
    return new EnvdError(ce.code, ce.rawMessage, { cause: err });
  }
}

/** Awaits a call, turning whatever it throws into an EnvdError. */
export async function call<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw EnvdError.from(err);
  }
}

/** An async iterable whose errors are EnvdErrors. */
export async function* iterate<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw EnvdError.from(err);
  }
}
