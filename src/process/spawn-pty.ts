import { Socket } from "node:net";
import type * as NodePty from "node-pty";

let nodePtyModule: Promise<typeof NodePty> | undefined;

/** node-pty (and its native binding) is loaded with the first PTY, not at start (bench: cold start, RSS idle). */
export function loadNodePty(): Promise<typeof NodePty> {
  nodePtyModule ??= import("node-pty").then((m) => ((m as { default?: typeof NodePty }).default?.spawn ? (m as { default: typeof NodePty }).default : m));
  return nodePtyModule;
}
import type { ChildEvents, ChildIO, ChildSpec } from "./child.js";
import { SpawnError } from "./child.js";
import type { RawExit } from "./exit-status.js";
import { commonLaunchOptions, launcherArgs, type LaunchFailure } from "./launcher.js";
import { closeQuietly, LAUNCHER_PATH, processAddon } from "./native.js";
import { holdChild } from "../system/child-reaper.js";

/** How often the terminal is checked for unread output once the command has exited. */
const DRAIN_POLL_MS = 5;

/** A wait(2) status as the kernel encodes it. */
function decodeWaitStatus(w: number): RawExit {
  const sig = w & 0x7f;
  if (sig === 0) return { code: (w >> 8) & 0xff, signal: null };
  return { code: null, signal: sig };
}

/**
 * Starts a PTY child. node-pty forks the launcher as session leader with the
 * terminal as controlling tty; the launcher ("keeper") sets the child up and
 * forks the command into its own foreground process group. The keeper stays
 * until the daemon has read all output: when a session leader exits the kernel
 * hangs the terminal up and discards what was not read yet.
 */
export async function spawnPtyChild(spec: ChildSpec): Promise<ChildIO> {
  const nodePty = await loadNodePty();
  const addon = processAddon();
  const size = spec.pty!;
  const opened: number[] = [];
  let status: [number, number];
  let hold: [number, number];
  try {
    status = addon.processPipe();
    opened.push(...status);
    hold = addon.processPipe();
    opened.push(...hold);
  } catch (err) {
    for (const fd of opened) closeQuietly(fd);
    throw new SpawnError(`error creating pipes: ${(err as Error).message}`, undefined);
  }
  // node-pty always sets PWD (to its cwd) and TERM; give the command E2B's environment back.
  const unsetEnv: string[] = [];
  const setEnv: string[] = [];
  if (spec.env.PWD === undefined) unsetEnv.push("PWD");
  else setEnv.push(`PWD=${spec.env.PWD}`);
  if (spec.env.TERM === undefined) unsetEnv.push("TERM");
  const args = launcherArgs({ ...commonLaunchOptions(spec), statusFd: status[1], ptyHold: hold[0], unsetEnv, setEnv }, spec.command);

  let term: NodePty.IPty;
  try {
    // Inherited through node-pty's fork; the launcher marks them close-on-exec again.
    addon.processSetCloexec(status[1], false);
    addon.processSetCloexec(hold[0], false);
    term = nodePty.spawn(LAUNCHER_PATH, args, {
      cols: size.cols,
      rows: size.rows,
      cwd: "/",
      env: spec.env,
      encoding: null,
      name: spec.env.TERM ?? "xterm",
    });
  } catch (err) {
    closeQuietly(status[0]);
    closeQuietly(hold[1]);
    throw new SpawnError(`error starting pty with command '${spec.command.join(" ")}' in dir '${spec.cwd}' with '${size.cols}' cols and '${size.rows}' rows: ${(err as Error).message}`, undefined);
  } finally {
    closeQuietly(status[1]);
    closeQuietly(hold[0]);
  }
  const child = new PtyChild(term, status[0], hold[1]);
  await child.launched;
  return child;
}

class PtyChild implements ChildIO {
  readonly isPty = true;
  readonly exitReportsUsage = false;
  readonly stdinOpen = false;
  launchFailure: LaunchFailure | undefined;
  /** The command's pid (the keeper's child). */
  pid: number;
  /** The keeper: session leader, never signalled by tree kills. */
  readonly keeperPid: number;
  readonly sessionId: number;
  readonly launched: Promise<void>;

