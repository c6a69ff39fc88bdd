import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const SOURCE = new URL("./attacker.c", import.meta.url).pathname;

/** Compiles attacker.c into `dir` (which `user` must be able to reach) and returns the binary. */
export function buildAttacker(dir: string): string {
  const bin = join(dir, "attacker");
  execFileSync("cc", ["-O2", "-o", bin, SOURCE]);
  chmodSync(bin, 0o755);
  return bin;
}

export interface Attacker {
  child: ChildProcess;
  /** SIGTERM; resolves with the number of swaps it made. */
  stop(): Promise<number>;
}

/** Starts the attacker as the unprivileged `user` and waits until it is armed. */
export async function startAttacker(bin: string, args: string[], cwd: string): Promise<Attacker> {
  const child = spawn("setpriv", ["--reuid", "user", "--regid", "user", "--init-groups", bin, ...args], { cwd, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  let swaps = 0;
  let onSwaps: (() => void) | undefined;
  const reported = new Promise<void>((r) => (onSwaps = r));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("attacker did not arm within 15 s")), 15_000);
    child.once("exit", (code) => reject(new Error(`attacker exited with ${code}`)));
    lines.on("line", (line) => {
      if (line === "ready") {
        clearTimeout(timer);
        resolve();
      }
      const m = /^swaps (\d+)$/.exec(line);
      if (m) {
        swaps = Number(m[1]);
        onSwaps!();
      }
    });
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    child,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      await Promise.race([reported, new Promise((r) => setTimeout(r, 1000))]);
      return swaps;
    },
  };
}
