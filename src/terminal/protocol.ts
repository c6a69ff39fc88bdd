/**
 * The web terminal's WebSocket protocol, shared by the daemon and the page. Output and input
 * bytes travel as binary frames (output in order, so a client knows its offset by counting);
 * control messages are JSON text frames.
 *
 * Connect: GET /terminal/ws?cols=&rows=[&user=] starts a login shell on a PTY;
 * GET /terminal/ws?pid=&offset= attaches to a PTY process and replays its output from `offset`.
 */

/** What the daemon sends as text frames. */
export type ServerMessage =
  /** First message: the process, and the offset of the first byte that follows. */
  | { type: "opened"; pid: number; offset: number; dropped: number; user: string; cols: number; rows: number }
  /** The process ended; the socket closes after this with 1000. */
  | { type: "exit"; pid: number; exitCode: number; signal: number; status: string; outcome: string }
  /** A request that cannot be served; the socket closes after this with 1008 or 1011. */
  | { type: "error"; message: string };

/** What the page sends as text frames (input also goes as binary frames). */
export type ClientMessage = { type: "resize"; cols: number; rows: number } | { type: "input"; data: string };

/** The WebSocket path; also an upgrade-route prefix. */
export const TERMINAL_WS_PATH = "/terminal/ws";
