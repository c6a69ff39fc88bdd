import { writeSync } from "node:fs";

/** Bytes of log lines kept while stdout does not accept them; more are dropped and counted. */
export const LOG_QUEUE_MAX_BYTES = 1024 * 1024;
const RETRY_MIN_MS = 10;
const RETRY_MAX_MS = 250;

/**
 * Where pino writes: stdout, without ever blocking the daemon or growing without bound.
 *
 * pino's default destination retries EAGAIN forever and, at exit, flushes synchronously in a
 * sleep loop: a reader that stopped reading (a test runner that hung, `envd | less`) made the
 * daemon ignore SIGTERM and its pending logs grow without limit. Here a full pipe queues at most
 * {@link LOG_QUEUE_MAX_BYTES}, later lines are dropped and counted (reported once stdout drains
 * again), a reader that went away (EPIPE) or any other write error turns logging off, and the
 * exit flush makes one attempt only.
 */
export class LogSink {
  private queue: Buffer[] = [];
  private queued = 0;
  private dropped = 0;
  private broken = false;
  private retryMs = RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fd = 1,
    private readonly maxQueued = LOG_QUEUE_MAX_BYTES,
  ) {}

  /** Lines dropped since stdout last accepted one (0 while it keeps up). */
  get droppedLines(): number {
    return this.dropped;
  }

  /** Whether a write failed for good (reader gone); nothing is written after that. */
  get disabled(): boolean {
    return this.broken;
  }

  /** pino's stream interface: one serialized line. */
  write(line: string): boolean {
    if (this.broken) return true;
    const buf = Buffer.from(line, "utf8");
    if (this.queued + buf.length > this.maxQueued) {
      this.dropped++;
      return true;
    }
    this.queue.push(buf);
    this.queued += buf.length;
    if (!this.timer) this.drain();
    return true;
  }

  /** One attempt to hand over what is queued, for process exit: never waits for the reader. */
  flushSync(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.drain();
  }

  private drain(): void {
    while (this.queue.length > 0 && !this.broken) {
      const head = this.queue[0]!;
      let n: number;
      try {
        n = writeSync(this.fd, head);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EINTR") return this.retryLater();
        this.disable();
        return;
      }
      this.queued -= n;
      if (n < head.length) {
        this.queue[0] = head.subarray(n);
        return this.retryLater();
      }
      this.queue.shift();
    }
    this.retryMs = RETRY_MIN_MS;
    if (this.dropped > 0 && !this.broken) {
      const note = JSON.stringify({ level: 40, time: new Date().toISOString(), svc: "envd", dropped: this.dropped, msg: "log lines dropped: stdout was not being read" }) + "\n";
      this.dropped = 0;
      this.write(note);
    }
  }

  private retryLater(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, this.retryMs);
    this.timer.unref();
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  private disable(): void {
    this.broken = true;
    this.queue = [];
    this.queued = 0;
  }
}
