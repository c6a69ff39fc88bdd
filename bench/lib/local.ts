import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { ROOT, serverEnv } from "./procs.js";
import { daemonLikeEnv, type BenchUser } from "./user.js";

/** What the local runner measured for one batch. */
export interface LocalBatch {
  /** Wall time of the whole batch. */
  wallMs: number;
  /** Each run's time from spawn() until the child exited and its pipes closed. */
  ms: number[];
  /** stdout bytes read per run. */
  bytes: number[];
  codes: (number | null)[];
}

let runner: { child: ChildProcess; next: number; waiting: Map<number, (r: LocalBatch & { error?: string }) => void> } | undefined;
let starting: Promise<void> | undefined;

/** Starts bench/servers/local-runner.mjs once (a lean Node process, as root, like the daemon). */
function ensureRunner(): Promise<void> {
  starting ??= new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bench/servers/local-runner.mjs")], { env: serverEnv(), stdio: ["pipe", "pipe", "inherit"] });
    const waiting = new Map<number, (r: LocalBatch & { error?: string }) => void>();
    runner = { child, next: 1, waiting };
    child.once("error", reject);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; id?: number } & LocalBatch & { error?: string };
      if (msg.ready) return resolve();
      const w = waiting.get(msg.id!);
      waiting.delete(msg.id!);
      w?.(msg);
    });
    child.unref();
    (child.stdout as unknown as { unref?(): void }).unref?.();
  });
  return starting;
}

/**
 * The local limit: child_process.spawn of the same command line as the same user with
 * the daemon's environment, `n` times in a row (or all at once), stdout and stderr read
 * through pipes, timed in the lean local runner process.
 */
export async function localBatch(user: BenchUser, argv: string[], n: number, concurrent = false): Promise<LocalBatch> {
  await ensureRunner();
  const r = runner!;
  const id = r.next++;
  const done = new Promise<LocalBatch & { error?: string }>((resolve) => r.waiting.set(id, resolve));
  r.child.stdin!.write(JSON.stringify({ id, argv, uid: user.uid, gid: user.gid, env: daemonLikeEnv(user), cwd: user.home, n, concurrent }) + "\n");
  const res = await done;
  if (res.error) throw new Error(`local run of ${argv.join(" ")} failed: ${res.error}`);
  if (res.codes.some((c) => c !== 0)) throw new Error(`local run of ${argv.join(" ")} exited ${res.codes.find((c) => c !== 0)}`);
  return res;
}

/** Stops the local runner. */
export function stopLocalRunner(): void {
  runner?.child.kill();
  runner = undefined;
  starting = undefined;
}

/** The command line the SDK's commands.run(cmd) makes the daemon run. */
export function sdkCommandLine(cmd: string): string[] {
  return ["/bin/bash", "-l", "-c", cmd];
}
