import assert from "node:assert/strict";
import { type EventTable, Store } from "./mod.ts";

const SPEC = { n: "u32" } as const;

function add(store: Store, table: EventTable<typeof SPEC>, ts: number, n = 0): number {
  const s = store.append(table as unknown as EventTable);
  table.cols.ts[s] = ts;
  table.cols.n[s] = n;
  return s;
}

function tsOf(table: EventTable<typeof SPEC>): number[] {
  return Array.from({ length: table.length }, (_, i) => table.cols.ts[table.slot(i)]);
}

Deno.test("Store rejects a capacity that is not a positive integer", () => {
  assert.throws(() => new Store(0), RangeError);
  assert.throws(() => new Store(-5), RangeError);
  assert.throws(() => new Store(1.5), RangeError);
  assert.throws(() => new Store(Number.NaN), RangeError);
  assert.equal(new Store(1).capacity, 1);
});

Deno.test("Store.table creates a table once per name", () => {
  const store = new Store(10);
  const a = store.table("a", SPEC);
  assert.equal(store.table("a", SPEC), a);
  assert.equal(store.get("a"), a as unknown as EventTable);
  assert.equal(store.get("b"), undefined);
  store.table("b", SPEC);
  assert.deepEqual(store.tables().map((t) => t.name), ["a", "b"]);
  assert.deepEqual(store.stats("a"), { stored: 0, evicted: 0 });
  assert.equal(store.lastEvictedTs("a"), -Infinity);
});

Deno.test("Store evicts the globally oldest event across two tables", () => {
  const store = new Store(4);
  const a = store.table("a", SPEC);
  const b = store.table("b", SPEC);
  add(store, a, 10);
  add(store, b, 20);
  add(store, a, 30);
  add(store, b, 40);
  assert.equal(store.size, 4);
  assert.equal(store.evicted(), 0);

  add(store, b, 50); // evicts a@10
  assert.deepEqual(tsOf(a), [30]);
  assert.deepEqual(tsOf(b), [20, 40, 50]);
  assert.equal(store.evicted("a"), 1);
  assert.equal(store.evicted("b"), 0);
  assert.equal(store.lastEvictedTs("a"), 10);

  add(store, a, 60); // evicts b@20
  assert.deepEqual(tsOf(a), [30, 60]);
  assert.deepEqual(tsOf(b), [40, 50]);
  assert.equal(store.evicted("b"), 1);
  assert.equal(store.lastEvictedTs("b"), 20);

  add(store, a, 70); // evicts a@30
  add(store, a, 80); // evicts b@40
  assert.deepEqual(tsOf(a), [60, 70, 80]);
  assert.deepEqual(tsOf(b), [50]);
  assert.equal(store.size, 4);
  assert.equal(store.evicted("a"), 2);
  assert.equal(store.evicted("b"), 2);
  assert.equal(store.evicted(), 4);
  assert.equal(store.lastEvictedTs("a"), 30);
  assert.equal(store.lastEvictedTs("b"), 40);
  assert.deepEqual(store.stats("a"), { stored: 3, evicted: 2 });
  assert.deepEqual(store.stats("b"), { stored: 1, evicted: 2 });
  assert.equal(store.evicted("nosuch"), 0);
});

Deno.test("Store evicts from one table when the other is empty", () => {
  const store = new Store(3);
  const a = store.table("a", SPEC);
  store.table("empty", SPEC);
  for (let ts = 1; ts <= 5; ts++) add(store, a, ts, ts);
  assert.deepEqual(tsOf(a), [3, 4, 5]);
  assert.deepEqual([0, 1, 2].map((i) => a.cols.n[a.slot(i)]), [3, 4, 5]);
  assert.equal(store.evicted("a"), 2);
  assert.equal(store.evicted("empty"), 0);
  assert.equal(store.size, 3);
});

Deno.test("Store keeps the capacity over many events and keeps the newest", () => {
  const store = new Store(1500);
  const a = store.table("a", SPEC);
  const b = store.table("b", SPEC);
  for (let i = 0; i < 5000; i++) add(store, i % 3 === 0 ? b : a, i, i);
  assert.equal(store.size, 1500);
  assert.equal(a.length + b.length, 1500);
  assert.equal(store.evicted(), 3500);
  const all = [...tsOf(a), ...tsOf(b)].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: 1500 }, (_, i) => 3500 + i));
});

Deno.test("Store.dropNewest takes back the last row and frees its room", () => {
  const store = new Store(2);
  const a = store.table("a", SPEC);
  add(store, a, 1);
  add(store, a, 2);
  store.dropNewest(a as unknown as EventTable);
  assert.equal(store.size, 1);
  assert.deepEqual(tsOf(a), [1]);
  add(store, a, 3); // there is room again: nothing evicted
  assert.equal(store.evicted("a"), 0);
  assert.deepEqual(tsOf(a), [1, 3]);

  const empty = store.table("empty", SPEC);
  store.dropNewest(empty as unknown as EventTable);
  assert.equal(store.size, 2);
});

