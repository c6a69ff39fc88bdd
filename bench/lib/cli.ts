/** What `npm run bench -- [flags]` asked for. */
export interface BenchOptions {
  /** Figure groups to run (all when empty). */
  only: string[];
  /** Overrides every group's default trial count. */
  trials: number | undefined;
  /** Where latest.json and latest.md go. */
  outDir: string;
  /** Write a CPU profile of the daemon (--cpu-prof) into this directory. */
  daemonProfileDir: string | undefined;
  /** Don't overwrite bench/results (a quick check run). */
  noWrite: boolean;
  /** Which build of the daemon runs (see DaemonBuild). */
  daemon: "sea" | "bundle" | "dist";
}

const USAGE = `npm run bench -- [--only exec,stream,...] [--trials N] [--daemon sea|bundle|dist] [--out DIR] [--profile-daemon DIR] [--no-write]`;

/** Parses the bench's own flags; unknown flags are an error so typos don't run the full suite. */
export function parseBenchArgs(argv: string[], groups: string[]): BenchOptions {
  const opts: BenchOptions = { only: [], trials: undefined, outDir: new URL("../results/", import.meta.url).pathname, daemonProfileDir: undefined, noWrite: false, daemon: "sea" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case "--only":
        opts.only.push(...value().split(",").map((s) => s.trim()).filter(Boolean));
        break;
      case "--trials": {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--trials must be a positive integer`);
        opts.trials = n;
        break;
      }
      case "--out":
        opts.outDir = value();
        break;
      case "--profile-daemon":
        opts.daemonProfileDir = value();
        break;
      case "--daemon": {
        const v = value();
        if (v !== "sea" && v !== "bundle" && v !== "dist") throw new Error(`--daemon must be sea, bundle or dist`);
        opts.daemon = v;
        break;
      }
      case "--no-write":
        opts.noWrite = true;
        break;
      case "--help":
      case "-h":
        throw new Error(`${USAGE}\ngroups: ${groups.join(", ")}`);
      default:
        throw new Error(`unknown flag ${a}\n${USAGE}`);
    }
  }
  // The single executable takes no node flags; profiling runs the compiled sources.
  if (opts.daemonProfileDir && opts.daemon === "sea") opts.daemon = "dist";
  for (const g of opts.only) if (!groups.includes(g)) throw new Error(`unknown figure group '${g}'; groups: ${groups.join(", ")}`);
  return opts;
}
