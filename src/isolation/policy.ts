import { isAbsolute, normalize } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError, type PolicyConfig } from "../config.js";
import type { CgroupManager } from "../limits/cgroup.js";
import { LIMIT_FIELD, type ResourceLimits } from "../limits/limits.js";
import { ALL_CAPS, CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CONFINE_DROP_CAPS, capabilityNames, parseCapabilities } from "./capabilities.js";
import type { ExecutionOptions, RequestedExecution, ResolvedSecurity, RlimitSetting } from "./execution.js";
import { ALLOW_LIST_ESSENTIALS, DEFAULT_SECCOMP_DENY, readProfileFile } from "./seccomp-profile.js";
import { isKnownSyscall, resolveSyscalls, syscallTable } from "./syscalls.js";

const MIN_MEMORY_BYTES = 1024 * 1024;
const LIMIT_KEYS = ["memoryMaxBytes", "cpuTimeMs", "cpuCores", "pidsMax", "nofile"] as const;

interface SeccompBase {
  name: "none" | "default" | "custom";
  deny: Set<string>;
}

function denied(what: string): ConnectError {
  return new ConnectError(`${what} is not allowed by the daemon's policy (start envd with --allow-override to let requests loosen it)`, Code.PermissionDenied);
}

function invalid(msg: string): ConnectError {
  return new ConnectError(msg, Code.InvalidArgument);
}

function precondition(msg: string): ConnectError {
  return new ConnectError(msg, Code.FailedPrecondition);
}

function checkPaths(paths: string[], what: string, onError: (msg: string) => Error): string[] {
  return paths.map((p) => {
    if (!isAbsolute(p) || p.includes("\0")) throw onError(`${what}: '${p}' is not an absolute path`);
    return normalize(p).replace(/(.)\/+$/, "$1");
  });
}

/**
 * The daemon-wide execution policy (--default-*, --no-new-privs,
 * --seccomp-profile, --drop-caps, --add-caps, --masked-paths,
 * --readonly-paths, --user-namespace): applied to every process, E2B's
 * included. A request may tighten it; loosening it (a higher limit, no limit,
 * a weaker seccomp profile, a capability back, no_new_privs or the user
 * namespace off) needs --allow-override.
 */
export class ExecutionPolicy {
  private readonly seccomp: SeccompBase;
  private readonly dropCaps: bigint;
  private readonly addCaps: bigint;
  private readonly masked: string[];
  private readonly readonly: string[];

  /** Checks the configured names, paths and profile file; throws ConfigError. */
  constructor(
    private readonly cfg: PolicyConfig,
    private readonly cgroups: CgroupManager,
    private readonly daemonIsRoot = process.getuid?.() === 0,
  ) {
    const drop = parseCapabilities(cfg.dropCaps);
    const add = parseCapabilities(cfg.addCaps);
    const bad = [...drop.unknown, ...add.unknown];
    if (bad.length) throw new ConfigError(`unknown capabilities: ${bad.join(", ")}`);
    this.dropCaps = drop.mask;
    this.addCaps = add.mask;
    this.masked = checkPaths(cfg.maskedPaths, "--masked-paths", (m) => new ConfigError(m));
    this.readonly = checkPaths(cfg.readonlyPaths, "--readonly-paths", (m) => new ConfigError(m));
    const p = cfg.seccompProfile;
    if (p === "none") this.seccomp = { name: "none", deny: new Set() };
    else if (p === "default") this.seccomp = { name: "default", deny: new Set(DEFAULT_SECCOMP_DENY) };
    else {
      let names: string[];
      try {
        names = readProfileFile(p);
      } catch (err) {
        throw new ConfigError(`--seccomp-profile: cannot read '${p}': ${(err as Error).message}`);
      }
      const unknown = names.filter((n) => !isKnownSyscall(n));
      if (unknown.length) throw new ConfigError(`--seccomp-profile ${p}: unknown syscalls: ${unknown.join(", ")}`);
      this.seccomp = { name: "custom", deny: new Set(names) };
    }
    if (this.seccomp.name !== "none" && !syscallTable()) throw new ConfigError(`--seccomp-profile: seccomp filters are supported on x64 and arm64, not ${process.arch}`);
  }

