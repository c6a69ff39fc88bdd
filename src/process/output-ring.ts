/** Which output a chunk came from. */
export type StreamKind = "stdout" | "stderr" | "pty";

/** One piece of output with its place in the process's whole output. */
export interface OutputChunk {
  stream: StreamKind;
  data: Buffer;
  /** Offset of data[0] across all streams. */
  offset: number;
  /** Offset of data[0] within its own stream. */
  streamOffset: number;
}

/** Small reads are merged in the ring so per-entry overhead stays small. */
const COALESCE_BELOW = 4096;

/**
 * The bounded replay buffer of one process: the newest `capacity` bytes of its
 * output in order, with absolute offsets. Older bytes are dropped (never the
 * offsets: they keep counting).
 */
export class OutputRing {
  private entries: OutputChunk[] = [];
  private head = 0;
  private held = 0;
  /** Offset the next byte will get. */
  total = 0;
  readonly streamTotals: Record<StreamKind, number> = { stdout: 0, stderr: 0, pty: 0 };

  constructor(private capacity: number) {}

  /** Records a chunk and returns it with offsets assigned. */
  append(stream: StreamKind, data: Buffer): OutputChunk {
    const chunk: OutputChunk = { stream, data, offset: this.total, streamOffset: this.streamTotals[stream] };
    this.total += data.length;
    this.streamTotals[stream] += data.length;
    if (this.capacity > 0 && data.length > 0) this.keep(chunk);
    return chunk;
  }

  private keep(chunk: OutputChunk): void {
    const last = this.entries.length > this.head ? this.entries[this.entries.length - 1]! : undefined;
    if (last && last.stream === chunk.stream && last.offset + last.data.length === chunk.offset && last.data.length + chunk.data.length <= COALESCE_BELOW) {
      last.data = Buffer.concat([last.data, chunk.data]);
    } else {
      this.entries.push({ ...chunk, data: chunk.data.length < COALESCE_BELOW ? Buffer.from(chunk.data) : chunk.data });
    }
    this.held += chunk.data.length;
    this.trim();
  }

  private trim(): void {
    while (this.held > this.capacity && this.head < this.entries.length) {
      const first = this.entries[this.head]!;
      const excess = this.held - this.capacity;
      if (first.data.length <= excess) {
        this.held -= first.data.length;
        this.entries[this.head] = undefined as unknown as OutputChunk;
        this.head++;
      } else {
        this.entries[this.head] = { stream: first.stream, data: first.data.subarray(excess), offset: first.offset + excess, streamOffset: first.streamOffset + excess };
        this.held -= excess;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Offset of the oldest byte still held (equals total when nothing is held). */
  oldestOffset(): number {
    return this.head < this.entries.length ? this.entries[this.head]!.offset : this.total;
  }

  /** Bytes currently held. */
  heldBytes(): number {
    return this.held;
  }

  /** The held chunks from `offset` on (the first one cut to start exactly there). */
  from(offset: number): OutputChunk[] {
    const out: OutputChunk[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      const end = e.offset + e.data.length;
      if (end <= offset) continue;
      if (e.offset >= offset) out.push(e);
      else {
        const cut = offset - e.offset;
        out.push({ stream: e.stream, data: e.data.subarray(cut), offset, streamOffset: e.streamOffset + cut });
      }
    }
    return out;
  }

  /** Drops everything held (offsets keep counting); used to free memory of old finished processes. */
  release(): void {
    this.entries = [];
    this.head = 0;
    this.held = 0;
    this.capacity = 0;
  }
}
