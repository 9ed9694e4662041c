/**
 * Time-stamped increments of kernel counters (events lost, drops by reason and place), so a
 * summary can say how many happened inside its window. Bounded: the oldest entries go first and
 * the time of the newest dropped one is kept, so a window that reaches further back is known to
 * be incomplete.
 *
 * @module
 */

const DEFAULT_CAPACITY = 1 << 16;

/** Increments of named counters over time. */
export class CounterLog {
  readonly capacity: number;
  #ts: Float64Array;
  #key: Uint32Array;
  #delta: Float64Array;
  #head = 0;
  #length = 0;
  #keys: string[] = [];
  #keyIds = new Map<string, number>();
  #totals = new Map<string, number>();
  #truncatedAt = -Infinity;

  constructor(capacity = DEFAULT_CAPACITY) {
    this.capacity = capacity;
    this.#ts = new Float64Array(capacity);
    this.#key = new Uint32Array(capacity);
    this.#delta = new Float64Array(capacity);
  }

  /** Records that counter `key` grew by `delta` at `ts` (Unix ms); `ts` must not go backwards. */
  add(ts: number, key: string, delta: number): void {
    if (delta === 0) return;
    let id = this.#keyIds.get(key);
    if (id === undefined) {
      id = this.#keys.length;
      this.#keys.push(key);
      this.#keyIds.set(key, id);
    }
    this.#totals.set(key, (this.#totals.get(key) ?? 0) + delta);
    if (this.#length === this.capacity) {
      this.#truncatedAt = this.#ts[this.#head];
      this.#head = (this.#head + 1) % this.capacity;
      this.#length--;
    }
    const slot = (this.#head + this.#length) % this.capacity;
    this.#ts[slot] = ts;
    this.#key[slot] = id;
    this.#delta[slot] = delta;
    this.#length++;
  }

  /** Sum of each counter's increments with `since < ts <= until`. */
  sumBetween(since: number, until: number, prefix = ""): Map<string, number> {
    const out = new Map<string, number>();
    for (let i = 0; i < this.#length; i++) {
      const slot = (this.#head + i) % this.capacity;
      const ts = this.#ts[slot];
      if (ts <= since || ts > until) continue;
      const key = this.#keys[this.#key[slot]];
      if (!key.startsWith(prefix)) continue;
      out.set(key, (out.get(key) ?? 0) + this.#delta[slot]);
    }
    return out;
  }

  /** Every counter's total since the log began. */
  totals(): ReadonlyMap<string, number> {
    return this.#totals;
  }

  /** Total of a counter since the log began. */
  total(key: string): number {
    return this.#totals.get(key) ?? 0;
  }

  /** Whether increments after `since` may have been dropped from the log. */
  completeSince(since: number): boolean {
    return this.#truncatedAt <= since;
  }
}
