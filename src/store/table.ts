/**
 * A columnar ring of events of one program: one typed array per column, rows addressed by
 * their position from the oldest (0) to the newest (`length - 1`). Rows are appended in time
 * order, so a time window is found by binary search on the `ts` column.
 *
 * @module
 */

/** How one column stores its value per row. */
export type ColumnKind = "u8" | "u16" | "u32" | "i32" | "f64" | "str" | "bytes8" | "bytes16";

/** Column names to kinds; every table also has `ts` (f64 ms since the epoch), `pid` and `comm`. */
export type ColumnSpec = Record<string, ColumnKind>;

export const BASE_COLUMNS = { ts: "f64", pid: "u32", comm: "str" } as const satisfies ColumnSpec;

type ColumnArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;

const WIDTH: Record<ColumnKind, number> = {
  u8: 1,
  u16: 2,
  u32: 4,
  i32: 4,
  f64: 8,
  str: 4,
  bytes8: 8,
  bytes16: 16,
};

/** Where a table's columns live: `bytes` of zeroed memory (by default a plain ArrayBuffer). */
export type ColumnMemory = (bytes: number) => ArrayBuffer;

function view(kind: ColumnKind, buffer: ArrayBuffer, offset: number, rows: number): ColumnArray {
  switch (kind) {
    case "u8":
      return new Uint8Array(buffer, offset, rows);
    case "u16":
      return new Uint16Array(buffer, offset, rows);
    case "u32":
    case "str":
      return new Uint32Array(buffer, offset, rows);
    case "i32":
      return new Int32Array(buffer, offset, rows);
    case "f64":
      return new Float64Array(buffer, offset, rows);
    case "bytes8":
      return new Uint8Array(buffer, offset, rows * 8);
    case "bytes16":
      return new Uint8Array(buffer, offset, rows * 16);
  }
}

/** Rows a table holds in ordinary memory before it moves to its full size. */
export const INITIAL_ROWS = 65536;

/** How a table gets its memory. */
export interface TableOptions {
  /** Memory for the full-size columns (the first {@linkcode INITIAL_ROWS} rows use plain memory). */
  memory?: ColumnMemory;
  /** Rows held before the move to full size (default {@linkcode INITIAL_ROWS}). */
  initialRows?: number;
}

/**
 * The columns of one program's events in a ring. It starts with room for
 * {@linkcode INITIAL_ROWS} rows and, when they are not enough, moves once to `maxRows` rows in
 * one block of `memory` (the store gives it huge pages: a table of a million rows is filled with
 * a page fault per 2 MiB). The kernel maps pages as rows are first written, so memory follows
 * the rows held.
 */
export class EventTable<S extends ColumnSpec = ColumnSpec> {
  readonly name: string;
  readonly spec: S & typeof BASE_COLUMNS;
  /**
   * Typed arrays by column name; index with {@linkcode EventTable.slot}. They are replaced once,
   * when the table moves to its full size: read them again after appending.
   */
  cols: Record<keyof S | keyof typeof BASE_COLUMNS, ColumnArray>;
  #size: number;
  #head = 0;
  #length = 0;
  #appended = 0;
  readonly #memory: ColumnMemory;
  /** Rows held at most: beyond, appending evicts the oldest. */
  readonly maxRows: number;

