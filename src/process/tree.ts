import { readdirSync, readFileSync } from "node:fs";

/** One line of /proc/<pid>/stat, the fields tree kills need. */
export interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  /** R, S, D, Z, T, ... */
  state: string;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses. */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const pid = Number(text.slice(0, text.indexOf(" ")));
  const f = text.slice(close + 2).split(" ");
  if (f.length < 4) return undefined;
  return { pid, state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) };
}

/** Reads one process's stat, or undefined when it is gone. */
export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return undefined;
  }
}

/** Every process visible in /proc. */
export function readProcTable(): ProcStat[] {
  const out: ProcStat[] = [];
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of names) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const st = readStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

/** Where a command's tree is found: its pid (also its group), its session, and a pid to leave alone. */
export interface TreeRoot {
  leader: number;
  session: number;
  /** A PTY keeper: part of the session, but it ends by itself once the command is gone. */
  exclude?: number;
  /** Pids in the run's cgroup: members even after they left the session and were orphaned. */
  cgroupMembers?: () => number[];
}

/**
 * The processes that belong to a command's tree: members of its session or
 * group, plus every descendant of any of them (which catches children that
 * called setsid themselves), and everything in the run's cgroup if it has one
 * (which catches orphans too). The daemon and pid 1 are never included.
 */
export function treeMembers(root: TreeRoot, table: ProcStat[] = readProcTable()): ProcStat[] {
  const { leader, session } = root;
  const children = new Map<number, ProcStat[]>();
  for (const p of table) {
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const members = new Map<number, ProcStat>();
  const inCgroup = new Set(root.cgroupMembers?.() ?? []);
  const stack: ProcStat[] = table.filter((p) => p.pid === leader || p.session === session || p.pgrp === leader || inCgroup.has(p.pid));
  while (stack.length) {
    const p = stack.pop()!;
    if (members.has(p.pid) || p.pid === process.pid || p.pid === 1) continue;
    members.set(p.pid, p);
    for (const c of children.get(p.pid) ?? []) stack.push(c);
  }
  if (root.exclude !== undefined) members.delete(root.exclude);
  return [...members.values()];
}

function trySignal(pid: number, signal: number): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Signals the leader's process group, then each tree member; returns how many were signalled. */
export function signalTree(root: TreeRoot, signal: number): number {
  if (root.leader <= 1 || root.leader === process.pid) return 0;
  // Found before anything dies: a killed parent's children are reparented to init and untraceable.
  const members = treeMembers(root);
  let n = trySignal(-root.leader, signal) ? 1 : 0;
  for (const p of members) if (p.state !== "Z" && trySignal(p.pid, signal)) n++;
  return n;
}

/** Signals only the process group (what kill(-pgid) reaches). */
export function signalGroup(leader: number, signal: number): boolean {
  if (leader <= 1 || leader === process.pid) return false;
  return trySignal(-leader, signal);
}

/** Live (not zombie) members of the tree. */
export function liveTreeMembers(root: TreeRoot): number[] {
  return treeMembers(root)
    .filter((p) => p.state !== "Z" && p.state !== "X")
    .map((p) => p.pid);
}

/**
 * SIGKILLs the tree until nothing in it is left alive, re-scanning to catch
 * children forked while the first signals were in flight. Bounded: gives up
 * after `rounds` rounds.
 */
export async function killTree(root: TreeRoot, rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    signalTree(root, 9);
    await new Promise((r) => setTimeout(r, i === 0 ? 5 : 20));
    if (liveTreeMembers(root).length === 0) return;
  }
}
