import assert from "node:assert/strict";
import { EventTable } from "../store/mod.ts";
import {
  BlockCache,
  kthSmallest,
  nearestRank,
  quantilesOfSorted,
  sortNonNegative,
  splitWindow,
} from "./blocks.ts";
import { quantile } from "./query.ts";

/** A deterministic generator of numbers in [0, 1). */
function lcg(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
}

Deno.test("splitWindow: whole blocks are exactly those inside the window, the ends are the rest", () => {
  for (const blockSize of [1, 2, 4, 8]) {
    for (let oldest = 0; oldest < 20; oldest++) {
      for (let lo = 0; lo < 24; lo++) {
        for (let hi = lo; hi < 24; hi++) {
          const { head, blocks, tail } = splitWindow(oldest, [lo, hi], { blockSize });
          const whole: number[] = [];
          for (let b = 0; b * blockSize < oldest + hi; b++) {
            if (b * blockSize >= oldest + lo && (b + 1) * blockSize <= oldest + hi) whole.push(b);
          }
          const at = `B=${blockSize} oldest=${oldest} rows ${lo}..${hi}`;
          if (whole.length === 0) {
            assert.equal(blocks[0], blocks[1], at);
            assert.deepEqual([head, tail], [[lo, hi], [hi, hi]], at);
            continue;
          }
          assert.deepEqual(blocks, [whole[0], whole.at(-1)! + 1], at);
          assert.deepEqual(head, [lo, whole[0] * blockSize - oldest], at);
          assert.deepEqual(tail, [(whole.at(-1)! + 1) * blockSize - oldest, hi], at);
          assert.ok(head[1] - head[0] < blockSize && tail[1] - tail[0] < blockSize, at);
        }
      }
    }
  }
});

/** A table of `maxRows` whose rows hold their own sequence number in `pid`. */
function table(maxRows: number) {
  const t = new EventTable("t", {}, maxRows);
  let next = 0;
  const append = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = t.append();
      t.cols.ts[s] = next;
      t.cols.pid[s] = next++;
    }
  };
  // the sum of a block's sequence numbers, read from its rows
  const sum = (lo: number, hi: number) => {
    let total = 0;
    for (let i = lo; i < hi; i++) total += t.cols.pid[t.slot(i)];
    return total;
  };
  return { t, append, sum };
}

Deno.test("BlockCache computes a block once and keeps it while its rows are held", () => {
  const { t, append, sum } = table(64);
  const cache = new BlockCache<number>(16);
  const blockSum = (b: number) => 256 * b + 120; // the sum of 16b .. 16b + 15
  append(40);
  cache.sync(t);
  assert.equal(cache.get(0, sum), blockSum(0));
  assert.equal(cache.get(1, sum), blockSum(1));
  assert.equal(cache.get(1, sum), blockSum(1));
  assert.equal(cache.computed, 2);
  assert.throws(() => cache.get(2, sum), RangeError); // rows 32..47: 8 of them not yet appended
  append(24); // 64 rows: full, nothing evicted
  cache.sync(t);
  assert.equal(cache.size, 2);
  append(1); // row 0 evicted: block 0 is no longer whole
  cache.sync(t);
  assert.equal(cache.size, 1);
  assert.throws(() => cache.get(0, sum), RangeError);
  assert.equal(cache.get(1, sum), blockSum(1));
  assert.equal(cache.computed, 2);
  append(60); // wraps the ring: g 61..124 held, so blocks 4..6 whole
  cache.sync(t);
  assert.equal(cache.size, 0);
  for (let b = 4; b < 7; b++) assert.equal(cache.get(b, sum), blockSum(b));
  assert.throws(() => cache.get(3, sum), RangeError);
  assert.throws(() => cache.get(7, sum), RangeError);
  assert.equal(cache.computed, 5);
});

Deno.test("BlockCache forgets a block whose rows were taken back, and everything for another table", () => {
  const { t, append, sum } = table(64);
  const cache = new BlockCache<number>(8);
  append(16);
  cache.sync(t);
  cache.get(0, sum);
  cache.get(1, sum);
  t.dropNewest(); // row 15 taken back: block 1 is not whole
  cache.sync(t);
  assert.equal(cache.size, 1);
  append(1);
  cache.sync(t);
  cache.get(1, sum);
  assert.equal(cache.computed, 3);
  const other = table(64);
  other.append(16);
  cache.sync(other.t);
  assert.equal(cache.size, 0);
  cache.get(0, other.sum);
  assert.equal(cache.computed, 4);
});

