import assert from "node:assert/strict";
import { EventTable, INITIAL_ROWS } from "./table.ts";

const SPEC = { value: "u32", signed: "i32", small: "u8", addr: "bytes16" } as const;

/** Appends a row whose every column derives from `n`. */
function appendRow(table: EventTable<typeof SPEC>, n: number): number {
  return writeRow(table, table.append(), n);
}

/** Writes the row of `n` at slot `s`. */
function writeRow(table: EventTable<typeof SPEC>, s: number, n: number): number {
  const c = table.cols;
  c.ts[s] = 1000 + n;
  c.pid[s] = n;
  c.comm[s] = n % 7;
  c.value[s] = n * 3;
  c.signed[s] = 1 - n;
  c.small[s] = n & 0xff;
  const addr = table.bytes16("addr", s);
  for (let i = 0; i < 16; i++) addr[i] = (n + i) & 0xff;
  return s;
}

/** Checks row `i` (oldest first) holds the values of `n`. */
function assertRow(table: EventTable<typeof SPEC>, i: number, n: number): void {
  const s = table.slot(i);
  const c = table.cols;
  assert.equal(c.ts[s], 1000 + n, `ts of row ${i}`);
  assert.equal(c.pid[s], n, `pid of row ${i}`);
  assert.equal(c.comm[s], n % 7, `comm of row ${i}`);
  assert.equal(c.value[s], n * 3, `value of row ${i}`);
  assert.equal(c.signed[s], 1 - n, `signed of row ${i}`);
  assert.equal(c.small[s], n & 0xff, `small of row ${i}`);
  const expected = Array.from({ length: 16 }, (_, k) => (n + k) & 0xff);
  assert.deepEqual([...table.bytes16("addr", s)], expected, `addr of row ${i}`);
}

Deno.test("EventTable has the base columns and room for min(maxRows, initialRows) rows", () => {
  const table = new EventTable("t", SPEC, 3000);
  assert.equal(table.maxRows, 3000);
  assert.deepEqual(Object.keys(table.cols).sort(), [
    "addr",
    "comm",
    "pid",
    "signed",
    "small",
    "ts",
    "value",
  ]);
  assert.equal(table.length, 0);
  assert.equal(table.oldestTs(), Infinity);
  // ts 8 + pid 4 + comm 4 + value 4 + signed 4 + small 1 + addr 16
  assert.equal(table.rowBytes, 41);
  assert.equal(table.allocatedBytes, 41 * 3000); // all rows at once (pages are mapped on use)
  const big = new EventTable("t", SPEC, 1_000_000);
  assert.equal(big.allocatedBytes, 41 * INITIAL_ROWS);
  assert.throws(() => new EventTable("t", SPEC, 0), RangeError);
});

Deno.test("EventTable moves to maxRows in its memory once, keeping every value", () => {
  const asked: number[] = [];
  const memory = (bytes: number) => (asked.push(bytes), new ArrayBuffer(bytes));
  const table = new EventTable("t", SPEC, 10_000, { memory, initialRows: 1024 });
  for (let n = 0; n < 1024; n++) appendRow(table, n);
  assert.deepEqual(asked, []); // the first rows are in ordinary memory
  const before = table.cols.ts;
  for (let n = 1024; n < 5000; n++) appendRow(table, n);
  assert.notEqual(table.cols.ts, before);
  assert.equal(asked.length, 1);
  assert.ok(asked[0] >= table.rowBytes * 10_000, `asked for ${asked[0]} bytes`);
  // every column is a view into that one block, 64-byte aligned
  for (const col of Object.values(table.cols)) {
    assert.equal(col.buffer.byteLength, asked[0]);
    assert.equal(col.byteOffset % 64, 0);
  }
  assert.equal(table.length, 5000);
  assert.equal(table.allocatedBytes, table.rowBytes * 10_000);
  for (let i = 0; i < 5000; i++) assertRow(table, i, i);
  assert.equal(table.oldestTs(), 1000);
});

Deno.test("EventTable grows across a wrap-around after evictions, in order", () => {
  const table = new EventTable("t", SPEC, 8192, { initialRows: 1024 });
  for (let n = 0; n < 1024; n++) appendRow(table, n);
  for (let k = 0; k < 300; k++) table.evictOldest();
  assert.equal(table.length, 724);
  assert.equal(table.oldestTs(), 1300);
  // the next 300 rows wrap to the start of the arrays, then the table must grow
  for (let n = 1024; n < 2500; n++) appendRow(table, n);
  assert.equal(table.length, 2500 - 300);
  for (let i = 0; i < table.length; i++) assertRow(table, i, 300 + i);
  assert.equal(table.oldestTs(), 1300);
});

