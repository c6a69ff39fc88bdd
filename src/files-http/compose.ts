import { randomUUID } from "node:crypto";
import { close as fsClose, closeSync, constants, fchownSync, fstatSync, type Stats } from "node:fs";
import { promisify } from "node:util";
import { ConnectError } from "@connectrpc/connect";
import { readStreamOn, writeStreamOn } from "./fd-streams.js";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError, sendJson, sendJsonError } from "../http/respond.js";
import type { HttpRequest, RouteHandler } from "../http/types.js";
import type { UserAccount } from "../users/passwd.js";
import { ensureParentDirs } from "../filesystem/ensure-dirs.js";
import { FileAccess } from "../filesystem/access.js";
import { fdOps, sameFile, statAt } from "../filesystem/fd-ops.js";
import { openParent, openPathAsync, type ParentEntry } from "../filesystem/resolve.js";
import { goErrorText, goQuote, isNoSpace } from "../filesystem/go-text.js";
import { claimForRemoval, descriptorProblem, permissionProblem, type Claim } from "./permissions.js";
import { fileRequestUser, pathHttpError, resolveFilePath } from "./request-context.js";
import { recordTempDir } from "../persist/temp-dirs.js";

/** POST /files/compose's JSON body. */
interface ComposeRequest {
  sourcePaths: string[];
  destination: string;
  username: string | undefined;
}

const CHUNK = 64 * 1024;

async function readBody(req: HttpRequest, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  return typeof v === "object" ? "object" : typeof v === "boolean" ? "bool" : (typeof v as string);
}

/** Go's encoding/json field lookup: exact name first, then case-insensitively. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : obj[key];
}

/** Decodes the body the way envd's json.Decoder would, with its error wording. */
function parseComposeRequest(raw: Buffer): ComposeRequest {
  const text = raw.toString("utf8");
  const bad = (why: string) => new HttpError(400, `invalid request body: ${why}`);
  if (text.trim() === "") throw bad("EOF");
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw bad(/end of JSON input/i.test((err as Error).message) ? "unexpected EOF" : (err as Error).message);
  }
  if (v === null) return { sourcePaths: [], destination: "", username: undefined };
  if (typeof v !== "object" || Array.isArray(v)) throw bad(`json: cannot unmarshal ${jsonKind(v)} into Go value of type api.ComposeRequest`);
  const obj = v as Record<string, unknown>;
  const mismatch = (name: string, got: unknown, goType: string) =>
    bad(`json: cannot unmarshal ${jsonKind(got)} into Go struct field ComposeRequest.${name} of type ${goType}`);

  const sources = field(obj, "source_paths");
  const sourcePaths: string[] = [];
  if (sources !== undefined && sources !== null) {
    if (!Array.isArray(sources)) throw mismatch("source_paths", sources, "[]string");
    for (const s of sources) {
      if (s === null) sourcePaths.push("");
      else if (typeof s !== "string") throw mismatch("source_paths", s, "string");
      else sourcePaths.push(s);
    }
  }
  const destination = field(obj, "destination");
  if (destination !== undefined && destination !== null && typeof destination !== "string") throw mismatch("destination", destination, "string");
  const username = field(obj, "username");
  if (username !== undefined && username !== null && typeof username !== "string") throw mismatch("username", username, "string");
  return { sourcePaths, destination: (destination as string | null) ?? "", username: (username as string | null) ?? undefined };
}

const closeFd = promisify(fsClose);

/** One source, opened once: its data is read from `fd`, its identity is `st`. */
interface Source {
  raw: string;
  path: string;
  fd: number;
  st: Stats;
}

function closeAll(sources: Source[]): void {
  for (const s of sources) closeSync(s.fd);
}

/** The destination's current file, if any (a final symlink followed, as envd's checks do). */
function destinationFile(ctx: DaemonContext, dest: string): { dev: number; ino: number } | undefined {
  let parent: ParentEntry;
  try {
    parent = openParent(ctx, dest, { follow: true });
  } catch (err) {
    if (err instanceof ConnectError) throw pathHttpError(err, "error resolving destination path: ");
    return undefined;
  }
  try {
    return statAt(parent.dir, parent.name);
  } catch {
    return undefined;
  } finally {
    parent.close();
  }
}

