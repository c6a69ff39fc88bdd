import { spawn as ptySpawn } from "node-pty";
import type { Sandbox } from "e2b";
import type { BinaryClients } from "../lib/clients.js";
import type { FigureGroup } from "../lib/context.js";
import { basicAuth, daemonLikeEnv, type BenchUser } from "../lib/user.js";
import { interleaved, median } from "../lib/stats.js";

const K = 30;
/** What the SDK's pty.create adds to the environment. */
const PTY_ENV = { TERM: "xterm-256color", LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };

/** Collects terminal output and wakes a waiter when a wanted string shows up. */
class Screen {
  private buf = "";
  private want: { text: string; resolve: () => void } | undefined;
  feed(data: string | Uint8Array): void {
    this.buf += typeof data === "string" ? data : Buffer.from(data).toString("latin1");
    if (this.buf.length > 65536) this.buf = this.buf.slice(-4096);
    if (this.want && this.buf.includes(this.want.text)) {
      const w = this.want;
      this.want = undefined;
      w.resolve();
    }
  }
  /** Forgets what was shown so far. */
  clear(): void {
    this.buf = "";
  }
  waitFor(text: string, timeoutMs = 5000): Promise<void> {
    if (this.buf.includes(text)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`'${text}' did not show within ${timeoutMs} ms`)), timeoutMs);
      this.want = {
        text,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      };
    });
  }
  /** Resolves once nothing arrived for `quietMs`. */
  async settle(quietMs = 100): Promise<void> {
    for (;;) {
      const len = this.buf.length;
      await new Promise((r) => setTimeout(r, quietMs));
      if (this.buf.length === len) return;
    }
  }
}

/**
 * Types K letters into an interactive login bash at its prompt, each timed from
 * the write until its echo shows; then erases the line (untimed). Median in ms.
 */
async function keystrokes(screen: Screen, send: (s: string) => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < K; i++) {
    const ch = letters[i % letters.length]!;
    screen.clear();
    const t0 = process.hrtime.bigint();
    await send(ch);
    await screen.waitFor(ch);
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await send("\x15");
  await screen.settle(50);
  return median(xs);
}

/** An open terminal and how to type into it. */
interface Session {
  screen: Screen;
  send(s: string): Promise<unknown>;
  close(): Promise<void>;
}

async function sdkSession(sbx: Sandbox, user: BenchUser, size: { cols: number; rows: number }): Promise<Session> {
  const screen = new Screen();
  const handle = await sbx.pty.create({ ...size, user: user.name, onData: (data) => screen.feed(data), timeoutMs: 0 });
  const enc = new TextEncoder();
  return { screen, send: (s) => sbx.pty.sendInput(handle.pid, enc.encode(s)), close: () => handle.kill().then(() => {}, () => {}) };
}

async function binarySession(bin: BinaryClients, user: BenchUser, size: { cols: number; rows: number }): Promise<Session> {
  const screen = new Screen();
  const auth = { authorization: basicAuth(user) };
  const abort = new AbortController();
  const stream = bin.process.start({ process: { cmd: "/bin/bash", args: ["-i", "-l"], envs: PTY_ENV }, pty: { size } }, { headers: auth, signal: abort.signal, timeoutMs: 0 });
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done || first.value.event?.event.case !== "start") throw new Error("PTY start failed");
  const pid = first.value.event.event.value.pid;
  void (async () => {
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        const ev = r.value.event?.event;
        if (ev?.case === "data" && ev.value.output.case === "pty") screen.feed(ev.value.output.value);
      }
    } catch {
      /* aborted at the end */
    }
  })();
  const enc = new TextEncoder();
  return {
    screen,
    send: (s) => bin.process.sendInput({ process: { selector: { case: "pid", value: pid } }, input: { input: { case: "pty", value: enc.encode(s) } } }, { headers: auth }),
    async close() {
      await bin.process.sendSignal({ process: { selector: { case: "pid", value: pid } }, signal: 9 }, { headers: auth }).catch(() => {});
      abort.abort();
    },
  };
}

/**
 * PTY keystroke echo: the SDK's pty.create + sendInput ÷ a local node-pty running
 * the same shell; the floor is the minimal Node server (node-pty behind connect-node).
 */
export const ptyGroup: FigureGroup = {
  id: "pty",
  title: "PTY keystroke echo",
  async run(ctx) {
    const d = await ctx.daemon();
    const f = await ctx.baseline();
    const size = { cols: 120, rows: 40 };

    const localScreen = new Screen();
    const term = ptySpawn("/bin/bash", ["-i", "-l"], { ...size, cwd: ctx.user.home, env: { ...daemonLikeEnv(ctx.user), ...PTY_ENV }, uid: ctx.user.uid, gid: ctx.user.gid, name: "xterm-256color" });
    term.onData((s) => localScreen.feed(s));
    const sessions = [
      await sdkSession(await ctx.sdk(d), ctx.user, size),
      await sdkSession(await ctx.sdk(f), ctx.user, size),
      await binarySession(ctx.binary(d), ctx.user, size),
      await binarySession(ctx.binary(f), ctx.user, size),
    ];
    const [sdkD, sdkF, binD, binF] = sessions as [Session, Session, Session, Session];
    try {
      await Promise.all([localScreen.settle(300), ...sessions.map((x) => x.screen.settle(300))]);
      const local = () => keystrokes(localScreen, async (s) => term.write(s));
      const arm = (x: Session) => () => keystrokes(x.screen, x.send);
      const common = { name: "PTY keystroke echo", unit: "ms", trials: ctx.trials(5), target: { op: "<=" as const, value: 2 }, note: `per trial: median of ${K} keystrokes into bash -i -l at its prompt; sendInput is one unary RPC per keystroke` };
      return [
        await interleaved({ ...common, client: "sdk", baseline: local, daemon: arm(sdkD), floor: arm(sdkF) }),
        await interleaved({ ...common, client: "binary h2c", baseline: local, daemon: arm(binD), floor: arm(binF) }),
      ];
    } finally {
      term.kill();
      for (const x of sessions) await x.close();
    }
  },
};