  /** Default limits, for --help-like summaries and the log. */
  get defaults(): ResourceLimits {
    const c = this.cfg;
    return { memoryMaxBytes: c.memoryMaxBytes, cpuTimeMs: c.cpuTimeMs, cpuCores: c.cpuCores, pidsMax: c.pidsMax, nofile: c.nofile };
  }

  /**
   * Merges a request over the policy for a process running as `uid`. Throws
   * ConnectError: invalid_argument (bad values, unknown names),
   * permission_denied (loosening without --allow-override),
   * failed_precondition (something this machine cannot apply).
   */
  resolve(req: RequestedExecution | undefined, uid: number): ExecutionOptions {
    const limits = this.mergeLimits(req?.limits ?? {});
    const { cgroupLimits, rlimits, enforcement } = this.enforce(limits);
    const security = this.mergeSecurity(req?.security ?? {}, uid);
    this.confine(security, cgroupLimits !== undefined, rlimits.length > 0, uid);
    if (security.userNamespace) enforcement.push(`user_namespace: uid ${uid} outside is 0 inside`);
    return { limits, cgroupLimits, rlimits, enforcement, security };
  }

  /**
   * Limits held in a cgroup and masked or read-only paths bind root too: the launcher takes the
   * capabilities that could lift them (CONFINE_DROP_CAPS; CAP_SYS_RESOURCE with rlimits). Adding
   * one back is refused; a seccomp filter then needs no_new_privs, as without CAP_SYS_ADMIN.
   */
  private confine(security: ResolvedSecurity, cgroupLimits: boolean, rlimits: boolean, uid: number): void {
    // Root of a user namespace that is not root outside: the kernel confines it (launcher-confine.c).
    if (security.userNamespace && uid !== 0) return;
    const confined = cgroupLimits || security.maskedPaths.length > 0 || security.readonlyPaths.length > 0;
    const taken = (confined ? CONFINE_DROP_CAPS : 0n) | (rlimits ? CAP_SYS_RESOURCE : 0n);
    const clash = (security.caps?.add ?? 0n) & taken;
    if (clash) {
      const why = confined ? "limits or masked/read-only paths" : "rlimits";
      throw invalid(`${capabilityNames(clash).join(", ")} cannot be added to a process with ${why}: it could lift them`);
    }
    if (taken & CAP_SYS_ADMIN && security.seccomp && !security.noNewPrivs) {
      security.noNewPrivs = true;
      security.noNewPrivsImplied = true;
    }
  }

  private mergeLimits(req: ResourceLimits): ResourceLimits {
    const out: ResourceLimits = {};
    const defaults = this.defaults;
    for (const k of LIMIT_KEYS) {
      const d = defaults[k];
      const r = req[k];
      const field = LIMIT_FIELD[k];
      if (r === undefined) {
        if (d !== undefined) out[k] = d;
        continue;
      }
      if (!Number.isFinite(r) || r < 0) throw invalid(`${field}: ${r} is not a valid limit`);
      if (r === 0) {
        if (d !== undefined && !this.cfg.allowOverride) throw denied(`${field} 0 (no limit) instead of the default ${d}`);
        continue;
      }
      if (d !== undefined && r > d && !this.cfg.allowOverride) throw denied(`${field} ${r} above the default ${d}`);
      out[k] = r;
    }
    if (out.memoryMaxBytes !== undefined && out.memoryMaxBytes < MIN_MEMORY_BYTES) throw invalid(`memory_max_bytes: ${out.memoryMaxBytes} is below the minimum of ${MIN_MEMORY_BYTES} bytes`);
    if (out.cpuCores !== undefined && out.cpuCores < 0.01) throw invalid(`cpu_cores: ${out.cpuCores} is below the minimum of 0.01`);
    for (const k of ["pidsMax", "nofile", "cpuTimeMs"] as const) {
      const v = out[k];
      if (v !== undefined && (!Number.isInteger(v) || v > 2 ** 40)) throw invalid(`${LIMIT_FIELD[k]}: ${v} is not a whole number in range`);
    }
    return out;
  }