/**
 * Resolves, opens and checks every source as envd does, in order. Sources are compared by identity
 * (device and inode), not spelling: a source that is the destination under another name, or two
 * sources that are one file, would have the compose delete what it just wrote.
 */
async function openSources(ctx: DaemonContext, user: UserAccount, raws: string[], dest: string): Promise<{ sources: Source[]; bytes: number }> {
  const sources: Source[] = [];
  let bytes = 0;
  const destFile = destinationFile(ctx, dest);
  try {
    for (const raw of raws) {
      const resolved = resolveFilePath(ctx, user, raw, `error resolving source path ${goQuote(raw)}: `);
      if (resolved === dest) throw new HttpError(400, `source path ${goQuote(raw)} cannot be the same as destination`);
      let fd: number;
      try {
        // Non-blocking: a source swapped for a FIFO since it was resolved fails instead of waiting for a writer.
        fd = await openPathAsync(ctx, resolved, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      } catch (err) {
        if (err instanceof ConnectError) throw pathHttpError(err, `error resolving source path ${goQuote(raw)}: `);
        throw new HttpError(404, `source file not found: ${raw}`);
      }
      const st = fstatSync(fd);
      sources.push({ raw, path: resolved, fd, st });
      if (!st.isFile()) throw new HttpError(400, `source path is not a regular file: ${raw}`);
      if (destFile && sameFile(st, destFile)) throw new HttpError(400, `source path ${goQuote(raw)} cannot be the same as destination`);
      const twin = sources.find((other) => other.fd !== fd && sameFile(other.st, st));
      if (twin) throw new HttpError(400, `source path ${goQuote(raw)} is the same file as source path ${goQuote(twin.raw)}`);
      if (ctx.config.enforceFilePermissions) {
        // The kernel, as the user, decides on the file actually opened and read.
        const problem = (await permissionProblem(user, resolved, "read")) ?? (await permissionProblem(user, posix.dirname(resolved), "write")) ?? (await descriptorProblem(user, fd, resolved, "read"));
        if (problem) throw new HttpError(403, problem);
      }
      bytes += st.size;
    }
  } catch (err) {
    closeAll(sources);
    throw err;
  }
  return { sources, bytes };
}

/** Appends each source to the open destination with backpressure; envd's errors on failure. */
async function concatenate(fd: number, sources: Source[]): Promise<void> {
  let offset = 0;
  for (const src of sources) {
    // Over the descriptors opened and checked above, never closed by the streams themselves.
    const input = readStreamOn(src.fd, { start: 0, highWaterMark: CHUNK });
    const output = writeStreamOn(fd, { start: offset, highWaterMark: CHUNK });
    try {
      await pipeline(input, output);
    } catch (err) {
      if (isNoSpace(err)) throw new HttpError(507, "not enough disk space available");
      throw new HttpError(500, `error composing source ${src.path}: ${goErrorText(err)}`);
    }
    offset += output.bytesWritten;
  }
}

/**
 * Deletes a source once its data is in the destination: the entry its path names now, only if it
 * is still the file that was read (or a symlink, which envd removes itself).
 */
function removeSource(ctx: DaemonContext, src: Source, raw: string): void {
  let parent: ParentEntry;
  try {
    parent = openParent(ctx, posix.resolve(src.path), { follow: false });
  } catch {
    return;
  }
  try {
    const entry = statAt(parent.dir, parent.name);
    if (entry && (entry.isSymbolicLink() || sameFile(entry, src.st))) fdOps().unlinkAt(parent.dir, parent.name, 0);
    else ctx.log.warn({ path: raw }, "compose source changed since it was read; not removed");
  } catch {
    /* gone already: as envd, ignored */
  } finally {
    parent.close();
  }
}

/**
 * Writes the sources into a temporary file in the destination's directory (created there, owned by
 * the user on its descriptor before it has a name anyone else uses) and renames it into place.
 */
async function composeInto(parent: ParentEntry, dest: string, sources: Source[], user: UserAccount): Promise<void> {
  const temp = Buffer.concat([parent.name, Buffer.from(`.e2b-compose.${randomUUID()}.tmp`)]);
  // On record before the file exists: a daemon killed mid-compose has it removed at the next start.
  recordTempDir(parent.dir);
  let fd: number;
  try {
    fd = await fdOps().openAtAsync(parent.dir, temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666);
  } catch (err) {
    if (isNoSpace(err)) throw new HttpError(507, "not enough disk space available");
    throw new HttpError(500, `error creating destination file: ${goErrorText(err)}`);
  }
  let renamed = false;
  let open = true;
  try {
    try {
      fchownSync(fd, user.uid, user.gid);
    } catch (err) {
      throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
    }
    await concatenate(fd, sources);
    open = false;
    try {
      await closeFd(fd);
    } catch (err) {
      throw new HttpError(500, `error closing destination file: ${goErrorText(err)}`);
    }
    try {
      await fdOps().renameAtAsync(parent.dir, temp, parent.dir, parent.name, 0);
      renamed = true;
    } catch (err) {
      throw new HttpError(500, `error finalizing compose: ${goErrorText(err)}`);
    }
  } finally {
    if (open) await closeFd(fd).catch(() => {});
    if (!renamed) {
      try {
        fdOps().unlinkAt(parent.dir, temp, 0);
      } catch {
        /* never created or already gone */
      }
    }
  }
}

/**
 * POST /files/compose (docs/protocol.md, "HTTP API"): concatenates the sources into a temporary file
 * beside the destination, renames it into place, then deletes the sources.
 */
export function composeRoute(ctx: DaemonContext): RouteHandler {
  return async (req, res) => {
    let claim: Claim | undefined;
    try {
      const body = parseComposeRequest(await readBody(req, ctx.config.maxMessageBytes));
      if (body.sourcePaths.length === 0) throw new HttpError(400, "source_paths must not be empty");
      if (body.destination === "") throw new HttpError(400, "destination is required");
      const user = fileRequestUser(ctx, body.username);
      const dest = resolveFilePath(ctx, user, body.destination, "error resolving destination path: ");
      const { sources, bytes } = await openSources(ctx, user, body.sourcePaths, dest);
      try {
        if (ctx.config.enforceFilePermissions) {
          const problem = await permissionProblem(user, dest, "write");
          if (problem) throw new HttpError(403, problem);
        }
        const limit = ctx.config.maxFileBytes;
        if (limit > 0 && bytes > limit) throw new HttpError(413, `composed file size ${bytes} exceeds the limit of ${limit} bytes`);
        // Enforced: the sources are moved aside as the user first, so the kernel decides (sticky bit
        // included) whether the user may delete them before anything is written.
        if (ctx.config.enforceFilePermissions && user.uid !== 0) {
          claim = await claimForRemoval(user, sources.map((s) => s.path));
          claim.paths.forEach((claimed, i) => (sources[i]!.path = claimed));
        }
        let parent: ParentEntry;
        try {
          parent = ensureParentDirs(ctx, dest, user.uid, user.gid, new FileAccess(ctx, user));
        } catch (err) {
          if (err instanceof ConnectError) throw pathHttpError(err, "error resolving destination path: ");
          throw new HttpError(500, `error ensuring directories: ${(err as Error).message}`);
        }
        try {
          await composeInto(parent, dest, sources, user);
        } finally {
          parent.close();
        }
        for (const src of sources) removeSource(ctx, src, src.raw);
      } finally {
        closeAll(sources);
      }
      ctx.log.info({ path: dest, sources: sources.length, size: bytes }, "file compose completed");
      sendJson(res, 200, { name: posix.basename(dest), path: dest, type: "file" });
    } catch (err) {
      await claim?.restore();
      if (err instanceof HttpError) sendJsonError(res, err.status, err.message);
      else {
        ctx.log.error({ err }, "compose failed");
        sendJsonError(res, 500, (err as Error)?.message ?? String(err));
      }
    }
  };
}
