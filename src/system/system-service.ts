import { readFileSync } from "node:fs";
import { arch, hostname, release, type as osType } from "node:os";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { DAEMON_VERSION } from "../config.js";
import type { DaemonContext } from "../daemon-context.js";
import {
  CgroupVersion,
  HealthCheckResponse_Status,
  ResourceUsageSchema,
  System,
  type DiskInfo,
  type ResourceUsage,
  type WatchResourceUsageResponse,
} from "../gen/envdts/v1/system_pb.js";
import { keepaliveIntervalMs, withKeepalive } from "../http/keepalive.js";
import { osPrettyName } from "./control-routes.js";
import { timerDelay } from "./timer-delay.js";
import { checkHealth, type SupervisionView } from "./health.js";
import { CpuPercent, cpuCount, detectCgroupMode, loadAverage, openFdCount, readDisk, readMemory, readNetwork } from "./host-metrics.js";

const STATUS = { serving: HealthCheckResponse_Status.SERVING, not_serving: HealthCheckResponse_Status.NOT_SERVING, unknown: HealthCheckResponse_Status.UNKNOWN } as const;

const CGROUP_VERSIONS = { none: CgroupVersion.NONE, v1: CgroupVersion.V1, v2: CgroupVersion.V2, hybrid: CgroupVersion.HYBRID } as const;

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m?.[1]?.trim() ?? "";
  } catch {
    return "";
  }
}

const REAL_FILESYSTEMS = new Set(["ext2", "ext3", "ext4", "xfs", "btrfs", "overlay", "tmpfs", "zfs", "f2fs", "vfat", "nfs", "nfs4", "virtiofs", "9p", "fuse"]);

function listDisks(): DiskInfo[] {
  const disks: DiskInfo[] = [];
  let mounts = "";
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return disks;
  }
  const seen = new Set<string>();
  for (const line of mounts.split("\n")) {
    const [device, mountPoint, fsType] = line.split(" ");
    if (!device || !mountPoint || !fsType || !REAL_FILESYSTEMS.has(fsType)) continue;
    if (mountPoint.startsWith("/proc") || mountPoint.startsWith("/sys") || mountPoint.startsWith("/dev") || mountPoint.startsWith("/run")) {
      if (mountPoint !== "/dev/shm") continue;
    }
    if (seen.has(mountPoint)) continue;
    seen.add(mountPoint);
    try {
      const d = readDisk(mountPoint.replace(/\\040/g, " "));
      disks.push({ $typeName: "envdts.v1.DiskInfo", mountPoint, filesystem: fsType, device, totalBytes: BigInt(d.total), usedBytes: BigInt(d.used), freeBytes: BigInt(d.free) });
    } catch {
      /* unmounted meanwhile or not ours to read */
    }
  }
  return disks;
}

/**
 * Samples system and daemon resource usage; keeps the previous sample for rates. The first
 * sample's rates cover the time since boot (system) and since the daemon started, not the
 * few microseconds since the sampler was made.
 */
class UsageSampler {
  private cpu = new CpuPercent(true);
  private lastDaemonCpu = { user: 0, system: 0 };
  private lastAt = process.hrtime.bigint() - BigInt(Math.round(process.uptime() * 1e9));

  sample(): ResourceUsage {
    const mem = readMemory();
    const disk = readDisk("/");
    const [l1, l5, l15] = loadAverage();
    const now = process.hrtime.bigint();
    const cpuNow = process.cpuUsage();
    const elapsedMicros = Number(now - this.lastAt) / 1000;
    const daemonMicros = cpuNow.user - this.lastDaemonCpu.user + (cpuNow.system - this.lastDaemonCpu.system);
    this.lastAt = now;
    this.lastDaemonCpu = cpuNow;
    const heap = process.memoryUsage();
    return create(ResourceUsageSchema, {
      time: timestampFromMs(Date.now()),
      cpuPercent: this.cpu.sample(),
      cpuCount: cpuCount(),
      memoryTotalBytes: BigInt(mem.total),
      memoryUsedBytes: BigInt(mem.used),
      memoryCachedBytes: BigInt(mem.cached),
      diskTotalBytes: BigInt(disk.total),
      diskUsedBytes: BigInt(disk.used),
      network: readNetwork().map((n) => ({ interface: n.iface, rxBytes: BigInt(n.rxBytes), txBytes: BigInt(n.txBytes), rxPackets: BigInt(n.rxPackets), txPackets: BigInt(n.txPackets) })),
      loadAverage1m: l1,
      loadAverage5m: l5,
      loadAverage15m: l15,
      daemon: {
        rssBytes: BigInt(heap.rss),
        heapUsedBytes: BigInt(heap.heapUsed),
        cpuUserMicros: BigInt(cpuNow.user),
        cpuSystemMicros: BigInt(cpuNow.system),
        cpuPercent: elapsedMicros > 0 ? (daemonMicros / elapsedMicros) * 100 : 0,
        openFds: openFdCount(),
      },
    });
  }
}

async function* samples(intervalMs: number, signal: AbortSignal): AsyncGenerator<WatchResourceUsageResponse> {
  const sampler = new UsageSampler();
  while (!signal.aborted) {
    yield { $typeName: "envdts.v1.WatchResourceUsageResponse", event: { case: "sample", value: sampler.sample() } };
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, timerDelay(intervalMs));
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done);
    });
  }
}

/** The envdts.v1.System extension service. */
export function registerSystemService(router: ConnectRouter, ctx: DaemonContext, supervision?: SupervisionView): void {
  const shared = new UsageSampler();
  router.service(System, {
    healthCheck() {
      const health = checkHealth(supervision, ctx.shutdownSignal.aborted);
      return {
        status: health.serving ? HealthCheckResponse_Status.SERVING : HealthCheckResponse_Status.NOT_SERVING,
        version: DAEMON_VERSION,
        uptimeSeconds: (Date.now() - ctx.state.startedAt) / 1000,
        components: health.components.map((c) => ({ name: c.name, status: STATUS[c.status], reason: c.reason, value: c.value, threshold: c.threshold })),
      };
    },
    getSystemInfo() {
      return {
        os: osType(),
        osRelease: osPrettyName(),
        kernel: release(),
        arch: arch(),
        hostname: hostname(),
        cpu: { count: cpuCount(), model: cpuModel() },
        memoryTotalBytes: BigInt(readMemory().total),
        disks: listDisks(),
        daemonVersion: DAEMON_VERSION,
        daemonUptimeSeconds: (Date.now() - ctx.state.startedAt) / 1000,
        cgroupVersion: ctx.config.noCgroups ? CgroupVersion.NONE : CGROUP_VERSIONS[detectCgroupMode(ctx.config.cgroupRoot)],
        nodeVersion: process.version,
      };
    },
    getResourceUsage() {
      return { usage: shared.sample() };
    },
    watchResourceUsage(req, hctx: HandlerContext) {
      const interval = Math.min(3_600_000, Math.max(100, req.intervalMs || 1000));
      const ping = (): WatchResourceUsageResponse => ({ $typeName: "envdts.v1.WatchResourceUsageResponse", event: { case: "keepalive", value: { $typeName: "envdts.v1.WatchResourceUsageResponse.KeepAlive" } } });
      return withKeepalive(samples(interval, hctx.signal), keepaliveIntervalMs(hctx, ctx.config.keepaliveSeconds), ping, hctx.signal);
    },
  });
}
