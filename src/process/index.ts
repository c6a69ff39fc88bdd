import type { DaemonContext } from "../daemon-context.js";
import { ExecutionPolicy } from "../isolation/policy.js";
import type { CgroupManager } from "../limits/cgroup.js";
import { createCgroupManager } from "../limits/cgroup-detect.js";
import { protectDaemon } from "../limits/self-protect.js";
import type { Capability } from "../server.js";
import { ProcessRegistry } from "./registry.js";
import { registerProcessService } from "./service.js";
import { metrics } from "../system/metrics-registry.js";

/**
 * The cgroup manager and execution policy, chosen once at start. A setting
 * that cannot work (an explicit --cgroup-mode that is not mounted, an unknown
 * capability, an unreadable seccomp profile) stops the daemon with exit 2.
 */
function setUpLimits(ctx: DaemonContext): { cgroups: CgroupManager; policy: ExecutionPolicy } {
  const { config, log } = ctx;
  try {
    const cgroups = createCgroupManager({ root: config.cgroupRoot, mode: config.cgroupMode, noCgroups: config.noCgroups });
    const policy = new ExecutionPolicy(config.policy, cgroups);
    log.info({ cgroups: cgroups.describe(), workload: cgroups.workloadFence(), defaults: policy.defaults }, "process limits");
    for (const warning of cgroups.startupWarnings()) log.warn({ cgroups: cgroups.describe() }, warning);
    return { cgroups, policy };
  } catch (err) {
    process.stderr.write(`envd: ${(err as Error).message}\n`);
    log.fatal({ err: (err as Error).message }, "cannot set up process limits");
    process.exit(2);
  }
}

/** The process capability, with what other capabilities (the web terminal) start processes through. */
export interface ProcessCapability extends Capability {
  registry: ProcessRegistry;
  policy: ExecutionPolicy;
  cgroups: CgroupManager;
}

/** The process.Process service and its envd-ts extension (envdts.v1.ProcessControl). */
export function processCapability(ctx: DaemonContext): ProcessCapability {
  protectDaemon(ctx.log);
  const { cgroups, policy } = setUpLimits(ctx);
  const registry = new ProcessRegistry(
    { outputBufferBytes: ctx.config.outputBufferBytes, historyTtlSeconds: ctx.config.historyTtlSeconds, historyMaxEntries: ctx.config.historyMaxEntries },
    ctx.log,
    cgroups,
  );
  const unregister = [
    metrics.registerGauge("envd_processes_active", "Processes with a live run (pipes and PTYs)", () => registry.liveProcesses().length),
    metrics.registerGauge("envd_ptys_active", "Live processes attached to a pseudo-terminal", () => registry.liveProcesses().filter((p) => p.proc.isPty).length),
    metrics.registerGauge("envd_processes_finished", "Finished processes kept in the history", () => registry.finishedProcesses().length),
    metrics.registerGauge("envd_process_subscribers", "Clients attached to process output (streams of Start, Connect, Attach)", () =>
      [...registry.activeProcesses(), ...registry.finishedProcesses()].reduce((n, p) => n + p.subscriberCount, 0),
    ),
  ];
  return {
    registry,
    policy,
    cgroups,
    rpc(router) {
      registerProcessService(router, { ctx, registry, policy });
    },
    lazyRpc: [
      {
        typeNames: ["envdts.v1.ProcessControl"],
        load: async () => {
          const { registerProcessControlService } = await import("./control-service.js");
          return (router) => registerProcessControlService(router, { ctx, registry, policy });
        },
      },
    ],
    async close() {
      unregister.forEach((remove) => remove());
      // Kept processes stay in their cgroups; the daemon's directories are removed once empty (a
      // later daemon does it when they are still busy now).
      await registry.closeAll({ keepRunning: ctx.config.keepProcessesOnStop });
      await cgroups.close();
    },
  };
}
