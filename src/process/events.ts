import type { ExitInfo } from "./exit-status.js";
import type { OutputChunk } from "./output-ring.js";

/** What a process tells its subscribers, in order: started, data..., exited (per run). */
export type ProcEvent =
  | { kind: "started"; pid: number; restartCount: number }
  | { kind: "data"; chunk: OutputChunk }
  | { kind: "exited"; pid: number; exit: ExitInfo; final: boolean; restartDelayMs: number };
