// The web terminal. The WebSocket protocol with a plain ws client (exact bytes: open, input,
// resize, output, exit, reconnect with replay from an offset, errors, the token), then the
// page end to end in real headless Chromium (Debian's chromium driven by playwright-core):
// type a command and see its output, resize, reconnect, and see the replayed output.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { WebSocket } from "ws";
import { collectJsonFrames, connectStream } from "./helpers/connect-wire.js";
import { startDaemon, type Daemon } from "./helpers/daemon.js";

const TOKEN = "terminal-test-token";
const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("..", import.meta.url).pathname;

interface Opened {
  type: "opened";
  pid: number;
  offset: number;
  dropped: number;
  user: string;
  cols: number;
  rows: number;
}

/** A terminal connection that records everything it receives. */
class TermClient {
  readonly ws: WebSocket;
  output = Buffer.alloc(0);
  messages: any[] = [];
  closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(url: string, headers: Record<string, string> = { "x-access-token": TOKEN }) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on("message", (data: Buffer, binary) => {
      if (binary) this.output = Buffer.concat([this.output, data]);
      else this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => this.ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on("close", () => this.waiters.splice(0).forEach((w) => w()));
  }

  async until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output so far: ${JSON.stringify(this.output.toString().slice(-500))}, messages: ${JSON.stringify(this.messages)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  async opened(): Promise<Opened> {
    await this.until("opened", () => this.messages.some((m) => m.type === "opened"));
    return this.messages.find((m) => m.type === "opened");
  }

  /** Types a line and waits for `expect` to appear in the output after what was there. */
  async run(line: string, expect: RegExp): Promise<string> {
    const from = this.output.length;
    this.ws.send(Buffer.from(line + "\r"));
    let seen = "";
    await this.until(`${expect} after '${line}'`, () => expect.test((seen = this.output.subarray(from).toString())));
    return seen;
  }
}

function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on("open", () => {
      ws.close();
      reject(new Error("the upgrade was accepted"));
    });
    ws.on("error", () => {});
  });
}

