// The terminal page's script: xterm.js on a WebSocket to /terminal/ws. Bundled with xterm.js
// by scripts/build-terminal.mjs; typechecked with this folder's tsconfig (DOM, not Node).
import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import type { ClientMessage, ServerMessage } from "../protocol.js";

const SESSION_KEY = "envd-terminal-pid";
const MAX_RETRY_MS = 5000;

const statusLine = document.getElementById("status")!;
const term = new Terminal({ cursorBlink: true, scrollback: 10_000, fontFamily: "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace", fontSize: 14 });
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal")!);
fit.fit();

const params = new URLSearchParams(location.search);
const stored = sessionStorage.getItem(SESSION_KEY);
/** The shell this page shows: from ?pid=, from before a reload, or a new one. */
let pid: number | undefined = params.has("pid") ? Number(params.get("pid")) : stored ? Number(stored) : undefined;
/** Bytes of the process's output this page has written to the terminal, counted from offset 0. */
let offset = params.has("offset") ? Number(params.get("offset")) : 0;
let socket: WebSocket | undefined;
let exited = false;
let retries = 0;
let connections = 0;
const encoder = new TextEncoder();

function setStatus(text: string): void {
  statusLine.textContent = text;
}

function send(msg: ClientMessage | Uint8Array): void {
  if (socket?.readyState !== WebSocket.OPEN) return;
  socket.send(msg instanceof Uint8Array ? msg : JSON.stringify(msg));
}

function onMessage(msg: ServerMessage): void {
  switch (msg.type) {
    case "opened":
      pid = msg.pid;
      offset = msg.offset;
      retries = 0;
      sessionStorage.setItem(SESSION_KEY, String(pid));
      if (msg.dropped > 0) term.write(`\r\n\x1b[2m[${msg.dropped} bytes of earlier output are no longer kept]\x1b[0m\r\n`);
      setStatus(`connected: ${msg.user}, pid ${msg.pid}`);
      if (msg.cols !== term.cols || msg.rows !== term.rows) send({ type: "resize", cols: term.cols, rows: term.rows });
      return;
    case "exit":
      exited = true;
      sessionStorage.removeItem(SESSION_KEY);
      term.write(`\r\n\x1b[2m[process ${msg.pid} ended: ${msg.status}; press Enter for a new shell]\x1b[0m\r\n`);
      setStatus(`exited: ${msg.status}`);
      return;
    case "error":
      setStatus(`error: ${msg.message}`);
      if (pid !== undefined && /not found/.test(msg.message)) {
        // The shell this page remembered is gone: start afresh.
        sessionStorage.removeItem(SESSION_KEY);
        pid = undefined;
        offset = 0;
      }
      return;
  }
}

function connect(): void {
  const url = new URL("terminal/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  if (pid !== undefined) {
    url.searchParams.set("pid", String(pid));
    url.searchParams.set("offset", String(offset));
  } else {
    url.searchParams.set("cols", String(term.cols));
    url.searchParams.set("rows", String(term.rows));
    if (params.has("user")) url.searchParams.set("user", params.get("user")!);
  }
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  socket = ws;
  connections++;
  ws.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
    if (typeof e.data === "string") return onMessage(JSON.parse(e.data) as ServerMessage);
    const bytes = new Uint8Array(e.data);
    offset += bytes.length;
    term.write(bytes);
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    socket = undefined;
    if (exited) return;
    const delay = Math.min(MAX_RETRY_MS, 200 * 2 ** retries++);
    setStatus(`disconnected; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(connect, delay);
  };
}

term.onData((data) => {
  if (exited) {
    if (data === "\r") {
      exited = false;
      pid = undefined;
      offset = 0;
      term.reset();
      connect();
    }
    return;
  }
  send(encoder.encode(data));
});
term.onBinary((data) => send(Uint8Array.from(data, (c) => c.charCodeAt(0))));
term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
window.addEventListener("resize", () => fit.fit());

/** For people poking at it in the console, and for the browser test. */
(window as unknown as { envdTerminal: object }).envdTerminal = {
  term,
  get pid() {
    return pid;
  },
  get offset() {
    return offset;
  },
  get socket() {
    return socket;
  },
  get connections() {
    return connections;
  },
  get exited() {
    return exited;
  },
};

term.focus();
connect();
