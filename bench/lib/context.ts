import type { Sandbox } from "e2b";
import type { BenchOptions } from "./cli.js";
import { binaryClients, type BinaryClients } from "./clients.js";
import { sdkSandbox } from "./clients.js";
import { startBaselineServer, startDaemon, type Server } from "./procs.js";
import { readRss } from "./rss.js";
import type { Figure } from "./stats.js";
import { benchUser, type BenchUser } from "./user.js";

/** One RSS peak the daemon reached during a large run, for the "RSS peak" figure. */
export interface PeakRecord {
  run: string;
  peakBytes: number;
}

/**
 * What figure groups share: the daemons and one minimal server for the whole run
 * (started on first use), their clients, and the RSS peaks seen so far.
 */
export class BenchContext {
  readonly user: BenchUser = benchUser();
  readonly peaks: PeakRecord[] = [];
  /** The large-runs daemon's settled RSS right after it started, before any load. */
  daemonIdleRss = 0;
  private daemonP: Promise<Server> | undefined;
  private largeP: Promise<Server> | undefined;
  private baselineP: Promise<Server> | undefined;
  private sdks = new Map<string, Promise<Sandbox>>();
  private bins = new Map<string, BinaryClients>();

  constructor(readonly opts: BenchOptions) {}

  /** The trial count for a group: --trials, or the group's default. */
  trials(def: number): number {
    return this.opts.trials ?? def;
  }

  private nodeArgs(): string[] {
    return this.opts.daemonProfileDir ? ["--cpu-prof", "--cpu-prof-dir", this.opts.daemonProfileDir] : [];
  }

  /** The daemon most figures share. */
  daemon(): Promise<Server> {
    this.daemonP ??= startDaemon({ nodeArgs: this.nodeArgs() });
    return this.daemonP;
  }

  /**
   * A daemon of its own for the 1 GiB runs (streaming, transfers): the RSS peak figure
   * compares it with its own idle RSS, and the other figures do not run in a daemon whose
   * heap those runs grew (fork() in a bigger process is slower, see bench/NOTES.md).
   */
  largeRunsDaemon(): Promise<Server> {
    this.largeP ??= (async () => {
      const d = await startDaemon({ nodeArgs: this.nodeArgs() });
      await new Promise((r) => setTimeout(r, 1000));
      this.daemonIdleRss = readRss(d.pid).rss;
      return d;
    })();
    return this.largeP;
  }

  baseline(): Promise<Server> {
    this.baselineP ??= startBaselineServer();
    return this.baselineP;
  }

  /** The SDK sandbox for a server (cached per URL). */
  sdk(server: Server): Promise<Sandbox> {
    let s = this.sdks.get(server.url);
    if (!s) {
      s = sdkSandbox(server.url);
      this.sdks.set(server.url, s);
    }
    return s;
  }

  /** Binary clients for a server's h2c port (cached). */
  binary(server: Server): BinaryClients {
    let c = this.bins.get(server.h2Url);
    if (!c) {
      c = binaryClients(server.h2Url);
      this.bins.set(server.h2Url, c);
    }
    return c;
  }

  log(msg: string): void {
    process.stderr.write(`  ${msg}\n`);
  }

  async close(): Promise<void> {
    const servers = await Promise.allSettled([this.daemonP, this.largeP, this.baselineP].filter(Boolean) as Promise<Server>[]);
    for (const s of servers) if (s.status === "fulfilled") await s.value.stop();
  }
}

/** A group of figures `--only` can select. */
export interface FigureGroup {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}
