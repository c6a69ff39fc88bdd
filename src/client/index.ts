// envd-ts/client: typed clients for what envd-ts adds to E2B's envd (process control with
// limits, replay, history, restarts and signals; copy, chmod, chown and paged listing; proxies
// and ports; system information and usage), and connect() to reach them from an e2b Sandbox.
export { connect, EnvdClient, createServiceClients, type ConnectOptions, type RawClients } from "./envd-client.js";
export { createEnvdTransport, type EnvdTarget, type TransportOptions } from "./transport.js";
export { EnvdError, type EnvdErrorCode } from "./errors.js";
export { ProcessesApi, type CallOptions, type Limits, type ProcessSelector, type ReplayFrom, type RestartPolicy, type SignalOptions, type StartOptions } from "./processes.js";
export { ProcessStream, type ProcessResult } from "./process-stream.js";
export type { ExitOutcomeName, ProcessEvent, ProcessExit, ProcessInfo, ProcessRun, ProcessStateName, ProcessUsage, RestartMode, StreamName } from "./process-types.js";
export { FilesApi, type CopyResult, type DirPage, type EntryInfo } from "./files.js";
export { ProxiesApi, type ListeningPort, type ProxyInfo, type ProxySpec, type ProxyTypeName } from "./proxies.js";
export { SystemApi, type HealthCheckResponse, type ResourceUsage, type SystemInfo } from "./system.js";
export { parseBytes, parseDurationMs } from "./units.js";
export * as proto from "./proto.js";
