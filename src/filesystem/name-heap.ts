/**
 * Keeps the `capacity` smallest byte strings offered to it: a max-heap whose root
 * is the largest kept name, so a smaller newcomer replaces it in O(log n). Memory
 * is O(capacity) however many names are offered.
 */
export class SmallestNames {
  private readonly heap: Buffer[] = [];

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.heap.length;
  }

  offer(name: Buffer): void {
    const h = this.heap;
    if (this.capacity <= 0) return;
    if (h.length < this.capacity) {
      h.push(name);
      this.up(h.length - 1);
    } else if (Buffer.compare(name, h[0]!) < 0) {
      h[0] = name;
      this.down(0);
    }
  }

  /** The kept names, ascending. */
  sorted(): Buffer[] {
    return [...this.heap].sort(Buffer.compare);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (Buffer.compare(h[i]!, h[p]!) <= 0) return;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && Buffer.compare(h[l]!, h[m]!) > 0) m = l;
      if (r < h.length && Buffer.compare(h[r]!, h[m]!) > 0) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
