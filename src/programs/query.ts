/**
 * Filters shared by every program's events: time window (binary search), pid and command, and
 * a compiled test of the program's field filters (`filter.ts`).
 *
 * @module
 */

import type { EventTable, Store } from "../store/mod.ts";

/** Which events a query wants; absent fields match everything. */
export interface EventFilter {
  pid?: number;
  command?: string;
  /** Unix ms, inclusive. */
  since?: number;
  /** Unix ms, inclusive. */
  until?: number;
  /** The field filters compiled for this table (`compileWhere` of filter.ts); null or absent: all. */
  match?: ((slot: number) => boolean) | null;
}

/** A summary's window: always bounded. */
export interface SummaryQuery extends EventFilter {
  since: number;
  until: number;
}

/** A row matcher bound to a table; `null` when nothing can match (an unknown command). */
function matcher(
  table: EventTable,
  store: Store,
  filter: EventFilter,
): ((slot: number) => boolean) | null {
  const pids = table.cols.pid;
  const comms = table.cols.comm;
  const pid = filter.pid;
  let comm = -1;
  if (filter.command !== undefined) {
    comm = store.strings.find(filter.command);
    if (comm < 0) return null;
  }
  const base = pid !== undefined && comm >= 0
    ? (s: number) => pids[s] === pid && comms[s] === comm
    : pid !== undefined
    ? (s: number) => pids[s] === pid
    : comm >= 0
    ? (s: number) => comms[s] === comm
    : null;
  const match = filter.match ?? null;
  if (base && match) return (s) => base(s) && match(s);
  return base ?? match ?? (() => true);
}

/** The rows `[lo, hi)` inside the filter's time window. */
export function timeRange(table: EventTable, filter: EventFilter): [number, number] {
  const lo = filter.since === undefined ? 0 : table.lowerBound(filter.since);
  const hi = filter.until === undefined ? table.length : table.upperBound(filter.until);
  return [lo, Math.max(lo, hi)];
}

/** Slots of up to `limit` matching rows, newest first. */
export function newestRows(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  limit: number,
): number[] {
  const match = matcher(table, store, filter);
  const out: number[] = [];
  if (!match) return out;
  const [lo, hi] = timeRange(table, filter);
  for (let i = hi - 1; i >= lo && out.length < limit; i--) {
    const slot = table.slot(i);
    if (match(slot)) out.push(slot);
  }
  return out;
}

/** What {@linkcode newestSeqs} yields to between slices of its scan. */
export interface Slicer {
  /** Whether the current slice is used up. */
  due(): boolean;
  /** Lets the event loop run, then starts a new slice. */
  next(): Promise<void>;
}

/**
 * The sequence numbers (row `i` is the `appended - length + i`-th ever appended) of up to
 * `limit` matching rows, newest first, like {@linkcode newestRows}, scanned in slices: between
 * two slices the event loop runs, so rows may be appended, evicted, or the table moved to its
 * full size. Sequence numbers stay valid through all of that; rows evicted meanwhile end the
 * scan (they are gone, and counted as evicted). Turn a number into a slot with
 * {@linkcode slotOfSeq}.
 */
export async function newestSeqs(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  limit: number,
  slicer: Slicer,
): Promise<number[]> {
  let match = matcher(table, store, filter);
  const out: number[] = [];
  if (!match) return out;
  const [lo, hi] = timeRange(table, filter);
  const first = table.appended - table.length;
  const loSeq = first + lo;
  for (let seq = first + hi - 1; seq >= loSeq && out.length < limit; seq--) {
    const slot = slotOfSeq(table, seq);
    if (slot < 0) break;
    if (match(slot)) out.push(seq);
    if (slicer.due()) {
      await slicer.next();
      match = matcher(table, store, filter)!; // the columns may have moved
    }
  }
  return out;
}

/** The slot of the row with sequence number `seq`, or -1 when it is no longer held. */
export function slotOfSeq(table: EventTable, seq: number): number {
  const first = table.appended - table.length;
  if (seq < first || seq >= table.appended) return -1;
  return table.slot(seq - first);
}

