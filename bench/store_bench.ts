/**
 * The store alone: appending rows and filling typed-array columns (or reserving rows in batches,
 * as a batch decoder does), interning command names, and the time-window binary search. Run: `deno bench --allow-all bench/`.
 *
 * @module
 */

import { connection } from "../src/programs/connection/mod.ts";
import { hugePageBuffer } from "../src/ffi/shim.ts";
import { type EventTable, Interner, Store } from "../src/store/mod.ts";

const ROWS = 1000;

function table(capacity: number) {
  const store = new Store(capacity, { memory: hugePageBuffer }); // as the server's (main.ts)
  const t = store.table("connection", connection.columns) as EventTable<typeof connection.columns>;
  return { store, t };
}

function insert(store: Store, t: EventTable<typeof connection.columns>, ts: number) {
  for (let i = 0; i < ROWS; i++) {
    const s = store.append(t as unknown as EventTable);
    const c = t.cols;
    c.ts[s] = ts + i;
    c.pid[s] = 1000 + (i & 63);
    c.comm[s] = 1;
    c.tid[s] = 1000;
    c.uid[s] = 0;
    c.cgroup[s] = 1;
    c.ret[s] = -111;
    c.latency[s] = 12345;
    c.family[s] = 2;
    c.sock_type[s] = 1;
    c.protocol[s] = 6;
    c.port[s] = 80;
    c.unix_path[s] = 0;
    c.sock_lo[s] = i;
    c.sock_hi[s] = 0xffff8880;
  }
}

const growing = table(1 << 24);
let tsGrowing = 0;
Deno.bench(`store.append + fill 16 columns, ${ROWS} rows (growing)`, { group: "insert" }, () => {
  insert(growing.store, growing.t, tsGrowing += ROWS);
});

const full = table(100_000);
let tsFull = 0;
for (let i = 0; i < 101; i++) insert(full.store, full.t, tsFull += ROWS);
Deno.bench(`store.append + fill 16 columns, ${ROWS} rows (full: each evicts)`, {
  group: "insert",
}, () => {
  insert(full.store, full.t, tsFull += ROWS);
});

// what a batch decoder does instead (the connection program's column writer fills the rows)
const batched = table(100_000);
let tsBatched = 0;
for (let i = 0; i < 101; i++) insert(batched.store, batched.t, tsBatched += ROWS);
Deno.bench(`store.reserve + commit of ${ROWS} rows (full: evicts ${ROWS} at once)`, {
  group: "insert",
}, () => {
  const t = batched.t as unknown as EventTable;
  let left = ROWS;
  while (left > 0) {
    const rows = batched.store.reserve(t, left);
    const s = t.tailSlot;
    for (let i = 0; i < rows; i++) t.cols.ts[s + i] = tsBatched + i;
    batched.store.commit(t, rows);
    left -= rows;
    tsBatched += rows;
  }
});

const interner = new Interner();
const comm = new Uint8Array(16);
comm.set(new TextEncoder().encode("systemd-resolve"));
interner.internBytes(comm, 0, 16);
Deno.bench(`Interner.internBytes of a known 15-byte comm ×${ROWS}`, { group: "intern" }, () => {
  for (let i = 0; i < ROWS; i++) interner.internBytes(comm, 0, 16);
});

const big = table(1 << 20);
insert(big.store, big.t, 0);
for (let k = 1; k < 1024; k++) insert(big.store, big.t, k * ROWS);
Deno.bench("EventTable.lowerBound on 1M rows ×1000", { group: "window" }, () => {
  let sink = 0;
  for (let i = 0; i < 1000; i++) sink += big.t.lowerBound(i * 997);
  if (sink < 0) console.log(sink);
});
