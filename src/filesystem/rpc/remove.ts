import { execFile, spawn } from "node:child_process";
import { lstatSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { failureCode } from "../../http/failure-code.js";
import type { DaemonContext } from "../../daemon-context.js";
import type { RemoveRequest, RemoveResponseSchema } from "../../gen/filesystem_pb.js";
import type { FileAccess } from "../access.js";
import { fsRequest } from "../request.js";
import { statAt } from "../fd-ops.js";
import { openParent, type ParentEntry } from "../resolve.js";
import { walkTree } from "../walk.js";

/** With enforcement: every entry of a tree must be removable by the user, checked before anything goes. */
async function requireRemovableTree(access: FileAccess, path: string): Promise<void> {
  await access.requireRemove(path);
  let isDir = false;
  try {
    isDir = lstatSync(path).isDirectory();
  } catch {
    return;
  }
  if (!isDir) return;
  for await (const entry of walkTree(Buffer.from(path), { depth: Number.MAX_SAFE_INTEGER })) await access.requireRemove(entry.abs);
}

/** os.RemoveAll as the user: children first, a missing entry is success. */
async function removeTreeAs(access: FileAccess, path: Buffer): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  try {
    if (st.isDirectory()) {
      for (const name of await readdir(path, { encoding: "buffer" })) await removeTreeAs(access, Buffer.concat([path, Buffer.from("/"), name]));
      await access.rmdir(path);
    } else await access.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    if (err instanceof ConnectError) throw err;
    throw new ConnectError(`error removing file or directory: ${(err as Error).message}`, failureCode(err));
  }
}

/** Filesystem.Remove: recursive, like os.RemoveAll; a missing path is success. */
export async function remove(ctx: DaemonContext, req: RemoveRequest, hctx: HandlerContext): Promise<MessageInitShape<typeof RemoveResponseSchema>> {
  const r = fsRequest(ctx, hctx);
  const path = r.resolve(req.path);
  if (r.access.enforced) {
    await requireRemovableTree(r.access, path);
    // As the user: the kernel applies the sticky bit to every entry.
    await removeTreeAs(r.access, Buffer.from(path));
    return {};
  }
  if (ctx.config.fsRoot) return removeInJail(ctx, path);
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENAMETOOLONG" && (await removeDeepTree(path))) return {};
    throw new ConnectError(`error removing file or directory: ${(err as Error).message}`, failureCode(err));
  }
  return {};
}

/**
 * Node removes by path, so a tree deeper than PATH_MAX (which any process can build with
 * relative mkdirs) cannot be removed that way; rm(1) walks it with openat, as Go's RemoveAll does.
 */
function removeDeepTree(path: string): Promise<boolean> {
  return new Promise((resolve) => execFile("rm", ["-rf", "--", path], (err) => resolve(!err)));
}

/**
 * Remove in the root jail: the entry's directory is resolved once beneath the root and rm(1) gets
 * its descriptor (as fd 3), so it removes /proc/self/fd/3/<name> and walks below it with openat and
 * O_NOFOLLOW: a directory swapped for a symlink out of the jail mid-removal is unlinked itself,
 * never followed (Node's recursive rm lists and deletes by path, which such a swap redirects).
 */
async function removeInJail(ctx: DaemonContext, path: string): Promise<MessageInitShape<typeof RemoveResponseSchema>> {
  let parent: ParentEntry;
  try {
    parent = openParent(ctx, path, { follow: false });
  } catch (err) {
    if (err instanceof ConnectError) throw err;
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConnectError(`error removing file or directory: ${(err as Error).message}`, failureCode(err));
  }
  try {
    if (!statAt(parent.dir, parent.name)) return {};
    const target = `/proc/self/fd/3/${parent.name.toString()}`;
    const stderr = await new Promise<string | undefined>((resolve) => {
      const child = spawn("rm", ["-rf", "--", target], { stdio: ["ignore", "ignore", "pipe", parent.dir] });
      let text = "";
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (text += d.slice(0, 4096)));
      child.on("error", (err) => resolve(err.message));
      child.on("close", (code) => resolve(code === 0 ? undefined : text.trim() || `rm exited with ${code}`));
    });
    if (stderr !== undefined) throw new ConnectError(`error removing file or directory: ${stderr.replaceAll(target, path)}`, Code.Internal);
    return {};
  } finally {
    parent.close();
  }
}
