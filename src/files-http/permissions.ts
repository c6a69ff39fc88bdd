import { existsSync } from "node:fs";
import { ConnectError } from "@connectrpc/connect";
import { FileAccess, R_OK, W_OK } from "../filesystem/access.js";
import type { UserAccount } from "../users/passwd.js";

/**
 * Whether `user` could `access` `path` by the mode bits (see FileAccess): a write to
 * a missing path needs write and search on the nearest existing directory.
 * Returns the refusal text, or undefined when allowed.
 */
export async function permissionProblem(user: UserAccount, path: string, access: "read" | "write"): Promise<string | undefined> {
  const checks = FileAccess.enforcedFor(user);
  try {
    if (access === "read") checks.require(path, R_OK);
    else if (existsSync(path)) checks.require(path, W_OK);
    else checks.requireCreate(path);
    return undefined;
  } catch (err) {
    if (err instanceof ConnectError) return err.rawMessage;
    throw err;
  }
}