  constructor(name: string, spec: S, maxRows: number, options: TableOptions = {}) {
    if (!Number.isInteger(maxRows) || maxRows < 1) {
      throw new RangeError(`a table holds a positive whole number of rows, got ${maxRows}`);
    }
    this.name = name;
    this.spec = { ...BASE_COLUMNS, ...spec };
    this.maxRows = maxRows;
    this.#memory = options.memory ?? ((bytes) => new ArrayBuffer(bytes));
    this.#size = Math.min(maxRows, options.initialRows ?? INITIAL_ROWS);
    this.cols = this.#allocateAll(
      this.#size,
      (bytes) => new ArrayBuffer(bytes),
    ) as typeof this.cols;
  }

  /** Every column in one block, each 64-byte aligned. */
  #allocateAll(rows: number, memory: ColumnMemory): Record<string, ColumnArray> {
    const at: [string, ColumnKind, number][] = [];
    let bytes = 0;
    for (const [name, kind] of Object.entries(this.spec)) {
      at.push([name, kind, bytes]);
      bytes += (WIDTH[kind] * rows + 63) & ~63;
    }
    const buffer = memory(bytes);
    const cols: Record<string, ColumnArray> = {};
    for (const [name, kind, offset] of at) cols[name] = view(kind, buffer, offset, rows);
    return cols;
  }

  /** Number of rows held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes of column storage per row. */
  get rowBytes(): number {
    return Object.values(this.spec).reduce((sum, kind) => sum + WIDTH[kind], 0);
  }

  /** Bytes allocated for the columns now. */
  get allocatedBytes(): number {
    return this.rowBytes * this.#size;
  }

  /** The array slot of row `i` (0 = oldest). */
  slot(i: number): number {
    const s = this.#head + i;
    return s >= this.#size ? s - this.#size : s;
  }

  /** Adds a row at the end and returns its slot; the caller fills every column at that slot. */
  append(): number {
    if (this.#length === this.#size) {
      if (this.#size === this.maxRows) this.evictOldest();
      else this.#resize(this.maxRows);
    }
    const slot = this.slot(this.#length);
    this.#length++;
    this.#appended++;
    return slot;
  }

  /**
   * How many of up to `want` rows can be written after the newest row, in consecutive slots from
   * {@linkcode EventTable.tailSlot}, once the table moved to full size when its initial rows are
   * used up. Rows held may stand in the way: the store evicts them first
   * ({@linkcode Store.reserve}).
   */
  room(want: number): number {
    if (this.#length === this.#size && this.#size < this.maxRows) this.#resize(this.maxRows);
    // at full size every slot counts: the store evicts the rows in the way
    const free = this.#size < this.maxRows ? this.#size - this.#length : this.#size;
    return Math.max(0, Math.min(want, this.#size - this.tailSlot, free));
  }

  /** The slot the next appended row goes to. */
  get tailSlot(): number {
    return this.slot(this.#length);
  }

  /**
   * Takes the `n` rows written from {@linkcode EventTable.tailSlot} on as appended (they must be
   * free: see {@linkcode EventTable.room}).
   */
  commit(n: number): void {
    if (n < 0 || this.#length + n > this.#size || this.#size - this.tailSlot < n) {
      throw new RangeError(`cannot commit ${n} rows to ${this.name}: no room`);
    }
    this.#length += n;
    this.#appended += n;
  }

  /** Rows evicted so far, and the `ts` of the newest of them (-Infinity when none). */
  evicted = 0;
  lastEvictedTs = -Infinity;

  /** Drops the oldest row (and counts it). */
  evictOldest(): void {
    this.evictOldestMany(1);
  }

  /** Drops the `n` oldest rows at once (and counts them). */
  evictOldestMany(n: number): void {
    n = Math.min(n, this.#length);
    if (n <= 0) return;
    this.lastEvictedTs = this.cols.ts[this.slot(n - 1)];
    this.evicted += n;
    this.#head = this.slot(n);
    this.#length -= n;
  }

  /** Drops the newest row (a decoder that finds a record malformed takes back its row). */
  dropNewest(): void {
    if (this.#length > 0) {
      this.#length--;
      this.#appended--;
    }
  }

  /** Rows ever appended: row `i` is the `appended - length + i`-th. Readers follow it as a cursor. */
  get appended(): number {
    return this.#appended;
  }

  #resize(size: number): void {
    const cols = this.#allocateAll(size, this.#memory);
    for (const [name, kind] of Object.entries(this.spec)) {
      const from = this.cols[name as keyof typeof this.cols];
      const to = cols[name];
      const w = kind === "bytes16" ? 16 : kind === "bytes8" ? 8 : 1;
      const tail = from.subarray(this.#head * w, this.#size * w);
      // deno-lint-ignore no-explicit-any
      (to as any).set(tail, 0);
      // deno-lint-ignore no-explicit-any
      (to as any).set(from.subarray(0, this.#head * w), tail.length);
    }
    this.cols = cols as typeof this.cols;
    this.#head = 0;
    this.#size = size;
  }

  /** The `ts` of the oldest row, or Infinity when empty. */
  oldestTs(): number {
    return this.#length ? this.cols.ts[this.#head] : Infinity;
  }

  /** The first row whose `ts` is at least `ts` (or `length`). */
  lowerBound(ts: number): number {
    const col = this.cols.ts;
    let lo = 0, hi = this.#length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[this.slot(mid)] < ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The first row whose `ts` is greater than `ts` (or `length`). */
  upperBound(ts: number): number {
    const col = this.cols.ts;
    let lo = 0, hi = this.#length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (col[this.slot(mid)] <= ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The 16 bytes of a `bytes16` column at `slot`. */
  bytes16(column: keyof S, slot: number): Uint8Array {
    const arr = this.cols[column] as Uint8Array;
    return arr.subarray(slot * 16, slot * 16 + 16);
  }

  /** The 8 bytes of a `bytes8` column at `slot`. */
  bytes8(column: keyof S, slot: number): Uint8Array {
    const arr = this.cols[column] as Uint8Array;
    return arr.subarray(slot * 8, slot * 8 + 8);
  }
}