Deno.test("BlockCache wants a power of two and a table first", () => {
  for (const bad of [0, 3, 1.5, -4, 1000]) assert.throws(() => new BlockCache(bad), RangeError);
  assert.throws(() => new BlockCache<number>(4).get(0, () => 1), TypeError);
});

Deno.test("nearestRank is the index quantile() reads", () => {
  for (let n = 1; n < 50; n++) {
    const sorted = Float64Array.from({ length: n }, (_, i) => i);
    for (const q of [0, 0.01, 0.5, 0.9, 0.99, 1]) {
      assert.equal(nearestRank(q, n), quantile(sorted, q));
    }
  }
});

Deno.test("kthSmallest over sorted arrays equals the k-th of their sorted union", () => {
  const random = lcg(11);
  for (let round = 0; round < 300; round++) {
    const arrays: Float64Array[] = [];
    const m = 1 + Math.floor(random() * 8);
    const spread = [3, 50, 1e9][round % 3]; // many repeats, some, none
    for (let j = 0; j < m; j++) {
      const n = [0, 1, 2, 5, 40, 300][Math.floor(random() * 6)];
      arrays.push(Float64Array.from({ length: n }, () => Math.floor(random() * spread)).sort());
    }
    const union = Float64Array.from(arrays.flatMap((a) => [...a])).sort();
    for (let k = 0; k < union.length; k++) {
      assert.equal(kthSmallest(arrays, k), union[k], `round ${round} k=${k}`);
    }
    assert.throws(() => kthSmallest(arrays, union.length), RangeError);
    assert.throws(() => kthSmallest(arrays, -1), RangeError);
    const qs = [0.5, 0.9, 0.99, 1];
    assert.deepEqual(quantilesOfSorted(arrays, qs), qs.map((q) => quantile(union, q)));
  }
});

Deno.test("kthSmallest: many large arrays, and all values equal", () => {
  const random = lcg(5);
  const arrays = Array.from(
    { length: 64 },
    () => Float64Array.from({ length: 4096 }, () => Math.floor(random() * 1e6)).sort(),
  );
  const union = Float64Array.from(arrays.flatMap((a) => [...a])).sort();
  for (const k of [0, 1, 131071, 200000, union.length - 1]) {
    assert.equal(kthSmallest(arrays, k), union[k]);
  }
  const same = [new Float64Array(7).fill(3), new Float64Array(5).fill(3)];
  for (let k = 0; k < 12; k++) assert.equal(kthSmallest(same, k), 3);
  assert.deepEqual(quantilesOfSorted([new Float64Array(0)], [0.5]), [null]);
  const unsorted = [Float64Array.of(5, 1, 9, 2, 7, 3), Float64Array.of(8, 0, 4)];
  for (let k = 0; k < 9; k++) {
    try {
      kthSmallest(unsorted, k); // a wrong answer, or an error, but it returns
    } catch (err) {
      assert.ok(err instanceof TypeError);
    }
  }
});

Deno.test("sortNonNegative sorts like sort()", () => {
  const random = lcg(3);
  const kinds: [string, () => number][] = [
    ["latencies", () => 1000 + Math.floor(random() * 500_000)],
    ["wide", () => Math.floor(random() ** 8 * 2 ** 52)],
    ["fractions", () => random() * 1e-3],
    ["few", () => [0, 1, 2.5, Infinity][Math.floor(random() * 4)]],
    ["negatives", () => random() * 200 - 100], // falls back to sort()
    ["zeros", () => (random() < 0.5 ? -0 : 0)],
  ];
  for (const [kind, next] of kinds) {
    for (const n of [0, 1, 255, 256, 1000, 20_000]) {
      const values = Float64Array.from({ length: n }, next);
      const expected = values.slice().sort();
      const inner = new Float64Array(n + 2);
      inner.set(values, 1);
      const view = inner.subarray(1, n + 1); // not at the start of its buffer
      assert.equal(sortNonNegative(view), view);
      const negativeZeros = (a: Float64Array) => [...a].map((v) => Object.is(v, -0));
      assert.deepEqual(negativeZeros(view), negativeZeros(expected), `${kind} n=${n}`);
      assert.deepEqual(view, expected, `${kind} n=${n}`);
      assert.equal(inner[0] + inner[n + 1], 0, `${kind} n=${n}: outside the view`);
    }
  }
});
