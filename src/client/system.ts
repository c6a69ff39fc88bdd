import type { Client } from "@connectrpc/connect";
import type { GetSystemInfoResponse, HealthCheckResponse, ResourceUsage, System } from "../gen/envdts/v1/system_pb.js";
import { call, iterate } from "./errors.js";
import type { CallOptions } from "./processes.js";

export type { GetSystemInfoResponse as SystemInfo, HealthCheckResponse, ResourceUsage };

/** envdts.v1.System: health, system information and resource usage (the generated messages; byte counts are bigint). */
export class SystemApi {
  constructor(private readonly rpc: Client<typeof System>) {}

  async health(options: CallOptions = {}): Promise<HealthCheckResponse> {
    return call(this.rpc.healthCheck({}, options));
  }

  /** OS, kernel, CPUs, memory, disks, cgroup version, daemon version and uptime. */
  async info(options: CallOptions = {}): Promise<GetSystemInfoResponse> {
    return call(this.rpc.getSystemInfo({}, options));
  }

  /** One resource usage sample (CPU since the daemon's previous sample). */
  async usage(options: CallOptions = {}): Promise<ResourceUsage> {
    return (await call(this.rpc.getResourceUsage({}, options))).usage!;
  }

  /** A sample every intervalMs (default 1000, at least 100) until the signal aborts or you stop iterating. */
  async *watchUsage(options: CallOptions & { intervalMs?: number } = {}): AsyncGenerator<ResourceUsage> {
    for await (const ev of iterate(this.rpc.watchResourceUsage({ intervalMs: options.intervalMs ?? 0 }, options))) {
      if (ev.event.case === "sample") yield ev.event.value;
    }
  }
}