  /** Decides how each limit is enforced on this machine. */
  private enforce(limits: ResourceLimits): Pick<ExecutionOptions, "cgroupLimits" | "rlimits" | "enforcement"> {
    const cg: ResourceLimits = {};
    const rlimits: RlimitSetting[] = [];
    const enforcement: string[] = [];
    const via = `cgroup_${this.cgroups.version}`;
    // A memory limit without a memory cgroup is refused, not weakened to RLIMIT_AS: an address-space
    // limit makes allocations fail where the caller asked for an OOM kill at a memory size.
    for (const k of ["memoryMaxBytes", "cpuCores", "pidsMax"] as const) {
      if (limits[k] === undefined) continue;
      const why = this.cgroups.unsupported(k);
      if (why) throw precondition(`${LIMIT_FIELD[k]} cannot be applied: ${why}`);
      cg[k] = limits[k];
      enforcement.push(`${LIMIT_FIELD[k]}: ${via}`);
    }
    if (limits.cpuTimeMs !== undefined) {
      const seconds = Math.ceil(limits.cpuTimeMs / 1000);
      rlimits.push({ name: "cpu", soft: seconds, hard: seconds + 1 });
      if (!this.cgroups.unsupported("cpuTimeMs") && this.cgroups.version !== "none") {
        cg.cpuTimeMs = limits.cpuTimeMs;
        enforcement.push(`cpu_time_ms: ${via} (checked every 50 ms), rlimit_cpu ${seconds} s`);
      } else enforcement.push(`cpu_time_ms: proc (checked every 50 ms), rlimit_cpu ${seconds} s`);
    }
    if (limits.nofile !== undefined) {
      rlimits.push({ name: "nofile", soft: limits.nofile, hard: limits.nofile });
      enforcement.push("nofile: rlimit_nofile");
    }
    return { cgroupLimits: Object.keys(cg).length ? cg : undefined, rlimits, enforcement };
  }

  private mergeSecurity(req: NonNullable<RequestedExecution["security"]>, uid: number): ResolvedSecurity {
    const override = this.cfg.allowOverride;
    const userNamespace = req.userNamespace ?? this.cfg.userNamespace;
    if (this.cfg.userNamespace && req.userNamespace === false && !override) throw denied("user_namespace false");
    // Inside its user namespace the process is root: capabilities are those of root there.
    const capUid = userNamespace ? 0 : uid;
    if (userNamespace && !this.daemonIsRoot && uid !== process.getuid?.()) throw precondition(`a user namespace for uid ${uid} needs the daemon to run as root (unprivileged, it can only map its own uid)`);

    let noNewPrivs = req.noNewPrivs ?? this.cfg.noNewPrivs;
    if (this.cfg.noNewPrivs && req.noNewPrivs === false && !override) throw denied("no_new_privs false");

    // Capabilities.
    const reqDrop = parseCapabilities(req.dropCapabilities ?? []);
    const reqAdd = parseCapabilities(req.addCapabilities ?? []);
    const badCaps = [...reqDrop.unknown, ...reqAdd.unknown];
    if (badCaps.length) throw invalid(`unknown capabilities: ${badCaps.join(", ")}`);
    const wouldLack = capUid === 0 ? this.dropCaps : ALL_CAPS & ~this.addCaps;
    if (reqAdd.mask & wouldLack && !override) throw denied("add_capabilities");
    let caps: ResolvedSecurity["caps"];
    if (this.dropCaps || this.addCaps || reqDrop.mask || reqAdd.mask) {
      const keep = ALL_CAPS & ~(this.dropCaps | reqDrop.mask);
      const add = (this.addCaps & ~reqDrop.mask) | reqAdd.mask;
      caps = { keep, add };
    }

    // Seccomp.
    const seccomp = this.mergeSeccomp(req, override);
    let noNewPrivsImplied = false;
    if (seccomp && !noNewPrivs) {
      const final = caps ? (capUid === 0 ? caps.keep : 0n) | caps.add : capUid === 0 ? ALL_CAPS : 0n;
      if (!this.daemonIsRoot || !(final & CAP_SYS_ADMIN)) {
        noNewPrivs = true;
        noNewPrivsImplied = true;
      }
    }

    const maskedPaths = [...new Set([...this.masked, ...checkPaths(req.maskedPaths ?? [], "masked_paths", invalid)])];
    const readonlyPaths = [...new Set([...this.readonly, ...checkPaths(req.readonlyPaths ?? [], "readonly_paths", invalid)])];
    if ((maskedPaths.length || readonlyPaths.length) && !this.daemonIsRoot) throw precondition("masked and read-only paths need a private mount namespace, which needs the daemon to run as root");
    return { noNewPrivs, noNewPrivsImplied, caps, seccomp, maskedPaths, readonlyPaths, userNamespace };
  }

