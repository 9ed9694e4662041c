/**
 * The event store: one columnar {@linkcode EventTable} per program under one capacity. When the
 * store is full, the oldest event of any program is evicted and counted.
 *
 * @module
 */

import { CounterLog } from "./counter_log.ts";
import { Interner } from "./interner.ts";
import { type ColumnMemory, type ColumnSpec, EventTable } from "./table.ts";

export { CounterLog } from "./counter_log.ts";
export { Interner } from "./interner.ts";
export {
  BASE_COLUMNS,
  type ColumnKind,
  type ColumnMemory,
  type ColumnSpec,
  EventTable,
} from "./table.ts";

/** Counters of one table. */
export interface TableStats {
  stored: number;
  evicted: number;
}

/** All events of all programs, bounded by `capacity` events in total. */
/** Evictions of at least this many rows at once go by a time threshold (`#evictByTime`). */
const BATCH_EVICTION = 64;

export class Store {
  readonly capacity: number;
  /** Strings shared by every table (commands, paths). */
  readonly strings = new Interner();
  #tables = new Map<string, EventTable>();
  /** The same tables as an array: the eviction on every append when full walks it. */
  #tableList: EventTable[] = [];
  #counters = new Map<string, CounterLog>();
  #tallies = new Map<string, Map<number, number>>();
  #total = 0;
  /** The table evictions come from, while its oldest row is no newer than `#victimUntil`. */
  #victim: EventTable | null = null;
  /** The oldest `ts` of every other table when the victim was chosen. */
  #victimUntil = -Infinity;

  readonly #memory: ColumnMemory | undefined;

