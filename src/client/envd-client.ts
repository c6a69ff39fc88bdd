import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { FilesystemExt } from "../gen/envdts/v1/filesystem_ext_pb.js";
import { ProcessControl } from "../gen/envdts/v1/process_ext_pb.js";
import { Proxy } from "../gen/envdts/v1/proxy_pb.js";
import { System } from "../gen/envdts/v1/system_pb.js";
import { Process } from "../gen/process_pb.js";
import { FilesApi } from "./files.js";
import { ProcessesApi } from "./processes.js";
import { ProxiesApi } from "./proxies.js";
import { SystemApi } from "./system.js";
import { createEnvdTransport, isSandbox, targetOfSandbox, type EnvdTarget, type TransportOptions } from "./transport.js";

/** The typed connect-es clients of every envd-ts extension service (they throw ConnectError). */
export interface RawClients {
  process: Client<typeof ProcessControl>;
  filesystem: Client<typeof FilesystemExt>;
  proxy: Client<typeof Proxy>;
  system: Client<typeof System>;
  /** E2B's process.Process (stdin, PTY input and resize apply to extension processes too). */
  e2bProcess: Client<typeof Process>;
}

/** connect-es clients for the extension services over any Connect transport. */
export function createServiceClients(transport: Transport): RawClients {
  return {
    process: createClient(ProcessControl, transport),
    filesystem: createClient(FilesystemExt, transport),
    proxy: createClient(Proxy, transport),
    system: createClient(System, transport),
    e2bProcess: createClient(Process, transport),
  };
}

/** Everything envd-ts adds to E2B's envd, for one daemon and one user. */
export class EnvdClient {
  readonly processes: ProcessesApi;
  readonly files: FilesApi;
  readonly proxies: ProxiesApi;
  readonly system: SystemApi;
  /** The generated service clients, for fields and calls the idiomatic layer leaves out. */
  readonly raw: RawClients;
  /** Where the calls go and as whom. */
  readonly target: Readonly<EnvdTarget>;
  private readonly options: TransportOptions;

  constructor(target: EnvdTarget, options: TransportOptions = {}) {
    this.target = { ...target };
    this.options = { ...options };
    this.raw = createServiceClients(createEnvdTransport(target, options));
    this.processes = new ProcessesApi(this.raw.process, this.raw.e2bProcess);
    this.files = new FilesApi(this.raw.filesystem);
    this.proxies = new ProxiesApi(this.raw.proxy);
    this.system = new SystemApi(this.raw.system);
  }

  /** A client for the same daemon acting as another user. */
  as(user: string): EnvdClient {
    return new EnvdClient({ ...this.target, user }, this.options);
  }
}

/** Options of connect(). */
export interface ConnectOptions extends TransportOptions {
  /** With a Sandbox: the user the calls act as (default: the daemon's default user, as the SDK). */
  user?: string;
}

/**
 * A client for the envd-ts daemon of an `e2b` Sandbox (its envd URL, access token and routing
 * headers, as the SDK's own clients use them; E2B_SANDBOX_URL in debug mode) or of `{ url,
 * accessToken, user }`.
 */
export function connect(target: EnvdTarget | { sandboxId: string }, options: ConnectOptions = {}): EnvdClient {
  const resolved = isSandbox(target) ? targetOfSandbox(target, options.user) : { ...(target as EnvdTarget), user: options.user ?? (target as EnvdTarget).user };
  return new EnvdClient(resolved, options);
}