  private mergeSeccomp(req: NonNullable<RequestedExecution["security"]>, override: boolean): ResolvedSecurity["seccomp"] {
    const base = this.seccomp;
    let name: SeccompBase["name"] = base.name;
    let deny = new Set(base.deny);
    if (req.seccompProfile !== undefined && req.seccompProfile !== "") {
      const p = req.seccompProfile;
      if (p !== "none" && p !== "default") throw invalid(`seccomp profile '${p}' is not one of: default, none (files are for --seccomp-profile)`);
      if (p !== base.name) {
        const tighter = base.name === "none" || (base.name === "custom" && p === "default" && [...base.deny].every((s) => DEFAULT_SECCOMP_DENY.includes(s)));
        if (!tighter && !override) throw denied(`seccomp profile '${p}' instead of '${base.name}'`);
        name = p;
        deny = new Set(p === "default" ? DEFAULT_SECCOMP_DENY : []);
      }
    }
    const lists = { deny: req.seccompDeny ?? [], allow: req.seccompAllow ?? [], allowOnly: req.seccompAllowOnly ?? [] };
    const unknown = [...lists.deny, ...lists.allow, ...lists.allowOnly].filter((n) => !isKnownSyscall(n));
    if (unknown.length) throw invalid(`unknown syscalls: ${[...new Set(unknown)].join(", ")}`);
    if ((lists.deny.length || lists.allow.length || lists.allowOnly.length || name !== "none") && !syscallTable()) {
      throw precondition(`seccomp filters are supported on x64 and arm64, not ${process.arch}`);
    }
    for (const s of lists.allow) {
      if (base.deny.has(s) && !override) throw denied(`allowing syscall '${s}'`);
      deny.delete(s);
    }
    if (lists.allowOnly.length) {
      const allowed = new Set([...lists.allowOnly, ...ALLOW_LIST_ESSENTIALS]);
      for (const s of lists.deny) allowed.delete(s);
      const loosened = [...allowed].filter((s) => base.deny.has(s) && !ALLOW_LIST_ESSENTIALS.includes(s));
      if (loosened.length && !override) throw denied(`allowing syscalls ${loosened.join(", ")}`);
      return { profile: "custom", mode: "allow", numbers: resolveSyscalls(allowed).numbers, denyNamespaces: !allowed.has("unshare") };
    }
    for (const s of lists.deny) deny.add(s);
    if (deny.size === 0) return undefined;
    return { profile: name === "default" && lists.deny.length === 0 && lists.allow.length === 0 ? "default" : "custom", mode: "deny", numbers: resolveSyscalls(deny).numbers, denyNamespaces: deny.has("unshare") };
  }
}
