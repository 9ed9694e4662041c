/**
 * Bounded label values for counters that stay monotonic: at most `max` values (commands) get a
 * label of their own, the busiest ones at the scrapes until the cap is full; every other value
 * is summed as `other`. A value never loses its label, and a value in `other` never gets one, so
 * no exported series goes down.
 *
 * @module
 */

/** Chooses and remembers which values get their own label. */
export class LabelCap {
  readonly max: number;
  #labeled = new Set<number>();

  constructor(max: number) {
    this.max = max;
  }

  /**
   * Splits `tally` (key -> count) for one scrape. `valueOf(key)` is the capped value (e.g. a
   * command id) a key belongs to. `own` holds the counts exported under their own value, `other`
   * the counts summed under `other`.
   */
  split(
    tally: ReadonlyMap<number, number>,
    valueOf: (key: number) => number,
  ): { own: Map<number, number>; other: Map<number, number> } {
    if (this.#labeled.size < this.max) this.#promote(tally, valueOf);
    const own = new Map<number, number>();
    const other = new Map<number, number>();
    for (const [key, count] of tally) {
      (this.#labeled.has(valueOf(key)) ? own : other).set(key, count);
    }
    return { own, other };
  }

  /** Labels the busiest values not labeled yet, while there is room. */
  #promote(tally: ReadonlyMap<number, number>, valueOf: (key: number) => number): void {
    const totals = new Map<number, number>();
    for (const [key, count] of tally) {
      const value = valueOf(key);
      if (!this.#labeled.has(value)) totals.set(value, (totals.get(value) ?? 0) + count);
    }
    const room = this.max - this.#labeled.size;
    for (const [value] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, room)) {
      this.#labeled.add(value);
    }
  }
}
