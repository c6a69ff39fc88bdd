import { Code, ConnectError } from "@connectrpc/connect";
import { signatureProblem, type SignatureOperation } from "../auth/signature.js";
import type { DaemonContext } from "../daemon-context.js";
import { checkBeneathRoot, resolveUserPath } from "../filesystem/resolve.js";
import { HttpError } from "../http/respond.js";
import type { HttpRequest } from "../http/types.js";
import { lookupUser, type UserAccount } from "../users/passwd.js";
import type { FilesQuery } from "./query.js";

function firstHeader(req: HttpRequest, name: string): string {
  const v = req.headers[name];
  return (Array.isArray(v) ? v[0] : v) ?? "";
}

/**
 * envd's /files authorisation (signed URLs, docs/protocol.md), applied only while an access token is
 * set: a present X-Access-Token must match; otherwise a valid, unexpired signature is needed.
 */
export function checkFileAccess(ctx: DaemonContext, req: HttpRequest, query: FilesQuery, operation: SignatureOperation): void {
  const token = ctx.state.accessToken;
  if (!token.isSet()) return;
  const fromHeader = firstHeader(req, "x-access-token");
  if (fromHeader !== "") {
    if (!token.matches(fromHeader)) throw new HttpError(401, "access token present in header but does not match");
    return;
  }
  const problem = signatureProblem(
    { path: query.path ?? "", username: query.username ?? "", signature: query.signature, expiration: query.signatureExpiration },
    operation,
    token.get()!,
  );
  if (problem) throw new HttpError(401, problem);
}

/** The account a /files request acts as: `username` or the default user; unknown → 401. */
export function fileRequestUser(ctx: DaemonContext, username: string | undefined): UserAccount {
  const name = username ?? ctx.state.defaultUser;
  const user = lookupUser(name);
  if (!user) throw new HttpError(401, `error looking up user '${name}': user: unknown user ${name}`);
  return user;
}

/** Maps a path-resolution ConnectError to the HTTP error envd-ts answers with. */
export function pathHttpError(err: unknown, prefix: string): HttpError {
  if (!(err instanceof ConnectError)) return new HttpError(500, `${prefix}${(err as Error)?.message ?? String(err)}`);
  switch (err.code) {
    case Code.PermissionDenied:
      return new HttpError(403, err.rawMessage);
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
      return new HttpError(400, `${prefix}${err.rawMessage}`);
    default:
      return new HttpError(500, `${prefix}${err.rawMessage}`);
  }
}

/**
 * Resolves a client path for the user (expansion plus the root jail, following the
 * final symlink as reads and writes do); `prefix` starts the 400 message, in envd's words.
 */
export function resolveFilePath(ctx: DaemonContext, user: UserAccount, rawPath: string, prefix: string): string {
  try {
    const abs = resolveUserPath(ctx, user, rawPath);
    checkBeneathRoot(ctx, abs, { followFinal: true });
    return abs;
  } catch (err) {
    throw pathHttpError(err, prefix);
  }
}
