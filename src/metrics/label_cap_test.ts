/**
 * LabelCap: at most `max` commands get a label, chosen (busiest first) at a scrape and kept;
 * every exported series, a command's own and the per-key sums under `other`, never goes down.
 *
 * The tallies here are keyed like the connection program's: a key packs a command and a
 * "variant" (in the program, protocol and result), `valueOf(key)` gives the command, and the
 * series exported under `other` are summed per variant, as `metrics()` in
 * src/programs/connection/mod.ts does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LabelCap } from "./label_cap.ts";

const VARIANTS = 4;

function keyOf(command: number, variant: number): number {
  return command * VARIANTS + variant;
}

function commandOf(key: number): number {
  return Math.floor(key / VARIANTS);
}

function variantOf(key: number): number {
  return key % VARIANTS;
}

/** The series one scrape exports: `own <key>` per labeled key, `other <variant>` summed. */
interface Scrape {
  series: Map<string, number>;
  own: Map<number, number>;
  other: Map<number, number>;
  labeled: Set<number>;
}

function scrape(cap: LabelCap, tally: ReadonlyMap<number, number>): Scrape {
  const { own, other } = cap.split(tally, commandOf);
  const series = new Map<string, number>();
  for (const [key, value] of own) series.set(`own ${key}`, value);
  for (const [key, value] of other) {
    const id = `other ${variantOf(key)}`;
    series.set(id, (series.get(id) ?? 0) + value);
  }
  return { series, own, other, labeled: new Set([...own.keys()].map(commandOf)) };
}

