import { posix } from "node:path";
import type { Readable } from "node:stream";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError } from "../http/respond.js";
import type { UserAccount } from "../users/passwd.js";
import { writeUploadedFile } from "./file-writer.js";
import { sortedMetadata } from "./metadata-headers.js";
import { permissionProblem, targetProblem } from "./permissions.js";
import { FileAccess } from "../filesystem/access.js";

/** One element of POST /files' answer, keys in envd's (Go struct) order. */
export interface UploadedEntry {
  metadata?: Record<string, string>;
  name: string;
  path: string;
  type: "file";
}

/** What every file of one upload request shares. */
export interface UploadRequest {
  ctx: DaemonContext;
  user: UserAccount;
  metadata: Record<string, string>;
  contentLength: number | undefined;
  /** The extension's `mode=` (see parseUploadMode). */
  mode?: number;
}

/**
 * Writes one uploaded file to the resolved `path` and describes it as envd does,
 * with the metadata read back from the file written.
 */
export async function uploadOne(up: UploadRequest, path: string, body: Readable): Promise<UploadedEntry> {
  const { ctx, user } = up;
  if (ctx.config.enforceFilePermissions) {
    const problem = await permissionProblem(user, path, "write");
    if (problem) throw new HttpError(403, problem);
  }
  const persisted = await writeUploadedFile(ctx, path, body, {
    uid: user.uid,
    gid: user.gid,
    metadata: up.metadata,
    maxBytes: ctx.config.maxFileBytes,
    contentLength: up.contentLength,
    log: ctx.log,
    keepOwnerInPlace: ctx.config.enforceFilePermissions && user.uid !== 0,
    mode: up.mode,
    // The kernel, as the user, decides on the directory actually written into, whatever the path names by now.
    access: ctx.config.enforceFilePermissions && user.uid !== 0 ? FileAccess.enforcedFor(user) : undefined,
    checkTarget: ctx.config.enforceFilePermissions && user.uid !== 0 ? (dirfd, name, exists) => targetProblem(user, dirfd, name, exists, path) : undefined,
  });
  const entry: UploadedEntry = { name: posix.basename(path), path, type: "file" };
  return Object.keys(persisted).length > 0 ? { metadata: sortedMetadata(persisted), ...entry } : entry;
}

/** envd's refusal of a second file for a path already written in the same request. */
export function duplicateTargetError(path: string, done: UploadedEntry[]): HttpError {
  let msg = `you cannot upload multiple files to the same path '${path}' in one upload request, only the first specified file was uploaded`;
  const others = done.filter((e) => e.path !== path).map((e) => e.path);
  // envd lists the other files only when there are at least two of them.
  if (others.length > 1) msg += `, also the following files were uploaded: ${others.join(", ")}`;
  return new HttpError(400, msg);
}