/** Calls `fn` with the slot of every matching row, oldest first. Returns how many matched. */
export function forEachRow(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  fn: (slot: number) => void,
): number {
  const match = matcher(table, store, filter);
  if (!match) return 0;
  const [lo, hi] = timeRange(table, filter);
  let n = 0;
  for (let i = lo; i < hi; i++) {
    const slot = table.slot(i);
    if (match(slot)) {
      fn(slot);
      n++;
    }
  }
  return n;
}

/**
 * {@linkcode forEachRow} in slices (see {@linkcode newestSeqs}): between two slices the event
 * loop runs, so rows may be appended (those after the window's end at the start are not
 * visited), evicted (skipped: they are gone, and counted as evicted), or the columns moved (the
 * matcher is made again; `fn` reads its columns through the table).
 */
export async function forEachRowSliced(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  fn: (slot: number) => void,
  slicer: Slicer,
): Promise<number> {
  let match = matcher(table, store, filter);
  if (!match) return 0;
  const [lo, hi] = timeRange(table, filter);
  const first = table.appended - table.length;
  const end = first + hi;
  let n = 0;
  for (let seq = first + lo; seq < end; seq++) {
    const slot = slotOfSeq(table, seq);
    if (slot < 0) {
      seq = Math.max(seq, table.appended - table.length - 1); // evicted meanwhile
      continue;
    }
    if (match(slot)) {
      fn(slot);
      n++;
    }
    if (slicer.due()) {
      await slicer.next();
      match = matcher(table, store, filter)!;
    }
  }
  return n;
}

/** A filter's pid and command id (-1: any) and field filter, resolved once for a scan. */
export interface RowFilter {
  pid: number;
  comm: number;
  match: ((slot: number) => boolean) | null;
}

/** The {@linkcode RowFilter} of `filter`; null when no row can match (an unknown command). */
export function rowFilterOf(filter: EventFilter, store: Store): RowFilter | null {
  let comm = -1;
  if (filter.command !== undefined) {
    comm = store.strings.find(filter.command);
    if (comm < 0) return null;
  }
  return { pid: filter.pid ?? -1, comm, match: filter.match ?? null };
}

/**
 * Calls `fn(from, to)` with the slot ranges of the rows of `table` in `filter`'s time window,
 * `rows` rows at a time with `slicer.next()` between them. It goes by sequence number, so rows
 * appended meanwhile after the window's end are not visited and rows evicted meanwhile are left
 * out; `fn` reads the columns through the table (they may have moved).
 */
export async function forEachSlotRangeSliced(
  table: EventTable,
  filter: EventFilter,
  fn: (from: number, to: number) => void,
  slicer: Slicer,
  rows = 1 << 16,
): Promise<void> {
  const [lo, hi] = timeRange(table, filter);
  const start = table.appended - table.length;
  const seqHi = start + hi;
  for (let from = start + lo; from < seqHi;) {
    const to = Math.min(from + rows, seqHi);
    const oldest = table.appended - table.length;
    const a = Math.max(from, oldest);
    for (const [f, t] of slotRanges(table, a - oldest, to - oldest)) fn(f, t);
    from = to;
    if (from < seqHi) await slicer.next();
  }
}