  private events: ChildEvents | undefined;
  private ownerPaused = false;
  private started = false;
  private commandExit: RawExit | undefined;
  private keeperExit: RawExit | undefined;
  private holdFd: number | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly masterFd: number | undefined;

  constructor(
    private readonly term: NodePty.IPty,
    statusFd: number,
    holdFd: number,
  ) {
    this.keeperPid = term.pid;
    this.sessionId = term.pid;
    this.pid = term.pid;
    this.holdFd = holdFd;
    this.masterFd = (term as unknown as { _fd?: number })._fd;
    // openpty leaves the master inheritable; other children must not keep the terminal alive.
    if (this.masterFd !== undefined) {
      try {
        processAddon().processSetCloexec(this.masterFd, true);
      } catch {
        /* closed already: the child is gone */
      }
    }
    // Output waits until start(); the command blocks on a full terminal meanwhile.
    this.term.pause();
    (term as unknown as { on(ev: string, fn: () => void): void }).on("error", () => {});
    term.onData((d) => this.events?.data("pty", d as unknown as Buffer));
    // node-pty's thread waits for the keeper by pid: the orphan reaper must leave it alone.
    const releaseKeeper = holdChild(term.pid);
    term.onExit(({ exitCode, signal }) => {
      releaseKeeper();
      this.keeperExit = signal ? { code: null, signal } : { code: exitCode, signal: null };
      this.release();
      if (this.events) this.finish();
    });
    this.launched = new Promise((resolve) => this.readStatus(statusFd, resolve));
  }

  /** Follows the keeper's status records ("pid:", "running" | "exec:", "exit:"). */
  private readStatus(fd: number, launched: () => void): void {
    const sock = new Socket({ fd, readable: true, writable: false });
    let buffered = "";
    let decided = false;
    const decide = (failure?: LaunchFailure) => {
      if (decided) return;
      decided = true;
      this.launchFailure = failure;
      launched();
    };
    sock.setEncoding("latin1");
    sock.on("data", (text: string) => {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const [key, value] = line.split(":");
        const n = Number(value);
        if (key === "pid") this.pid = n;
        else if (key === "running") decide();
        else if (key === "exit") this.onCommandExit(decodeWaitStatus(n));
        else decide({ stage: key ?? "launcher", errno: Number.isFinite(n) ? n : 0 });
      }
    });
    sock.on("error", () => {});
    // Without a record the keeper died early (node-pty could not exec it, say).
    sock.on("close", () => decide({ stage: "launcher", errno: 0 }));
  }

  private onCommandExit(raw: RawExit): void {
    if (this.commandExit) return;
    this.commandExit = raw;
    this.events?.exit(raw);
    if (this.keeperExit) return;
    this.drainTimer = setInterval(() => {
      if (this.ownerPaused) return;
      const waiting = this.masterFd === undefined ? 0 : processAddon().processReadable(this.masterFd);
      if (waiting <= 0) this.release();
    }, DRAIN_POLL_MS);
  }

  /** Lets the keeper exit (it re-raises the command's status); the terminal then hangs up. */
  private release(): void {
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    closeQuietly(this.holdFd);
    this.holdFd = undefined;
  }

  private finish(): void {
    const events = this.events!;
    if (!this.commandExit) {
      this.commandExit = this.keeperExit;
      events.exit(this.keeperExit!);
    }
    events.outputEnd();
  }

  start(events: ChildEvents): void {
    this.events = events;
    this.started = true;
    if (!this.ownerPaused) this.term.resume();
    if (this.commandExit) events.exit(this.commandExit);
    if (this.keeperExit) this.finish();
  }

  pause(): void {
    this.ownerPaused = true;
    this.term.pause();
  }

  resume(): void {
    this.ownerPaused = false;
    if (this.started) this.term.resume();
  }

  writeStdin(): Promise<void> {
    return Promise.reject(new Error("tty assigned to process — input should be written to the pty, not the stdin"));
  }

  closeStdin(): Promise<void> {
    return Promise.reject(new Error("cannot close stdin for PTY process — send Ctrl+D (0x04) instead"));
  }

  writePty(data: Buffer): void {
    if (data.length > 0) this.term.write(data);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
  }

  abandonOutput(): void {
    this.release();
    this.ownerPaused = false;
    this.term.resume();
  }

  dispose(): void {
    this.release();
  }
}
