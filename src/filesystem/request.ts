import type { HandlerContext } from "@connectrpc/connect";
import { resolveRpcUser } from "../auth/request-user.js";
import type { DaemonContext } from "../daemon-context.js";
import type { UserAccount } from "../users/passwd.js";
import { FileAccess } from "./access.js";
import { checkBeneathRoot, resolveUserPath } from "./resolve.js";

/** Who a filesystem RPC acts as, and how its paths are resolved and checked. */
export interface FsRequest {
  user: UserAccount;
  access: FileAccess;
  /** E2B path expansion plus the root jail for every component but the last. */
  resolve(raw: string): string;
  /** The root jail for the final component too (operations that follow it). */
  checkFollow(abs: string): void;
}

/** Builds the FsRequest for an RPC from its Authorization header. */
export function fsRequest(ctx: DaemonContext, hctx: HandlerContext): FsRequest {
  const user = resolveRpcUser(hctx.requestHeader.get("authorization"), ctx.state.defaultUser);
  return {
    user,
    access: new FileAccess(ctx, user),
    resolve: (raw) => resolveUserPath(ctx, user, raw),
    checkFollow: (abs) => checkBeneathRoot(ctx, abs, { followFinal: true }),
  };
}
