import { readFileSync, statSync } from "node:fs";

/** A user account from /etc/passwd, with its groups from /etc/group. */
export interface UserAccount {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** Primary gid first, then every supplementary group that lists the user. */
  groups: number[];
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

interface Tables {
  users: Map<string, UserAccount>;
  userNames: Map<number, string>;
  groupNames: Map<number, string>;
  groupsByName: Map<string, GroupEntry>;
}

const PASSWD = "/etc/passwd";
const GROUP = "/etc/group";

let cached: { key: string; tables: Tables } | undefined;
let checkedAt = 0;

function fileKey(): string {
  const key = (p: string) => {
    try {
      const s = statSync(p);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return "missing";
    }
  };
  return `${key(PASSWD)}|${key(GROUP)}`;
}

/** A missing file is an empty table; any other failure (EMFILE under load) is thrown. */
function readLines(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

function load(): Tables {
  const groupsByName = new Map<string, GroupEntry>();
  const groupNames = new Map<number, string>();
  const memberOf = new Map<string, number[]>();
  for (const line of readLines(GROUP)) {
    if (!line || line.startsWith("#")) continue;
    const [name, , gidText, members = ""] = line.split(":");
    const gid = Number(gidText);
    if (!name || !Number.isInteger(gid)) continue;
    const entry = { name, gid, members: members.split(",").filter(Boolean) };
    groupsByName.set(name, entry);
    if (!groupNames.has(gid)) groupNames.set(gid, name);
    for (const m of entry.members) {
      const list = memberOf.get(m) ?? [];
      list.push(gid);
      memberOf.set(m, list);
    }
  }
  const users = new Map<string, UserAccount>();
  const userNames = new Map<number, string>();
  for (const line of readLines(PASSWD)) {
    if (!line || line.startsWith("#")) continue;
    const [name, , uidText, gidText, , home = "/", shell = "/bin/sh"] = line.split(":");
    const uid = Number(uidText);
    const gid = Number(gidText);
    if (!name || !Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    const groups = [gid, ...(memberOf.get(name) ?? []).filter((g) => g !== gid)];
    if (!users.has(name)) users.set(name, { name, uid, gid, home: home || "/", shell, groups: [...new Set(groups)] });
    if (!userNames.has(uid)) userNames.set(uid, name);
  }
  return { users, userNames, groupNames, groupsByName };
}

function tables(): Tables {
  const now = Date.now();
  if (cached && now - checkedAt < 1000) return cached.tables;
  const key = fileKey();
  if (!cached || cached.key !== key) {
    try {
      cached = { key, tables: load() };
    } catch (err) {
      // Tables that could not be read are never cached: the last good ones serve until a read succeeds.
      if (cached) return cached.tables;
      throw err;
    }
  }
  checkedAt = now;
  return cached.tables;
}

/** Looks a user up by name, as Go's pure user.Lookup does (no NSS). */
export function lookupUser(name: string): UserAccount | undefined {
  return tables().users.get(name);
}

/** Looks a user up by name or by numeric uid. */
export function lookupUserByNameOrId(nameOrId: string): UserAccount | undefined {
  const byName = lookupUser(nameOrId);
  if (byName) return byName;
  if (/^\d+$/.test(nameOrId)) {
    const uid = Number(nameOrId);
    const name = tables().userNames.get(uid);
    if (name) return lookupUser(name);
  }
  return undefined;
}

/** Looks a group up by name or numeric gid; returns its gid. */
export function lookupGroupId(nameOrId: string): number | undefined {
  const entry = tables().groupsByName.get(nameOrId);
  if (entry) return entry.gid;
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  return undefined;
}

/** The name for a uid, or the number as text when there is none. */
export function userName(uid: number): string {
  return tables().userNames.get(uid) ?? String(uid);
}

/** The name for a gid, or the number as text when there is none. */
export function groupName(gid: number): string {
  return tables().groupNames.get(gid) ?? String(gid);
}