Deno.test("Store.reserve and commit in batches evict exactly as appending row by row", () => {
  // A seeded walk: three tables, batches of random size and table, ts rising with ties.
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const rows = new Store(37), batches = new Store(37);
  const names = ["a", "b", "c"];
  for (const name of names) {
    rows.table(name, SPEC);
    batches.table(name, SPEC);
  }
  let ts = 0;
  for (let step = 0; step < 400; step++) {
    const name = names[rand(3)];
    const want = 1 + rand(20);
    const r = rows.table(name, SPEC), b = batches.table(name, SPEC);
    let written = 0;
    while (written < want) {
      const room = batches.reserve(b as unknown as EventTable, want - written);
      assert.ok(room > 0);
      const slot = b.tailSlot;
      for (let i = 0; i < room; i++) {
        const t = ts + (written + i >> 1); // pairs of equal timestamps
        b.cols.ts[slot + i] = t;
        b.cols.n[slot + i] = step;
        add(rows, r, t, step);
      }
      batches.commit(b as unknown as EventTable, room);
      written += room;
    }
    ts += want;
    for (const n of names) {
      const x = rows.table(n, SPEC), y = batches.table(n, SPEC);
      assert.deepEqual(tsOf(y), tsOf(x), `table ${n} after step ${step}`);
      assert.equal(batches.evicted(n), rows.evicted(n));
      assert.equal(batches.lastEvictedTs(n), rows.lastEvictedTs(n));
    }
    assert.equal(batches.size, rows.size);
  }
  assert.ok(rows.evicted() > 300); // the walk did evict, from every table
  for (const n of names) assert.ok(rows.evicted(n) > 0);
});

Deno.test("Store.reserve counts what it evicted for rows a batch did not write", () => {
  const store = new Store(10);
  const t = store.table("a", SPEC);
  for (let i = 0; i < 10; i++) add(store, t, i);
  const room = store.reserve(t as unknown as EventTable, 4); // evicts 4 for 4 rows to come
  assert.equal(room, 4);
  t.cols.ts[t.tailSlot] = 10;
  store.commit(t as unknown as EventTable, 1); // only one came
  assert.deepEqual(tsOf(t), [4, 5, 6, 7, 8, 9, 10]);
  assert.equal(store.evicted("a"), 4);
  assert.equal(store.size, 7);
  assert.equal(t.appended, 11);
  // the rows left free are used before anything else is evicted
  assert.equal(store.reserve(t as unknown as EventTable, 3), 3);
  assert.equal(store.evicted("a"), 4);
  assert.throws(() => store.commit(t as unknown as EventTable, 4), RangeError);
});

Deno.test("Store.reserve on a full store evicts exactly the oldest, across interleaved tables", () => {
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 40; round++) {
    const store = new Store(2000);
    const tables = ["a", "b", "c"].map((name) => store.table(name, SPEC));
    let ts = 0;
    // fill, finely interleaved, with ties (the same ts in several tables) and runs
    const write = (count: number) => {
      for (let i = 0; i < count; i++) {
        if (rnd() < 0.7) ts += rnd() < 0.5 ? 1 : 0.25;
        add(store, tables[Math.floor(rnd() * (round % 4 === 0 ? 2 : 3))], ts);
      }
    };
    write(2000 + Math.floor(rnd() * 500));
    const table = tables[Math.floor(rnd() * 3)];
    const want = 64 + Math.floor(rnd() * 1500);
    const before = tables.map((t) => tsOf(t));
    const oldestFirst = before.flat().sort((x, y) => x - y);
    const evictedBefore = store.evicted();
    // as many as fit in one run of slots (up to the end of the table's ring)
    const rows = store.reserve(table as unknown as EventTable, want);
    assert.ok(rows > 0 && rows <= want);
    // every table lost its oldest rows; together exactly `rows`, none newer than any kept
    const evicted = tables.map((t, i) => before[i].slice(0, before[i].length - t.length));
    tables.forEach((t, i) => assert.deepEqual(tsOf(t), before[i].slice(evicted[i].length)));
    const gone = evicted.flat().sort((x, y) => x - y);
    assert.equal(gone.length, rows, `round ${round}`);
    assert.deepEqual(gone, oldestFirst.slice(0, rows), `round ${round}: the oldest went`);
    assert.equal(store.size + rows, store.capacity);
    assert.equal(store.evicted() - evictedBefore, rows);
  }
});