Deno.test("EventTable.room moves to full size, then counts consecutive slots to the end", () => {
  const table = new EventTable("t", SPEC, 4096, { initialRows: 1024 });
  assert.equal(table.room(5000), 1024); // the initial rows, no more
  for (let n = 0; n < 1000; n++) appendRow(table, n);
  assert.equal(table.room(100), 24); // still the initial rows
  for (let n = 1000; n < 1024; n++) appendRow(table, n);
  const before = table.cols.ts;
  assert.equal(table.room(5000), 4096 - 1024); // moved to full size: up to the arrays' end
  assert.notEqual(table.cols.ts, before);
  for (let i = 0; i < 1024; i++) assertRow(table, i, i);
  // rows written from tailSlot and committed are rows like any other
  const s = table.tailSlot;
  for (let k = 0; k < 10; k++) writeRow(table, s + k, 1024 + k);
  table.commit(10);
  assert.equal(table.length, 1034);
  assert.equal(table.appended, 1034);
  for (let i = 0; i < 1034; i++) assertRow(table, i, i);
  table.evictOldestMany(34);
  assert.equal(table.evicted, 34);
  assert.equal(table.lastEvictedTs, 1000 + 33);
  assert.equal(table.oldestTs(), 1000 + 34);
  assert.throws(() => table.commit(5000), RangeError);
});

Deno.test("EventTable at maxRows evicts its oldest row on append", () => {
  const table = new EventTable("t", SPEC, 4);
  for (let n = 0; n < 10; n++) appendRow(table, n);
  assert.equal(table.length, 4);
  for (let i = 0; i < 4; i++) assertRow(table, i, 6 + i);
});

Deno.test("EventTable.dropNewest and evictOldest on an empty table do nothing", () => {
  const table = new EventTable("t", SPEC, 16);
  table.dropNewest();
  table.evictOldest();
  assert.equal(table.length, 0);
  appendRow(table, 1);
  appendRow(table, 2);
  table.dropNewest();
  assert.equal(table.length, 1);
  assertRow(table, 0, 1);
  appendRow(table, 3);
  assertRow(table, 1, 3);
});

Deno.test("EventTable.lowerBound and upperBound find the ts window", () => {
  const table = new EventTable("t", SPEC, 64);
  // ts: 10 20 20 20 30 40
  for (const ts of [10, 20, 20, 20, 30, 40]) {
    const s = table.append();
    table.cols.ts[s] = ts;
  }
  assert.equal(table.lowerBound(0), 0);
  assert.equal(table.lowerBound(10), 0);
  assert.equal(table.lowerBound(11), 1);
  assert.equal(table.lowerBound(20), 1);
  assert.equal(table.upperBound(20), 4);
  assert.equal(table.lowerBound(25), 4);
  assert.equal(table.upperBound(25), 4);
  assert.equal(table.upperBound(40), 6);
  assert.equal(table.lowerBound(41), 6);
  assert.equal(table.upperBound(9), 0);
});

Deno.test("EventTable bounds are right after the ring wraps", () => {
  const table = new EventTable("t", SPEC, 8); // never grows past 8 rows
  for (let n = 0; n < 13; n++) {
    const s = table.append();
    table.cols.ts[s] = n * 10;
  }
  // rows hold ts 50..120, with the head in the middle of the arrays
  assert.equal(table.length, 8);
  assert.equal(table.oldestTs(), 50);
  assert.equal(table.lowerBound(50), 0);
  assert.equal(table.lowerBound(85), 4);
  assert.equal(table.upperBound(90), 5);
  assert.equal(table.upperBound(120), 8);
  assert.equal(table.lowerBound(0), 0);
  assert.equal(table.cols.ts[table.slot(table.lowerBound(85))], 90);
});

Deno.test("EventTable bounds on an empty table are 0", () => {
  const table = new EventTable("t", SPEC, 8);
  assert.equal(table.lowerBound(5), 0);
  assert.equal(table.upperBound(5), 0);
});

Deno.test("EventTable bytes8 columns survive growth across a wrap-around", () => {
  const table = new EventTable("t", { id: "bytes8" }, 4096, { initialRows: 1024 });
  const fill = (n: number) => {
    const s = table.append();
    table.cols.ts[s] = n;
    table.bytes8("id", s).set(Array.from({ length: 8 }, (_, k) => (n * 3 + k) & 0xff));
  };
  for (let n = 0; n < 1024; n++) fill(n);
  for (let k = 0; k < 100; k++) table.evictOldest();
  for (let n = 1024; n < 2100; n++) fill(n);
  assert.equal(table.length, 2000);
  for (let i = 0; i < table.length; i++) {
    const n = 100 + i;
    const s = table.slot(i);
    assert.equal(table.cols.ts[s], n);
    assert.deepEqual(
      [...table.bytes8("id", s)],
      Array.from({ length: 8 }, (_, k) => (n * 3 + k) & 0xff),
      `id of row ${i}`,
    );
  }
});
