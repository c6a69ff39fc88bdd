import type { Client } from "@connectrpc/connect";
import type { EntryInfo } from "../gen/filesystem_pb.js";
import type { FilesystemExt } from "../gen/envdts/v1/filesystem_ext_pb.js";
import { call } from "./errors.js";
import type { CallOptions } from "./processes.js";

export type { EntryInfo };

/** What a copy did. */
export interface CopyResult {
  entry?: EntryInfo;
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  /** Devices, FIFOs and sockets, which are not copied. */
  skipped: number;
}

/** One page of a directory listing. */
export interface DirPage {
  entries: EntryInfo[];
  /** Pass as pageToken for the next page; "" when this was the last. */
  nextPageToken: string;
  /** Entries in the directory when this page was read. */
  total: number;
}

/** envdts.v1.FilesystemExt: copy, chmod, chown and paged listing. Paths resolve as the E2B filesystem's do. */
export class FilesApi {
  constructor(private readonly rpc: Client<typeof FilesystemExt>) {}

  /** Copies a file, symlink or whole tree to `destination` (the new path, not a directory to copy into). */
  async copy(source: string, destination: string, options: CallOptions & { force?: boolean } = {}): Promise<CopyResult> {
    const r = await call(this.rpc.copy({ source, destination, force: options.force ?? false }, options));
    return { entry: r.entry, files: Number(r.files), directories: Number(r.directories), symlinks: Number(r.symlinks), bytes: Number(r.bytes), skipped: Number(r.skipped) };
  }

  /** Sets permission bits (0 to 0o7777), optionally for a whole tree. Returns how many entries changed. */
  async chmod(path: string, mode: number, options: CallOptions & { recursive?: boolean } = {}): Promise<{ entry?: EntryInfo; changed: number }> {
    const r = await call(this.rpc.chmod({ path, mode, recursive: options.recursive ?? false }, options));
    return { entry: r.entry, changed: Number(r.changed) };
  }

  /** Changes owner and/or group (names or numeric ids), optionally for a whole tree. */
  async chown(path: string, owner: { user?: string; group?: string }, options: CallOptions & { recursive?: boolean } = {}): Promise<{ entry?: EntryInfo; changed: number }> {
    const r = await call(this.rpc.chown({ path, user: owner.user ?? "", group: owner.group ?? "", recursive: options.recursive ?? false }, options));
    return { entry: r.entry, changed: Number(r.changed) };
  }

  /** One page of a directory's children, ordered by name bytes. */
  async listPage(path: string, options: CallOptions & { limit?: number; pageToken?: string; offset?: number } = {}): Promise<DirPage> {
    const r = await call(this.rpc.listDirPage({ path, limit: options.limit ?? 0, pageToken: options.pageToken ?? "", offset: options.offset ?? 0 }, options));
    return { entries: r.entries, nextPageToken: r.nextPageToken, total: Number(r.total) };
  }

  /** Every child of a directory, page by page (memory bounded by the page size, however big the directory). */
  async *list(path: string, options: CallOptions & { pageSize?: number } = {}): AsyncGenerator<EntryInfo> {
    let pageToken = "";
    do {
      const page = await this.listPage(path, { ...options, limit: options.pageSize, pageToken });
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
}
