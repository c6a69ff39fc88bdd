import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { CgroupManager } from "./cgroup.js";
import { CgroupV1Manager, type V1Controller } from "./cgroup-v1.js";
import { CgroupV2Manager } from "./cgroup-v2.js";
import { NoCgroupManager } from "./cgroup-none.js";
import { LimitError } from "./limits.js";

/** One cgroup filesystem mount from /proc/self/mountinfo. */
export interface CgroupMount {
  /** The directory inside the hierarchy that is mounted (not "/" for bind mounts of a subtree). */
  root: string;
  mountPoint: string;
  version: "v1" | "v2";
  /** v1: the controllers of this hierarchy (from the super options). */
  controllers: string[];
}

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses mountinfo text into its cgroup mounts. */
export function parseCgroupMounts(text: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(" ");
    const [fstype, , superOpts = ""] = line.slice(sep + 3).split(" ");
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    out.push({
      root: unescape(left[3] ?? "/"),
      mountPoint: unescape(left[4] ?? ""),
      version: fstype === "cgroup2" ? "v2" : "v1",
      controllers: fstype === "cgroup" ? superOpts.split(",") : [],
    });
  }
  return out;
}

/** Parses /proc/self/cgroup: "" → the v2 path, each v1 controller → its path. */
export function parseSelfCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") out.set("", m[3]!);
    else for (const c of m[2]!.split(",")) out.set(c, m[3]!);
  }
  return out;
}

/** The directory of `path` (a path in the hierarchy) under a mount of that hierarchy. */
function dirUnder(m: CgroupMount, path: string): string {
  const rel = m.root !== "/" && path.startsWith(m.root) ? path.slice(m.root.length) : path;
  return join(m.mountPoint, rel);
}

const V1_CONTROLLERS: V1Controller[] = ["memory", "cpu", "cpuacct", "pids", "blkio"];

/** What the daemon was configured with (config.cgroupRoot, cgroupMode, noCgroups). */
export interface CgroupSettings {
  root: string;
  mode: "auto" | "v2" | "v1" | "none";
  noCgroups: boolean;
}

/**
 * Chooses the cgroup manager once at start. auto: v2 when it can enforce
 * memory, pids and CPU bandwidth; else v1 when its controllers are mounted
 * (a hybrid machine whose unified hierarchy has no controllers); else v2 for
 * placement and CPU time only; else none. An explicit v2 or v1 that is not
 * mounted under the root throws a LimitError.
 */
export function createCgroupManager(s: CgroupSettings, sources = { mountinfo: "/proc/self/mountinfo", self: "/proc/self/cgroup" }): CgroupManager {
  if (s.noCgroups) return new NoCgroupManager("--no-cgroups", true);
  if (s.mode === "none") return new NoCgroupManager("--cgroup-mode none", true);
  let mounts: CgroupMount[];
  let self: Map<string, string>;
  try {
    mounts = parseCgroupMounts(readFileSync(sources.mountinfo, "utf8"));
    self = parseSelfCgroup(readFileSync(sources.self, "utf8"));
  } catch (err) {
    if (s.mode !== "auto") throw new LimitError(`cannot read the cgroup mounts: ${(err as Error).message}`);
    return new NoCgroupManager(`cannot read the cgroup mounts: ${(err as Error).message}`);
  }
  const root = s.root.replace(/\/+$/, "") || "/";
  const v2 = mounts.find((m) => m.version === "v2" && (m.mountPoint === root || m.mountPoint === join(root, "unified")));
  const v1Bases = new Map<V1Controller, string>();
  for (const c of V1_CONTROLLERS) {
    const m = mounts.find((x) => x.version === "v1" && x.controllers.includes(c) && x.mountPoint.startsWith(root + "/"));
    if (m) v1Bases.set(c, join(dirUnder(m, self.get(c) ?? "/"), "envd-ts"));
  }
  const makeV2 = () => CgroupV2Manager.init(v2!.mountPoint, dirUnder({ ...v2!, mountPoint: "/" }, self.get("") ?? "/"));

  if (s.mode === "v2") {
    if (!v2) throw new LimitError(`--cgroup-mode v2: no cgroup2 filesystem is mounted at ${root} or ${join(root, "unified")}`);
    return makeV2();
  }
  if (s.mode === "v1") {
    if (v1Bases.size === 0) throw new LimitError(`--cgroup-mode v1: no cgroup v1 controllers (${V1_CONTROLLERS.join(", ")}) are mounted under ${root}`);
    return new CgroupV1Manager(v1Bases);
  }
  const pickAuto = (): CgroupManager => {
    if (v2 && v2.mountPoint === root) {
      const m = makeV2();
      if (!m.unsupported("memoryMaxBytes") && !m.unsupported("pidsMax") && !m.unsupported("cpuCores")) return m;
      if (v1Bases.size === 0) return m;
    } else if (v2 && v1Bases.size === 0) {
      return makeV2();
    }
    if (v1Bases.size > 0) return new CgroupV1Manager(v1Bases);
    return new NoCgroupManager(`no cgroup filesystem is mounted under ${root}`);
  };
  try {
    return pickAuto();
  } catch (err) {
    // A daemon without the right to create its cgroup directories (not root, a read-only
    // cgroupfs) still serves; limits that need cgroups are then refused with this reason.
    if (err instanceof LimitError) return new NoCgroupManager(err.message);
    throw err;
  }
}
