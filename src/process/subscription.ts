import type { ProcEvent } from "./events.js";

/** Above this many queued bytes a subscriber holds the child's output back. */
export const QUEUE_HIGH_WATER = 512 * 1024;
/** The child's output flows again once every subscriber is below this. */
export const QUEUE_LOW_WATER = 128 * 1024;
/** Bookkeeping cost charged per queued event, so floods of tiny chunks stay bounded too. */
const EVENT_OVERHEAD = 64;

/** The side of a process a subscription talks to. */
export interface SubscriptionOwner {
  subscriberDrained(sub: Subscription): void;
  removeSubscriber(sub: Subscription): void;
}

/**
 * One reader of a process's events (a Start, Connect or Attach stream). Events
 * queue here until the reader takes them; the owner pauses the child while any
 * queue is above the high-water mark.
 */
export class Subscription {
  private queue: ProcEvent[] = [];
  private head = 0;
  private waiter: ((ev: ProcEvent | undefined) => void) | undefined;
  private finished = false;
  private closed = false;
  queuedBytes = 0;

  /**
   * @param untilRunEnd E2B streams follow one run (one pid) and end with its end
   *   event; extension streams follow the process across restarts.
   */
  constructor(
    private readonly owner: SubscriptionOwner,
    readonly untilRunEnd: boolean,
  ) {}

  /** Queues an event; after the last event of its scope the subscription finishes. */
  push(ev: ProcEvent): void {
    if (this.closed || this.finished) return;
    const last = ev.kind === "exited" && (ev.final || this.untilRunEnd);
    if (last) {
      this.finished = true;
      this.owner.removeSubscriber(this);
    }
    if (this.waiter && this.head === this.queue.length) {
      const w = this.waiter;
      this.waiter = undefined;
      w(ev);
      return;
    }
    this.queue.push(ev);
    this.queuedBytes += size(ev);
  }

  /** Ends the subscription once the queue is drained (the process record went away). */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.head === this.queue.length) this.wake();
  }

  /** The next event, or undefined at the end (finished and drained, or closed). */
  next(): Promise<ProcEvent | undefined> {
    if (this.head < this.queue.length) {
      const ev = this.queue[this.head]!;
      this.queue[this.head] = undefined as unknown as ProcEvent;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      const before = this.queuedBytes;
      this.queuedBytes -= size(ev);
      if (before > QUEUE_LOW_WATER && this.queuedBytes <= QUEUE_LOW_WATER) this.owner.subscriberDrained(this);
      return Promise.resolve(ev);
    }
    if (this.finished || this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Stops at once: the reader went away. Queued events are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    this.owner.removeSubscriber(this);
    this.wake();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}

function size(ev: ProcEvent): number {
  return ev.kind === "data" ? ev.chunk.data.length + EVENT_OVERHEAD : EVENT_OVERHEAD;
}
