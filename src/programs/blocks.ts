/**
 * Per-block aggregates for summaries over a table's rows: the rows of an {@linkcode EventTable}
 * cut into blocks of `blockSize` rows by their global sequence number (row `i` is the
 * `appended - length + i`-th ever appended), a cache of one aggregate per block, and the exact
 * k-th smallest value across several sorted arrays (quantiles over cached sorted blocks).
 *
 * A block is whole while all its rows are held: it was filled, and none of its rows has been
 * evicted yet. Its rows never change until then, so its aggregate can be computed once.
 *
 * @module
 */

import type { EventTable } from "../store/mod.ts";

/** Rows per block by default: a power of two. */
export const DEFAULT_BLOCK_SIZE = 16384;

/** How a window of rows splits into whole blocks and the rows before and after them. */
export interface WindowBlocks {
  /** Rows `[lo, hi)` (0 = oldest) before the first whole block: scanned. */
  head: [number, number];
  /** Whole blocks by number, `[first, end)`; empty when `first === end`. */
  blocks: [number, number];
  /** Rows `[lo, hi)` after the last whole block: scanned. */
  tail: [number, number];
}

/**
 * Splits the rows `[lo, hi)` of a table whose row 0 is the `oldest`-th row ever appended into
 * the whole blocks of `blockSize` rows inside it and the rows at both ends.
 *
 * @example
 * ```ts
 * splitWindow(10, 0, 100, { blockSize: 32 }); // rows 10..99 are g 20..109
 * // { head: [0, 22], blocks: [1, 3], tail: [86, 100] }
 * ```
 */
export function splitWindow(
  oldest: number,
  [lo, hi]: [number, number],
  { blockSize }: { blockSize: number },
): WindowBlocks {
  const first = Math.ceil((oldest + lo) / blockSize);
  const end = Math.floor((oldest + hi) / blockSize);
  if (hi <= lo || first >= end) {
    return { head: [lo, Math.max(lo, hi)], blocks: [0, 0], tail: [hi, hi] };
  }
  return {
    head: [lo, first * blockSize - oldest],
    blocks: [first, end],
    tail: [end * blockSize - oldest, hi],
  };
}

/**
 * One aggregate per whole block of one table, computed on first use and kept until a row of
 * the block is evicted (or taken back). Given another table, it forgets everything.
 */
export class BlockCache<T> {
  /** Rows per block (a power of two). */
  readonly blockSize: number;
  /** Blocks computed so far (a cached block is not counted again). */
  computed = 0;
  #blocks = new Map<number, T>();
  #table: EventTable | null = null;

  constructor(blockSize = DEFAULT_BLOCK_SIZE) {
    if (!Number.isInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0) {
      throw new RangeError(`block size must be a power of two, got ${blockSize}`);
    }
    this.blockSize = blockSize;
  }

  /** Blocks held. */
  get size(): number {
    return this.#blocks.size;
  }

  /** The aggregates held. */
  values(): IterableIterator<T> {
    return this.#blocks.values();
  }

  /**
   * Binds the cache to `table` and drops every block it no longer holds whole: all of them when
   * the table is another one, else those with an evicted row or a row taken back.
   */
  sync(table: EventTable): void {
    if (table !== this.#table) {
      this.#blocks.clear();
      this.#table = table;
      return;
    }
    const oldest = table.appended - table.length, end = table.appended;
    for (const b of this.#blocks.keys()) {
      if (b * this.blockSize < oldest || (b + 1) * this.blockSize > end) this.#blocks.delete(b);
    }
  }

  /**
   * The aggregate of whole block `b` of the table last given to {@linkcode BlockCache.sync}:
   * cached, or `compute(lo, hi)` over its rows `[lo, hi)` (0 = oldest row) and kept.
   */
  get(b: number, compute: (lo: number, hi: number) => T): T {
    const known = this.#blocks.get(b);
    if (known !== undefined) return known;
    const table = this.#table;
    if (!table) throw new TypeError("block cache used before sync(table)");
    const oldest = table.appended - table.length;
    const lo = b * this.blockSize - oldest, hi = lo + this.blockSize;
    if (lo < 0 || hi > table.length) {
      throw new RangeError(`block ${b} is not whole in table ${table.name}: rows ${lo}..${hi}`);
    }
    const value = compute(lo, hi);
    this.computed++;
    this.#blocks.set(b, value);
    return value;
  }
}

/** The nearest rank (0-based) of quantile `q` of `n` values, as {@linkcode quantile} in query.ts. */
export function nearestRank(q: number, n: number): number {
  return Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
}

