import assert from "node:assert/strict";
import { quantile, quantilesOf, roundMicros } from "./query.ts";

Deno.test("quantilesOf equals the nearest-rank quantiles of a sorted copy", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const qs = [0.5, 0.9, 0.99, 1];
  for (const n of [1, 2, 3, 10, 4096, 4097, 20_000, 100_000]) {
    for (const spread of [40, 1e6, 1e12]) {
      // latencies-like values: many repeats at small spreads, all distinct at large ones
      const values = Float64Array.from({ length: n + 5 }, () => Math.floor(random() * spread));
      const sorted = values.slice(0, n).sort();
      assert.deepEqual(
        quantilesOf(values, n, qs),
        qs.map((q) => quantile(sorted, q)),
        `n=${n} spread=${spread}`,
      );
    }
  }
});

Deno.test("quantilesOf of nothing is null", () => {
  assert.deepEqual(quantilesOf(new Float64Array(4), 0, [0.5, 1]), [null, null]);
});

Deno.test("roundMicros prints milliseconds to the microsecond, without float noise", () => {
  const start = 1795576846749.531, end = 1795576846797.5417;
  assert.notEqual(String(end - start).length, "48.011".length, "the noise this is about");
  assert.equal(roundMicros(end - start), 48.011);
  assert.equal(String(roundMicros(end)), "1795576846797.542");
  assert.equal(roundMicros(0.38), 0.38);
  assert.equal(roundMicros(12), 12);
  assert.ok(Number.isNaN(roundMicros(NaN)));
});
