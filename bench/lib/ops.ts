import type { Sandbox } from "e2b";
import type { BinaryClients } from "./clients.js";
import { sdkCommandLine } from "./local.js";
import { median, timeMs } from "./stats.js";
import { basicAuth, type BenchUser } from "./user.js";

/** Runs `fn` k times in a row; the median wall time of one run, in ms. */
export async function medianOf(k: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < k; i++) xs.push(await timeMs(fn));
  return median(xs);
}

/** commands.run(cmd) through the SDK as `user`; fails unless it exits 0. */
export async function sdkRun(sbx: Sandbox, user: BenchUser, cmd: string): Promise<void> {
  const r = await sbx.commands.run(cmd, { user: user.name });
  if (r.exitCode !== 0) throw new Error(`'${cmd}' exited ${r.exitCode}`);
}

/**
 * process.Process/Start over the binary client with the SDK's command line;
 * reads every event; returns the stdout bytes seen. Fails unless it exits 0.
 */
export async function binaryRun(c: BinaryClients, user: BenchUser, cmd: string): Promise<number> {
  const argv = sdkCommandLine(cmd);
  let n = 0;
  let exit: number | undefined;
  for await (const res of c.process.start({ process: { cmd: argv[0]!, args: argv.slice(1) }, stdin: false }, { headers: { authorization: basicAuth(user) } })) {
    const ev = res.event?.event;
    if (ev?.case === "data" && ev.value.output.case === "stdout") n += ev.value.output.value.length;
    else if (ev?.case === "end") exit = ev.value.exitCode;
  }
  if (exit !== 0) throw new Error(`'${cmd}' ended with ${exit}`);
  return n;
}
