/**
 * Bounded label values for counters that stay monotonic: at most `max` values (commands) get a
 * label of their own, the busiest ones when they are chosen (at a scrape); the rest are summed as
 * `other`. A value chosen after its counts were already exported in `other` leaves those counts
 * there, so no exported series ever goes down.
 *
 * @module
 */

/** Chooses and remembers which values get their own label. */
export class LabelCap {
  readonly max: number;
  #labeled = new Set<number>();
  /** per key: the count that stays in `other` because it was exported there */
  #frozen = new Map<number, number>();
  /** per key: the count last exported as part of `other` */
  #exportedInOther = new Map<number, number>();

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
      if (this.#labeled.has(valueOf(key))) {
        const frozen = this.#frozen.get(key) ?? 0;
        own.set(key, count - frozen);
        if (frozen) other.set(key, frozen);
      } else {
        other.set(key, count);
        this.#exportedInOther.set(key, count);
      }
    }
    return { own, other };
  }

  #promote(tally: ReadonlyMap<number, number>, valueOf: (key: number) => number): void {
    const totals = new Map<number, number>();
    for (const [key, count] of tally) {
      const value = valueOf(key);
      if (!this.#labeled.has(value)) totals.set(value, (totals.get(value) ?? 0) + count);
    }
    const room = this.max - this.#labeled.size;
    const chosen = new Set(
      [...totals].sort((a, b) => b[1] - a[1]).slice(0, room).map(([value]) => value),
    );
    for (const value of chosen) this.#labeled.add(value);
    for (const key of tally.keys()) {
      if (!chosen.has(valueOf(key))) continue;
      const exported = this.#exportedInOther.get(key);
      if (exported) this.#frozen.set(key, exported);
      this.#exportedInOther.delete(key);
    }
  }
}
