import { readFileSync, writeFileSync } from "node:fs";

/** Resident memory of a process, in bytes: now (VmRSS) and its high-water mark (VmHWM). */
export function readRss(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, needs to be the owner or root). */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

/**
 * Samples a process's RSS every 50 ms while a run goes on, and reports the peak:
 * the larger of the sampled maximum and VmHWM (which also catches spikes between samples).
 */
export class RssSampler {
  private max = 0;
  private timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    resetPeak(pid);
    this.sample();
    this.timer = setInterval(() => this.sample(), 50);
  }

  private sample(): void {
    try {
      this.max = Math.max(this.max, readRss(this.pid).rss);
    } catch {
      /* exited */
    }
  }

  /** Stops sampling; returns the peak RSS in bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    let hwm = 0;
    try {
      hwm = readRss(this.pid).hwm;
    } catch {
      /* exited */
    }
    return Math.max(this.max, hwm);
  }
}

/** Waits until RSS stops moving (two samples 250 ms apart within 256 KiB), at most `maxMs`; returns it. */
export async function settledRss(pid: number, maxMs = 3000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = readRss(pid).rss;
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = readRss(pid).rss;
    if (Math.abs(now - last) < 256 * 1024 || Date.now() > deadline) return now;
    last = now;
  }
}
