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

function allocate(kind: ColumnKind, rows: number): ColumnArray {
  switch (kind) {
    case "u8":
      return new Uint8Array(rows);
    case "u16":
      return new Uint16Array(rows);
    case "u32":
    case "str":
      return new Uint32Array(rows);
    case "i32":
      return new Int32Array(rows);
    case "f64":
      return new Float64Array(rows);
    case "bytes8":
      return new Uint8Array(rows * 8);
    case "bytes16":
      return new Uint8Array(rows * 16);
  }
}

/** The columns of one program's events in a growable ring. */
export class EventTable<S extends ColumnSpec = ColumnSpec> {
  readonly name: string;
  readonly spec: S & typeof BASE_COLUMNS;
  /** Typed arrays by column name; index with {@linkcode EventTable.slot}. */
  cols: Record<keyof S | keyof typeof BASE_COLUMNS, ColumnArray>;
  #size: number;
  #mask: number;
  #head = 0;
  #length = 0;
  #appended = 0;
  readonly maxRows: number;

  /** A table that grows by doubling up to `maxRows` (rounded up to a power of two). */
  constructor(name: string, spec: S, maxRows: number) {
    this.name = name;
    this.spec = { ...BASE_COLUMNS, ...spec };
    this.maxRows = nextPowerOfTwo(Math.max(maxRows, 1));
    // Every column at its full size at once: the pages of a large typed array are mapped on
    // first write, so memory follows the rows held, and no doubling leaves old arrays behind
    // (they stayed in RSS: 130+ bytes per row instead of 78 for connection).
    this.#size = this.maxRows;
    this.#mask = this.#size - 1;
    this.cols = this.#allocateAll(this.#size) as typeof this.cols;
  }

  #allocateAll(rows: number): Record<string, ColumnArray> {
    const cols: Record<string, ColumnArray> = {};
    for (const [name, kind] of Object.entries(this.spec)) cols[name] = allocate(kind, rows);
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
    return (this.#head + i) & this.#mask;
  }

  /** Adds a row at the end and returns its slot; the caller fills every column at that slot. */
  append(): number {
    if (this.#length === this.#size) {
      if (this.#size === this.maxRows) this.evictOldest();
      else this.#grow();
    }
    const slot = (this.#head + this.#length) & this.#mask;
    this.#length++;
    this.#appended++;
    return slot;
  }

  /** Rows evicted so far, and the `ts` of the newest of them (-Infinity when none). */
  evicted = 0;
  lastEvictedTs = -Infinity;

  /** Drops the oldest row (and counts it). */
  evictOldest(): void {
    if (this.#length === 0) return;
    this.lastEvictedTs = this.cols.ts[this.#head];
    this.evicted++;
    this.#head = (this.#head + 1) & this.#mask;
    this.#length--;
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

  #grow(): void {
    const size = this.#size * 2;
    const cols = this.#allocateAll(size);
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
    this.#mask = size - 1;
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
      if (col[(this.#head + mid) & this.#mask] < ts) lo = mid + 1;
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
      if (col[(this.#head + mid) & this.#mask] <= ts) lo = mid + 1;
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

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