/** A deterministic PRNG (mulberry32) so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bump(tally: Map<number, number>, key: number, n: number): void {
  tally.set(key, (tally.get(key) ?? 0) + n);
}

Deno.test("LabelCap: at most `max` commands get their own label", () => {
  const cap = new LabelCap(5);
  const tally = new Map<number, number>();
  for (let command = 0; command < 50; command++) {
    for (let variant = 0; variant < VARIANTS; variant++) bump(tally, keyOf(command, variant), 1);
  }
  for (let i = 0; i < 3; i++) {
    const s = scrape(cap, tally);
    assert.equal(s.labeled.size, 5, "exactly max commands are labeled when more exist");
    for (const [key, count] of tally) {
      assert.equal((s.own.get(key) ?? 0) + (s.other.get(key) ?? 0), count, `key ${key} conserved`);
    }
    for (const key of tally.keys()) bump(tally, key, 1 + (key % 3));
  }
});

Deno.test("LabelCap: max 0 labels nothing; everything is other", () => {
  const cap = new LabelCap(0);
  const tally = new Map([[keyOf(1, 0), 3], [keyOf(2, 1), 4]]);
  const s = scrape(cap, tally);
  assert.equal(s.own.size, 0);
  assert.deepEqual(s.series, new Map([["other 0", 3], ["other 1", 4]]));
});

Deno.test("LabelCap: the busiest commands at the first scrape get the labels", () => {
  const cap = new LabelCap(3);
  // Command totals (over all variants): 7 -> 100, 3 -> 60, 9 -> 41, 1 -> 40, 2 -> 5.
  const tally = new Map<number, number>([
    [keyOf(7, 0), 60],
    [keyOf(7, 1), 40],
    [keyOf(3, 2), 60],
    [keyOf(9, 0), 1],
    [keyOf(9, 3), 40],
    [keyOf(1, 0), 40],
    [keyOf(2, 1), 5],
  ]);
  const first = scrape(cap, tally);
  assert.deepEqual([...first.labeled].sort((a, b) => a - b), [3, 7, 9]);
  // Each labeled key exports its whole count under its own label: nothing was in `other` before.
  assert.equal(first.own.get(keyOf(7, 0)), 60);
  assert.equal(first.own.get(keyOf(9, 0)), 1, "a labeled command's small key is its own, too");
  assert.deepEqual(first.series.get("other 0"), 40);
  assert.deepEqual(first.series.get("other 1"), 5);

  // Command 1 becomes by far the busiest; the labels stay as chosen (the cap is full).
  bump(tally, keyOf(1, 0), 10_000);
  const second = scrape(cap, tally);
  assert.deepEqual([...second.labeled].sort((a, b) => a - b), [3, 7, 9]);
  assert.equal(second.series.get("other 0"), 10_040);
});

Deno.test("LabelCap: a command seen after the first scrape is labeled while there is room", () => {
  const cap = new LabelCap(3);
  const tally = new Map<number, number>([[keyOf(1, 0), 10]]);
  const first = scrape(cap, tally);
  assert.deepEqual([...first.labeled], [1]);

  // Two new commands and a third: room for two more labels, the two busiest get them.
  bump(tally, keyOf(2, 0), 5);
  bump(tally, keyOf(3, 1), 7);
  bump(tally, keyOf(4, 0), 1);
  const second = scrape(cap, tally);
  assert.deepEqual([...second.labeled].sort(), [1, 2, 3]);
  assert.equal(second.own.get(keyOf(2, 0)), 5, "never exported in other: its whole count is own");
  assert.equal(second.own.get(keyOf(3, 1)), 7);
  assert.equal(second.series.get("other 0"), 1);
});

Deno.test("LabelCap: a command promoted at a later scrape keeps its earlier exported counts in other", () => {
  const cap = new LabelCap(2);
  const tally = new Map<number, number>([[keyOf(1, 0), 10]]);
  scrape(cap, tally); // labels command 1; one label left

  // Commands 2 and 3 appear; command 2, the busier, takes the last label, 3 is other.
  bump(tally, keyOf(2, 0), 6);
  bump(tally, keyOf(3, 0), 4);
  const second = scrape(cap, tally);
  assert.equal(second.other.get(keyOf(3, 0)), 4);

  // Whatever the cap does with command 3 from now on, the 4 calls it exported under `other`
  // stay there, and a label it may get counts only what came after.
  bump(tally, keyOf(3, 0), 100);
  const third = scrape(cap, tally);
  const inOther = third.other.get(keyOf(3, 0)) ?? 0;
  const own = third.own.get(keyOf(3, 0)) ?? 0;
  assert.ok(inOther >= 4, `command 3's 4 earlier calls stay in other (got ${inOther})`);
  assert.equal(inOther + own, 104, "own + other is the tally");
  assert.ok(third.series.get("other 0")! >= second.series.get("other 0")!, "other 0 not down");
});

Deno.test("LabelCap: every exported series is monotonic over scrapes of growing tallies", () => {
  const maxes = [0, 1, 3, 5, 20];
  for (let seed = 1; seed <= 200; seed++) {
    const random = prng(seed);
    const max = maxes[seed % maxes.length];
    const cap = new LabelCap(max);
    const tally = new Map<number, number>();
    let commands = 1 + Math.floor(random() * 4); // the set of commands grows over time
    let previous: Scrape | undefined;
    const everLabeled = new Set<number>();
    for (let round = 0; round < 40; round++) {
      const context = `seed ${seed}, max ${max}, scrape ${round}`;
      if (random() < 0.3) commands += 1 + Math.floor(random() * 3);
      const bumps = Math.floor(random() * 12);
      for (let i = 0; i < bumps; i++) {
        // Skewed: low command ids are busier, so the busiest set shifts as new ones arrive.
        const command = Math.floor(random() ** 2 * commands);
        const variant = Math.floor(random() * VARIANTS);
        bump(tally, keyOf(command, variant), 1 + Math.floor(random() * 50));
      }
      const now = scrape(cap, tally);

      assert.ok(now.labeled.size <= max, `${context}: ${now.labeled.size} labels > max`);
      for (const command of everLabeled) {
        const hasKeys = [...tally.keys()].some((k) => commandOf(k) === command);
        if (hasKeys) assert.ok(now.labeled.has(command), `${context}: ${command} kept its label`);
      }
      for (const command of now.labeled) everLabeled.add(command);
      assert.ok(everLabeled.size <= max, `${context}: ${everLabeled.size} labels ever > max`);

      for (const [key, count] of tally) {
        const own = now.own.get(key) ?? 0;
        const other = now.other.get(key) ?? 0;
        assert.equal(own + other, count, `${context}: key ${key} own + other = tally`);
        assert.ok(own >= 0 && other >= 0, `${context}: key ${key} has no negative part`);
      }

      if (previous) {
        for (const [id, value] of previous.series) {
          const next = now.series.get(id);
          assert.ok(next !== undefined, `${context}: series ${id} disappeared`);
          assert.ok(next >= value, `${context}: series ${id} went down from ${value} to ${next}`);
        }
        // Promoted now: what the previous scrape exported in `other` for its keys stays there.
        for (const command of now.labeled) {
          if (previous.labeled.has(command)) continue;
          for (const [key, exported] of previous.other) {
            if (commandOf(key) !== command) continue;
            assert.equal(
              now.other.get(key),
              exported,
              `${context}: promoted command ${command} keeps ${exported} in other for key ${key}`,
            );
          }
        }
      }
      previous = now;
    }
  }
});
