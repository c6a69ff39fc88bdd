import type { CgroupManager, ProcessCgroup } from "./cgroup.js";
import { LimitError, type CgroupLimit } from "./limits.js";

/** No cgroups (--no-cgroups, --cgroup-mode none, or nothing usable mounted): only rlimits apply. */
export class NoCgroupManager implements CgroupManager {
  readonly version = "none" as const;

  /** @param chosen whether the operator asked for no cgroups (no warning then) */
  constructor(
    private readonly reason: string,
    private readonly chosen = false,
  ) {}

  startupWarnings(): string[] {
    return this.chosen ? [] : [`no cgroups (${this.reason}): memory, pids and CPU bandwidth limits are refused, and command trees are tracked without cgroups`];
  }

  workloadFence(): Record<string, string> {
    return {};
  }

  describe(): string {
    return `no cgroups (${this.reason})`;
  }

  unsupported(limit: CgroupLimit): string | undefined {
    return limit === "cpuTimeMs" ? undefined : `cgroups are not in use (${this.reason})`;
  }

  async close(): Promise<void> {}

  create(): ProcessCgroup {
    throw new LimitError(`cgroups are not in use (${this.reason})`);
  }

  track(): ProcessCgroup {
    throw new LimitError(`cgroups are not in use (${this.reason})`);
  }
}