/** Counts of values as a plain object, largest first. */
export function sortedCounts(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** Adds `n` (default one) to `key` in `counts`. */
export function bump(counts: Map<string, number>, key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** The value at quantile `q` (0..1) of sorted `values`, or null when empty. */
export function quantile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

/**
 * Milliseconds to the microsecond, as the API prints them: `48.011`, where subtracting two Unix-time
 * stamps gives `48.0107421875`. A double holding Unix milliseconds keeps about a quarter of a
 * microsecond, so the digits past the microsecond are rounding noise, not measurement.
 *
 * @example
 * ```ts
 * roundMicros(1795576846797.5417); // 1795576846797.542
 * ```
 */
export function roundMicros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The second whose ISO prefix is cached, and that prefix (`...T12:34:56.`). */
let isoSecond = NaN, isoPrefix = "";

function pad3(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`;
}

/**
 * ISO 8601 with microseconds from Unix ms: `2026-11-25T03:04:05.123456Z`. The date and time to
 * the second are formatted once per second (`toISOString` costs about a microsecond, and the
 * events of a list are mostly within a few seconds of each other).
 */
export function isoMicros(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.min(Math.round((ms - whole) * 1000), 999);
  const second = Math.floor(whole / 1000);
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4); // ...T12:34:56.000Z
    isoSecond = second;
  }
  return `${isoPrefix}${pad3(whole - second * 1000)}${pad3(micros)}Z`;
}

/** Contiguous slot ranges `[from, to)` holding the rows `[lo, hi)` of a table's ring. */
export function slotRanges(table: EventTable, lo: number, hi: number): [number, number][] {
  if (hi <= lo) return [];
  const size = table.cols.ts.length;
  const first = table.slot(lo);
  const n = hi - lo;
  if (first + n <= size) return [[first, first + n]];
  return [[first, size], [0, first + n - size]];
}

/**
 * What a scan needs of a filter, resolved once: the slot ranges of its time window, and the pid
 * and command id to match (-1: any). Null when nothing can match (an unknown command).
 */
export function scanPlan(
  table: EventTable,
  store: Store,
  filter: EventFilter,
): { ranges: [number, number][]; pid: number; comm: number; rows: number } | null {
  let comm = -1;
  if (filter.command !== undefined) {
    comm = store.strings.find(filter.command);
    if (comm < 0) return null;
  }
  const [lo, hi] = timeRange(table, filter);
  return { ranges: slotRanges(table, lo, hi), pid: filter.pid ?? -1, comm, rows: hi - lo };
}

/**
 * The nearest-rank quantiles `qs` (0..1) of the first `n` values (non-negative numbers; they
 * are read, not sorted): exact, like {@linkcode quantile} on a sorted copy, but in two or three
 * passes of a 16-bit radix histogram over the bits of the doubles instead of an O(n log n) sort.
 */
export function quantilesOf(
  values: Float64Array,
  n: number,
  qs: readonly number[],
): (number | null)[] {
  if (n === 0) return qs.map(() => null);
  const ranks = qs.map((q) => Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1)));
  return radixSelect(values, n, ranks, 0);
}

function radixSelect(values: Float64Array, n: number, ranks: number[], level: number): number[] {
  if (n <= 4096 || level > 3) {
    const sorted = values.slice(0, n).sort();
    return ranks.map((k) => sorted[k]);
  }
  // the digit of value i at this level: 16 bits of its IEEE 754 pattern, most significant first
  // (for non-negative doubles the bit patterns sort like the values)
  const words = new Uint32Array(values.buffer, values.byteOffset, 2 * n);
  const word = level < 2 ? 1 : 0;
  const shift = level % 2 === 0 ? 16 : 0;
  const hist = new Uint32Array(65536);
  for (let i = word; i < 2 * n; i += 2) hist[(words[i] >>> shift) & 0xffff]++;
  const digit: number[] = [], within: number[] = [];
  for (const k of ranks) {
    let seen = 0, d = 0;
    while (seen + hist[d] <= k) seen += hist[d++];
    digit.push(d);
    within.push(k - seen);
  }
  // one pass gathers the values of every bucket a rank falls in
  const wanted = [...new Set(digit)];
  const buckets = wanted.map((d) => new Float64Array(hist[d]));
  const fill = wanted.map(() => 0);
  const d0 = wanted[0],
    d1 = wanted.length > 1 ? wanted[1] : -1,
    d2 = wanted.length > 2 ? wanted[2] : -1;
  for (let i = 0; i < n; i++) {
    const d = (words[2 * i + word] >>> shift) & 0xffff;
    if (d === d0) buckets[0][fill[0]++] = values[i];
    else if (d === d1) buckets[1][fill[1]++] = values[i];
    else if (d === d2) buckets[2][fill[2]++] = values[i];
    else {
      const j = wanted.indexOf(d, 3);
      if (j >= 0) buckets[j][fill[j]++] = values[i];
    }
  }
  const out: number[] = [];
  for (let r = 0; r < ranks.length; r++) {
    const bucket = buckets[wanted.indexOf(digit[r])];
    out.push(radixSelect(bucket, bucket.length, [within[r]], level + 1)[0]);
  }
  return out;
}
