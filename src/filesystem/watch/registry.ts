import { randomInt } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { DirWatcher } from "./dir-watcher.js";

const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A watcher id as envd makes them: "w" and 20 characters of [a-z0-9]. */
export function newWatcherId(): string {
  let id = "w";
  for (let i = 0; i < 20; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

/**
 * The polling watchers (CreateWatcher): they outlive their request and live
 * here until RemoveWatcher or shutdown.
 */
export class WatcherRegistry {
  private readonly watchers = new Map<string, DirWatcher>();

  add(watcher: DirWatcher): string {
    let id = newWatcherId();
    while (this.watchers.has(id)) id = newWatcherId();
    this.watchers.set(id, watcher);
    return id;
  }

  /** Throws not_found for an unknown id, with envd's text. */
  get(id: string): DirWatcher {
    const w = this.watchers.get(id);
    if (!w) throw new ConnectError(`watcher with id ${id} not found`, Code.NotFound);
    return w;
  }

  remove(id: string): void {
    const w = this.get(id);
    this.watchers.delete(id);
    w.close();
  }

  get size(): number {
    return this.watchers.size;
  }

  closeAll(): void {
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
