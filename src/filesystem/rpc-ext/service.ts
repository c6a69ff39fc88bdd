import type { ConnectRouter } from "@connectrpc/connect";
import type { DaemonContext } from "../../daemon-context.js";
import { FilesystemExt } from "../../gen/envdts/v1/filesystem_ext_pb.js";
import { copy } from "./copy.js";
import { listDirPage } from "./list-dir-page.js";
import { chmodPath, chownPath } from "./owner-mode.js";

/** Registers envdts.v1.FilesystemExt, our file operations beyond E2B's. */
export function registerFilesystemExtService(router: ConnectRouter, ctx: DaemonContext): void {
  router.service(FilesystemExt, {
    copy: (req, hctx) => copy(ctx, req, hctx),
    chmod: (req, hctx) => chmodPath(ctx, req, hctx),
    chown: (req, hctx) => chownPath(ctx, req, hctx),
    listDirPage: (req, hctx) => listDirPage(ctx, req, hctx),
  });
}
