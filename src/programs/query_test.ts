import assert from "node:assert/strict";
import { isoMicros, quantile, quantilesOf, roundMicros } from "./query.ts";

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

Deno.test("isoMicros: what toISOString gives, to the microsecond, whatever it formatted before", () => {
  const reference = (ms: number) => {
    const whole = Math.floor(ms);
    const micros = Math.round((ms - whole) * 1000);
    const iso = new Date(whole).toISOString();
    return `${iso.slice(0, -1)}${String(Math.min(micros, 999)).padStart(3, "0")}Z`;
  };
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const base = Date.UTC(2026, 10, 25, 3, 4, 5);
  const values = [
    0,
    -1,
    -0.0004,
    999.9996,
    1000,
    base,
    base + 0.0005,
    base + 999.9999,
    253402300799999,
  ];
  for (let i = 0; i < 20000; i++) {
    // runs within a second, jumps across seconds and years, and back
    values.push(base + (next() < 0.5 ? next() * 2000 : (next() - 0.5) * 1e12));
  }
  for (const ms of values) assert.equal(isoMicros(ms), reference(ms), `${ms}`);
  assert.equal(isoMicros(base + 123.456), "2026-11-25T03:04:05.123456Z");
  assert.throws(() => isoMicros(NaN), RangeError);
});