/** Builds the page assets when dist/ lacks them or they are older than the page's sources. */
function ensureTerminalAssets(): void {
  const built = join(ROOT, "dist/terminal-assets/terminal.js");
  const sources = ["src/terminal/page/client.ts", "src/terminal/page/terminal.css", "src/terminal/protocol.ts"].map((f) => statSync(join(ROOT, f)).mtimeMs);
  if (existsSync(built) && statSync(built).mtimeMs > Math.max(...sources)) return;
  const r = spawnSync(process.execPath, [join(ROOT, "scripts/build-terminal.mjs")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

describe("web terminal WebSocket", { timeout: 120_000 }, () => {
  let d: Daemon;
  let ws: string;
  before(async () => {
    ensureTerminalAssets();
    d = await startDaemon({ args: ["--access-token", TOKEN] });
    ws = d.url.replace("http:", "ws:") + "/terminal/ws";
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  it("refuses upgrades without the token or from another origin, and plain GETs", async () => {
    assert.equal(await upgradeStatus(`${ws}?cols=80&rows=24`, {}), 401);
    assert.equal(await upgradeStatus(`${ws}?access_token=wrong`, {}), 401);
    assert.equal(await upgradeStatus(ws, { "x-access-token": TOKEN, origin: "http://evil.example" }), 403);
    assert.equal((await fetch(`${d.url}/terminal/ws`)).status, 401);
    const plain = await fetch(`${d.url}/terminal/ws`, { headers: { "x-access-token": TOKEN } });
    assert.equal(plain.status, 426);
    assert.equal((await fetch(`${d.url}/terminal`)).status, 401);
  });

  it("opens a login shell on a PTY, takes input and resizes, replays from any offset, reports the exit", async () => {
    const a = new TermClient(`${ws}?cols=100&rows=30&user=user`);
    const opened = await a.opened();
    assert.deepEqual({ ...opened, pid: 0 }, { type: "opened", pid: 0, offset: 0, dropped: 0, user: "user", cols: 100, rows: 30 });
    assert.match(await a.run("stty size; id -un", /30 100\r\nuser\r\n/), /30 100/);
    a.ws.send(JSON.stringify({ type: "resize", cols: 120, rows: 40 }));
    await a.run("stty size", /40 120\r\n/);
    a.ws.send(JSON.stringify({ type: "input", data: "echo typed-as-text\r" }));
    await a.until("text input echoed", () => /typed-as-text\r\n/.test(a.output.toString()));

    // The shell is an ordinary process: process.Process/List shows it with its tag.
    const list = await fetch(`${d.url}/process.Process/List`, { method: "POST", headers: { "content-type": "application/json", "x-access-token": TOKEN }, body: "{}" });
    const listed = ((await list.json()) as { processes: Array<{ pid: number; tag?: string }> }).processes;
    assert.ok(listed.some((p) => p.pid === opened.pid && p.tag === "web-terminal"), JSON.stringify(listed));

    // Detach: the shell keeps running. Attach again from the middle: exactly the bytes after it.
    const seen = Buffer.from(a.output);
    a.ws.close();
    assert.equal((await a.closed).code, 1005);
    const cut = Math.floor(seen.length / 2);
    const b = new TermClient(`${ws}?pid=${opened.pid}&offset=${cut}`);
    const reopened = await b.opened();
    assert.equal(reopened.offset, cut);
    assert.equal(reopened.pid, opened.pid);
    await b.until("replay", () => b.output.length >= seen.length - cut);
    assert.deepEqual(b.output.subarray(0, seen.length - cut), seen.subarray(cut));

    // Still the same shell: state set before the reconnect is there.
    await b.run("X=still-here; echo $X-$$", new RegExp(`still-here-${opened.pid}\\r\\n`));
    b.ws.send(Buffer.from("exit 3\r"));
    await b.until("exit", () => b.messages.some((m) => m.type === "exit"));
    assert.deepEqual(b.messages.find((m) => m.type === "exit"), { type: "exit", pid: opened.pid, exitCode: 3, signal: 0, status: "exit status 3", outcome: "exited" });
    assert.deepEqual(await b.closed, { code: 1000, reason: "process exited" });

    // A finished shell can still be replayed: all its output from 0, then its exit.
    const c = new TermClient(`${ws}?pid=${opened.pid}&offset=0`);
    await c.until("exit after replay", () => c.messages.some((m) => m.type === "exit"));
    assert.ok(c.output.toString().includes("still-here"));
    assert.ok(c.output.subarray(0, seen.length).equals(seen));
    assert.equal((await c.closed).code, 1000);
  });

  it("reports unknown pids, processes without a PTY and bad offsets", async () => {
    const unknown = new TermClient(`${ws}?pid=999999`);
    assert.equal((await unknown.closed).code, 1008);
    assert.match(unknown.messages[0].message, /process with pid 999999 not found/);

    // A process without a PTY: its start event gives the pid; the stream is then dropped (it keeps running).
    const stop = new AbortController();
    const res = await connectStream(`${d.url}/process.Process/Start`, { process: { cmd: "sleep", args: ["5"] } }, { "x-access-token": TOKEN }, stop.signal);
    const [started] = await collectJsonFrames(res, (frames) => frames.length >= 1);
    stop.abort();
    const sleeperPid = started!.json.event.start.pid as number;
    const piped = new TermClient(`${ws}?pid=${sleeperPid}`);
    assert.equal((await piped.closed).code, 1008);
    assert.match(piped.messages[0].message, /has no terminal/);

    const shell = new TermClient(`${ws}?cols=80&rows=24`);
    const { pid } = await shell.opened();
    const beyond = new TermClient(`${ws}?pid=${pid}&offset=99999999`);
    assert.equal((await beyond.closed).code, 1008);
    assert.match(beyond.messages[0].message, /beyond the end of the output/);
    shell.ws.send(Buffer.from("exit\r"));
    await shell.closed;
  });
});

describe("web terminal page in headless Chromium", { timeout: 180_000 }, () => {
  const haveChromium = existsSync(CHROMIUM);
  let d: Daemon;
  let browser: Browser;
  before(async () => {
    if (!haveChromium) {
      // CI installs it (scripts/test-setup.sh); elsewhere the suite says why it did not run.
      if (process.env.CI) assert.fail(`${CHROMIUM} is missing: scripts/test-setup.sh installs Debian's chromium`);
      return;
    }
    ensureTerminalAssets();
    d = await startDaemon({ args: ["--access-token", TOKEN, "--default-user", "user"] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
      // launch() gives Chromium a fresh temporary --user-data-dir of its own (it refuses one in args).
    });
  });
  after(async () => {
    await browser?.close();
    if (d) assert.equal(await d.stop(), 0);
  });

  /** The terminal's screen and scrollback as text, one string per line. */
  const screen = (page: Page) =>
    page.evaluate(() => {
      const t = (window as any).envdTerminal.term;
      const buf = t.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? "");
      return lines;
    });
  const waitForText = async (page: Page, re: RegExp, what: string) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const lines = await screen(page);
      if (lines.some((l) => re.test(l))) return lines;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: screen is\n${lines.filter(Boolean).join("\n")}`);
      await page.waitForTimeout(100);
    }
  };
  const typeLine = async (page: Page, line: string) => {
    await page.keyboard.type(line);
    await page.keyboard.press("Enter");
  };

  it("types a command and sees its output, resizes, reconnects, and a second page replays the session", { skip: !haveChromium && `${CHROMIUM} not installed` }, async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 600 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

    // The token once in the URL; the page is then served at /terminal with the token in a cookie.
    const first = await page.goto(`${d.url}/terminal?access_token=${TOKEN}`);
    assert.equal(first?.status(), 200);
    assert.equal(new URL(page.url()).search, "", "token removed from the address");
    await page.waitForFunction(() => (window as any).envdTerminal?.pid !== undefined && document.getElementById("status")!.textContent!.startsWith("connected"));
    const pid = await page.evaluate(() => (window as any).envdTerminal.pid as number);
    assert.match(await page.textContent("#status") ?? "", new RegExp(`connected: user, pid ${pid}`));

    await typeLine(page, "echo hello-$((6*7))");
    await waitForText(page, /^hello-42$/, "the command's output");

    // Resize: a smaller window refits the terminal, and the shell sees the new size.
    const before = await page.evaluate(() => ({ cols: (window as any).envdTerminal.term.cols, rows: (window as any).envdTerminal.term.rows }));
    await page.setViewportSize({ width: 640, height: 360 });
    await page.waitForFunction((b) => (window as any).envdTerminal.term.cols < b.cols && (window as any).envdTerminal.term.rows < b.rows, before);
    const size = await page.evaluate(() => ({ cols: (window as any).envdTerminal.term.cols, rows: (window as any).envdTerminal.term.rows }));
    await typeLine(page, "stty size");
    await waitForText(page, new RegExp(`^${size.rows} ${size.cols}$`), "stty size after the resize");

    // The connection drops: the page reconnects from the offset it reached, without repeating output.
    await page.evaluate(() => (window as any).envdTerminal.socket.close());
    await page.waitForFunction(() => (window as any).envdTerminal.connections === 2 && document.getElementById("status")!.textContent!.startsWith("connected"));
    await typeLine(page, "echo after-$((1+1))-reconnect");
    const lines = await waitForText(page, /^after-2-reconnect$/, "output after the reconnect");
    assert.equal(lines.filter((l) => l === "hello-42").length, 1, "no output replayed twice");

    // Another page attaches to the same shell by pid and replays what the first one showed.
    const second = await context.newPage();
    await second.goto(`${d.url}/terminal?pid=${pid}`);
    await second.waitForFunction(() => document.getElementById("status")!.textContent!.startsWith("connected"));
    await waitForText(second, /^hello-42$/, "replayed output in the second page");
    await waitForText(second, /^after-2-reconnect$/, "replayed output in the second page");
    await typeLine(second, "echo from-second-$$");
    await waitForText(second, new RegExp(`^from-second-${pid}$`), "the same shell answering the second page");
    // Both pages watch the same shell.
    await waitForText(page, new RegExp(`^from-second-${pid}$`), "the first page seeing the second page's command");

    await typeLine(second, "exit");
    await second.waitForFunction(() => (window as any).envdTerminal.exited === true);
    assert.match(await second.textContent("#status") ?? "", /exited: exit status 0/);
    assert.deepEqual(errors, []);

    // Without the token there is no page.
    const stranger = await browser.newContext();
    const denied = await (await stranger.newPage()).goto(`${d.url}/terminal`);
    assert.equal(denied?.status(), 401);
    await stranger.close();
    await context.close();
  });
});