/** The first index of `a[from, to)` whose value is at least (`strict`: greater than) `x`. */
function bound(a: Float64Array, x: number, from: number, to: number, strict: boolean): number {
  let lo = from, hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x || (strict && a[mid] === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The `k`-th smallest value (0-based) of the union of ascending `sorted` arrays (no NaN), exactly.
 * Each round takes as pivot the weighted median of the middle values of the candidate ranges,
 * counts the values below and equal to it in each array by binary search, and keeps the side
 * holding rank `k`: at least a quarter of the candidates go each round, so O(m log² n).
 *
 * @example
 * ```ts
 * kthSmallest([Float64Array.of(1, 4, 9), Float64Array.of(2, 3)], 3); // 4
 * ```
 */
export function kthSmallest(sorted: readonly Float64Array[], k: number): number {
  const m = sorted.length;
  const lo = new Float64Array(m), hi = new Float64Array(m);
  let total = 0;
  for (let j = 0; j < m; j++) total += hi[j] = sorted[j].length;
  if (!Number.isInteger(k) || k < 0 || k >= total) {
    throw new RangeError(`rank ${k} is outside the ${total} values`);
  }
  const lt = new Float64Array(m), le = new Float64Array(m);
  const mids: { value: number; weight: number }[] = [];
  for (;;) {
    mids.length = 0;
    let only = -1, active = 0;
    for (let j = 0; j < m; j++) {
      const w = hi[j] - lo[j];
      if (w <= 0) continue;
      only = active++ === 0 ? j : -1;
      mids.push({ value: sorted[j][lo[j] + ((w - 1) >>> 1)], weight: w });
    }
    if (only >= 0) return sorted[only][lo[only] + k];
    mids.sort((a, b) => a.value - b.value);
    let pivot = mids[0].value;
    for (let i = 0, seen = 0; i < mids.length; i++) {
      seen += mids[i].weight;
      pivot = mids[i].value;
      if (2 * seen >= total) break;
    }
    let below = 0, equal = 0;
    for (let j = 0; j < m; j++) {
      if (hi[j] <= lo[j]) continue;
      lt[j] = bound(sorted[j], pivot, lo[j], hi[j], false);
      le[j] = bound(sorted[j], pivot, lt[j], hi[j], true);
      below += lt[j] - lo[j];
      equal += le[j] - lt[j];
    }
    // the pivot is one of the values: not found means an array is out of order (or holds NaN)
    if (equal === 0) throw new TypeError("kthSmallest needs ascending arrays without NaN");
    if (k < below) {
      for (let j = 0; j < m; j++) if (hi[j] > lo[j]) hi[j] = lt[j];
      total = below;
    } else if (k < below + equal) {
      return pivot;
    } else {
      for (let j = 0; j < m; j++) if (hi[j] > lo[j]) lo[j] = le[j];
      k -= below + equal;
      total -= below + equal;
    }
  }
}

/**
 * The exact nearest-rank quantiles `qs` (0..1) of the union of ascending `sorted` arrays (null
 * when they are all empty): the same values as {@linkcode quantile} on one sorted copy.
 */
export function quantilesOfSorted(
  sorted: readonly Float64Array[],
  qs: readonly number[],
): (number | null)[] {
  const n = sorted.reduce((sum, a) => sum + a.length, 0);
  return qs.map((q) => n === 0 ? null : kthSmallest(sorted, nearestRank(q, n)));
}

const LITTLE_ENDIAN = new Uint32Array(Float64Array.of(1).buffer)[1] === 0x3ff00000;

/**
 * Sorts `values` ascending in place and returns it, like `values.sort()`, by an LSD radix sort
 * on the bits of the doubles (11 bits a pass, passes where every value has the same digit
 * skipped): several times faster for latencies. Falls back to `sort()` when a value has its
 * sign bit set (negative, -0), where bit order is not value order.
 */
export function sortNonNegative(values: Float64Array): Float64Array {
  const n = values.length;
  if (n < 256 || !LITTLE_ENDIAN) return values.sort();
  const hist = new Uint32Array(6 * 2048);
  let words: Uint32Array = new Uint32Array(values.buffer, values.byteOffset, 2 * n);
  for (let i = 0; i < 2 * n; i += 2) {
    const lo = words[i], hi = words[i + 1];
    if (hi >>> 31) return values.sort();
    hist[lo & 2047]++;
    hist[2048 + ((lo >>> 11) & 2047)]++;
    hist[4096 + ((lo >>> 22) | ((hi & 1) << 10))]++;
    hist[6144 + ((hi >>> 1) & 2047)]++;
    hist[8192 + ((hi >>> 12) & 2047)]++;
    hist[10240 + (hi >>> 23)]++;
  }
  let src: Float64Array = values, dst: Float64Array = new Float64Array(n);
  let dstWords: Uint32Array = new Uint32Array(dst.buffer);
  const offset = new Uint32Array(2048);
  for (let d = 0; d < 6; d++) {
    const h = d * 2048;
    let skip = false;
    for (let v = 0; v < 2048; v++) {
      if (hist[h + v] === 0) continue;
      skip = hist[h + v] === n;
      break;
    }
    if (skip) continue;
    for (let v = 0, sum = 0; v < 2048; v++) offset[v] = sum, sum += hist[h + v];
    if (d < 2) {
      const shift = 11 * d;
      for (let i = 0; i < n; i++) dst[offset[(words[2 * i] >>> shift) & 2047]++] = src[i];
    } else if (d === 2) {
      for (let i = 0; i < n; i++) {
        dst[offset[(words[2 * i] >>> 22) | ((words[2 * i + 1] & 1) << 10)]++] = src[i];
      }
    } else {
      const shift = 11 * d - 32;
      for (let i = 0; i < n; i++) dst[offset[(words[2 * i + 1] >>> shift) & 2047]++] = src[i];
    }
    [src, dst] = [dst, src];
    [words, dstWords] = [dstWords, words];
  }
  if (src !== values) values.set(src);
  return values;
}