  /**
   * A store of `capacity` events; `memory` gives the tables their full-size columns (main uses
   * the shim's huge pages; by default plain ArrayBuffers).
   */
  constructor(capacity: number, options: { memory?: ColumnMemory } = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`store capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#memory = options.memory;
  }

  /** Creates (once) the table of a program. */
  table<S extends ColumnSpec>(name: string, spec: S): EventTable<S> {
    const known = this.#tables.get(name);
    if (known) return known as unknown as EventTable<S>;
    const table = new EventTable(name, spec, this.capacity, { memory: this.#memory });
    this.#tables.set(name, table as unknown as EventTable);
    this.#tableList.push(table as unknown as EventTable);
    return table;
  }

  /** The log of kernel counter increments of a program (created on first use). */
  counters(name: string): CounterLog {
    let log = this.#counters.get(name);
    if (!log) this.#counters.set(name, log = new CounterLog());
    return log;
  }

  /**
   * Counts a program keeps at ingest, by a numeric key of its own (e.g. command, protocol and
   * result packed into one number). They never shrink: eviction does not touch them.
   */
  tally(name: string): Map<number, number> {
    let tally = this.#tallies.get(name);
    if (!tally) this.#tallies.set(name, tally = new Map());
    return tally;
  }

  /** The table of a program, if it has one. */
  get(name: string): EventTable | undefined {
    return this.#tables.get(name);
  }

  /** Every table. */
  tables(): EventTable[] {
    return [...this.#tables.values()];
  }

  /** Adds a row to `table`, evicting the oldest event of the store first when full. */
  append(table: EventTable): number {
    // A table that was empty was left out when the victim was chosen: choose again, here and
    // at the next eviction (when its row is filled in).
    const wasEmpty = table.length === 0;
    if (wasEmpty) this.#victim = null;
    if (this.#total >= this.capacity) this.#evictOldest();
    this.#total++;
    const slot = table.append();
    if (wasEmpty) this.#victim = null;
    return slot;
  }

  /**
   * Makes room for up to `want` rows after the newest row of `table`, in consecutive slots from
   * its `tailSlot`, evicting the store's oldest events as appending that many would; returns
   * how many fit. A batch decoder writes them, then calls {@linkcode Store.commit} with how many
   * it wrote: rows it did not write stay free, so a batch evicts at most `want` events early.
   */
  reserve(table: EventTable, want: number): number {
    const rows = table.room(want);
    if (rows === 0) return 0;
    if (table.length === 0) this.#victim = null; // as in append
    const over = this.#total + rows - this.capacity;
    if (over > 0) this.#evict(over);
    // a table smaller than the store's capacity (never, as the store makes them) evicts its own
    const own = table.length + rows - table.maxRows;
    if (own > 0) {
      table.evictOldestMany(own);
      this.#total -= own;
    }
    return rows;
  }

  /** Takes the `n` rows a batch decoder wrote after {@linkcode Store.reserve} as appended. */
  commit(table: EventTable, n: number): void {
    if (n === 0) return;
    if (table.length === 0) this.#victim = null; // as in append
    table.commit(n);
    this.#total += n;
  }

  /** Takes back the row just appended to `table` (a record that failed to decode). */
  dropNewest(table: EventTable): void {
    if (table.length === 0) return;
    table.dropNewest();
    this.#total--;
  }

  /**
   * Evicts the `n` oldest events of the store: a batch at once by a time threshold when several
   * tables hold rows (see {@linkcode Store.#evictByTime}), else a run of one table's rows at a
   * time.
   */
  #evict(n: number): void {
    if (n >= BATCH_EVICTION && this.#evictByTime(n)) return;
    while (n > 0 && this.#total > 0) {
      const victim = this.#victim;
      if (victim !== null && victim.length > 0 && victim.oldestTs() <= this.#victimUntil) {
        // the victim's rows up to the other tables' oldest (all of them when there are none)
        const upTo = this.#victimUntil === Infinity
          ? victim.length
          : victim.upperBound(this.#victimUntil);
        const k = Math.min(n, Math.max(1, upTo));
        victim.evictOldestMany(k);
        this.#total -= k;
        n -= k;
      } else {
        this.#evictOldest(); // chooses the victim again
        n--;
      }
    }
  }

  /**
   * Evicts the `n` oldest events of every table together: finds the smallest time T such that
   * at least `n` rows are no newer than T (a bisection over T, each step a binary search per
   * table), evicts every row older than T, then rows at exactly T in table order until `n` are
   * gone. Events of several programs interleave finely in time (a refused connect is three
   * events of three programs within microseconds), so the run-at-a-time loop evicted one row per
   * turn and chose the victim again each time. Returns false (nothing done) when fewer than two
   * tables hold rows, where that loop is as fast.
   */
  #evictByTime(n: number): boolean {
    const tables = this.#tableList.filter((t) => t.length > 0);
    if (tables.length < 2) return false;
    n = Math.min(n, this.#total);
    const atMost = (t: number) => {
      let c = 0;
      for (const table of tables) c += table.upperBound(t);
      return c;
    };
    // lo: fewer than n rows are <= lo; hi: at least n are
    let lo = -Infinity, hi = -Infinity;
    for (const table of tables) {
      hi = Math.max(hi, table.cols.ts[table.slot(Math.min(n, table.length) - 1)]);
    }
    let oldest = Infinity;
    for (const table of tables) oldest = Math.min(oldest, table.oldestTs());
    if (atMost(oldest) >= n) hi = oldest;
    else {
      lo = oldest;
      for (let i = 0; i < 200; i++) {
        const mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi) break; // adjacent doubles: hi is the threshold
        if (atMost(mid) >= n) hi = mid;
        else lo = mid;
      }
    }
    // rows older than the threshold, then rows at it in table order
    let left = n;
    const before = tables.map((table) => table.lowerBound(hi));
    tables.forEach((table, i) => {
      const k = Math.min(before[i], left);
      table.evictOldestMany(k);
      left -= k;
    });
    for (const table of tables) {
      if (left === 0) break;
      const k = Math.min(table.upperBound(hi), left);
      table.evictOldestMany(k);
      left -= k;
    }
    this.#total -= n - left;
    this.#victim = null;
    return true;
  }

  #evictOldest(): void {
    // Rows of one table are in time order and other tables' oldest rows only get newer, so
    // the victim stays the oldest until its head passes theirs: no walk per eviction.
    const victim = this.#victim;
    if (victim !== null && victim.length > 0 && victim.oldestTs() <= this.#victimUntil) {
      victim.evictOldest();
      this.#total--;
      return;
    }
    let oldest: EventTable | null = null;
    let oldestTs = Infinity, nextTs = Infinity;
    for (const table of this.#tableList) {
      if (table.length === 0) continue;
      const ts = table.oldestTs();
      if (oldest === null || ts < oldestTs) {
        nextTs = oldestTs;
        oldest = table;
        oldestTs = ts;
      } else if (ts < nextTs) nextTs = ts;
    }
    this.#victim = oldest;
    this.#victimUntil = nextTs;
    if (!oldest) return;
    oldest.evictOldest();
    this.#total--;
  }

  /** Events held now. */
  get size(): number {
    return this.#total;
  }

  /** Events evicted so far, in all or in one table. */
  evicted(name?: string): number {
    if (name !== undefined) return this.#tables.get(name)?.evicted ?? 0;
    let sum = 0;
    for (const table of this.#tableList) sum += table.evicted;
    return sum;
  }

  /** The `ts` of the newest event evicted from a table, or -Infinity. */
  lastEvictedTs(name: string): number {
    return this.#tables.get(name)?.lastEvictedTs ?? -Infinity;
  }

  /** Stored and evicted counts of a table. */
  stats(name: string): TableStats {
    return { stored: this.#tables.get(name)?.length ?? 0, evicted: this.evicted(name) };
  }
}
