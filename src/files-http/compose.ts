import { randomUUID } from "node:crypto";
import { constants, createReadStream } from "node:fs";
import { writeStreamOn } from "./fd-streams.js";
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DaemonContext } from "../daemon-context.js";
import { HttpError, sendJson, sendJsonError } from "../http/respond.js";
import type { HttpRequest, RouteHandler } from "../http/types.js";
import type { UserAccount } from "../users/passwd.js";
import { ensureDirs } from "../filesystem/ensure-dirs.js";
import { goErrorText, goQuote, isNoSpace } from "../filesystem/go-text.js";
import { claimForRemoval, permissionProblem, type Claim } from "./permissions.js";
import { fileRequestUser, resolveFilePath } from "./request-context.js";

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

/** Resolves and checks every source as envd does, in order; returns their absolute paths and total size. */
async function checkSources(ctx: DaemonContext, user: UserAccount, sources: string[], dest: string): Promise<{ paths: string[]; bytes: number }> {
  const paths: string[] = [];
  let bytes = 0;
  for (const src of sources) {
    const resolved = resolveFilePath(ctx, user, src, `error resolving source path ${goQuote(src)}: `);
    if (resolved === dest) throw new HttpError(400, `source path ${goQuote(src)} cannot be the same as destination`);
    let st;
    try {
      st = await stat(resolved);
    } catch {
      throw new HttpError(404, `source file not found: ${src}`);
    }
    if (!st.isFile()) throw new HttpError(400, `source path is not a regular file: ${src}`);
    if (ctx.config.enforceFilePermissions) {
      const problem = (await permissionProblem(user, resolved, "read")) ?? (await permissionProblem(user, posix.dirname(resolved), "write"));
      if (problem) throw new HttpError(403, problem);
    }
    paths.push(resolved);
    bytes += st.size;
  }
  return { paths, bytes };
}

/** Appends each source to the open destination with backpressure; envd's errors on failure. */
async function concatenate(handle: FileHandle, sources: string[]): Promise<void> {
  let offset = 0;
  for (const src of sources) {
    // Non-blocking: a source swapped for a FIFO since it was checked fails instead of waiting for a writer.
    const input = createReadStream(src, { highWaterMark: CHUNK, flags: (constants.O_RDONLY | constants.O_NONBLOCK) as unknown as string /* fs.open takes numeric flags; the types do not say so */ });
    try {
      await new Promise<void>((resolve, reject) => {
        input.once("open", () => resolve());
        input.once("error", reject);
      });
    } catch (err) {
      throw new HttpError(500, `error opening source file ${src}: ${goErrorText(err)}`);
    }
    // Over the numeric fd, never closed by the stream itself (see fd-streams.ts).
    const output = writeStreamOn(handle, { start: offset, highWaterMark: CHUNK });
    try {
      await pipeline(input, output);
    } catch (err) {
      if (isNoSpace(err)) throw new HttpError(507, "not enough disk space available");
      throw new HttpError(500, `error composing source ${src}: ${goErrorText(err)}`);
    }
    offset += output.bytesWritten;
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
      const sources = await checkSources(ctx, user, body.sourcePaths, dest);
      if (ctx.config.enforceFilePermissions) {
        const problem = await permissionProblem(user, dest, "write");
        if (problem) throw new HttpError(403, problem);
      }
      const limit = ctx.config.maxFileBytes;
      if (limit > 0 && sources.bytes > limit) throw new HttpError(413, `composed file size ${sources.bytes} exceeds the limit of ${limit} bytes`);
      // Enforced: the sources are moved aside as the user first, so the kernel decides (sticky bit
      // included) whether the user may delete them before anything is written.
      if (ctx.config.enforceFilePermissions && user.uid !== 0) {
        claim = await claimForRemoval(user, sources.paths);
        sources.paths = claim.paths;
      }
      try {
        await ensureDirs(posix.dirname(dest), user.uid, user.gid);
      } catch (err) {
        throw new HttpError(500, `error ensuring directories: ${(err as Error).message}`);
      }

      const temp = `${dest}.e2b-compose.${randomUUID()}.tmp`;
      let handle: FileHandle;
      try {
        handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o666);
      } catch (err) {
        if (isNoSpace(err)) throw new HttpError(507, "not enough disk space available");
        throw new HttpError(500, `error creating destination file: ${goErrorText(err)}`);
      }
      let renamed = false;
      try {
        try {
          await handle.chown(user.uid, user.gid);
        } catch (err) {
          throw new HttpError(500, `error changing file ownership: ${goErrorText(err)}`);
        }
        await concatenate(handle, sources.paths);
        try {
          await handle.close();
        } catch (err) {
          throw new HttpError(500, `error closing destination file: ${goErrorText(err)}`);
        }
        try {
          await rename(temp, dest);
          renamed = true;
        } catch (err) {
          throw new HttpError(500, `error finalizing compose: ${goErrorText(err)}`);
        }
      } finally {
        await handle.close().catch(() => {});
        if (!renamed) await unlink(temp).catch(() => {});
      }
      for (const src of sources.paths) await unlink(src).catch(() => {});
      ctx.log.info({ path: dest, sources: sources.paths.length, size: sources.bytes }, "file compose completed");
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
