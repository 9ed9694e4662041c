/**
 * Ingest hot path: decoding a drained 1 MiB buffer of `connection` records into the columnar
 * store with the program's batch decoder (the shim's column writer, as the server runs it on the
 * ring itself), beside a walk that only reads each record's pid. Divide by the record count in each name
 * for the cost per event. Run: `deno bench --allow-all bench/`.
 *
 * @module
 */

import { batchDecoderOf } from "../src/programs/batch.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { hugePageBuffer } from "../src/ffi/shim.ts";
import { type ColumnMemory, type EventTable, Store } from "../src/store/mod.ts";
import { fixedClock } from "../src/programs/_testing.ts";
import { drainBuffer, layout, openConnectionObject, walk } from "./_fixture.ts";

const obj = openConnectionObject();
const at = layout(obj);
const buf = drainBuffer(at);
const clock = fixedClock(Date.now());
const N = buf.count;

function decoderInto(capacity: number, memory?: ColumnMemory) {
  const store = new Store(capacity, { memory });
  const table = store.table("connection", connection.columns) as EventTable<
    typeof connection.columns
  >;
  const decode = batchDecoderOf(connection, { obj, store, table, clock });
  const records = buf.bytes.subarray(0, buf.used);
  return () => decode(records);
}

let sink = 0;
Deno.bench(`walk only: read pid of ${N} records (the C reference's work)`, {
  group: "ingest",
  baseline: true,
}, () => {
  const pidAt = at.pid;
  sink += walk(buf.view, buf.bytes, buf.used, (view, _b, r) => {
    sink ^= view.getUint32(r + pidAt, true);
  });
});

// a store filling up, its columns in huge pages as the server's (main.ts), and in 4 KiB pages
const growing = decoderInto(1 << 24, hugePageBuffer);
const growingSmallPages = decoderInto(1 << 24);
let grown = 0;
Deno.bench(
  `decode ${N} records into a store (growing, up to 16M rows, huge pages)`,
  { group: "ingest" },
  () => {
    growing();
    grown += N;
  },
);
Deno.bench(
  `decode ${N} records into a store (growing, up to 16M rows, 4 KiB pages)`,
  { group: "ingest" },
  () => {
    growingSmallPages();
  },
);

const full = decoderInto(100_000);
for (let i = 0; i < 100_000 / N + 2; i++) full();
Deno.bench(
  `decode ${N} records into a full store (every insert evicts)`,
  { group: "ingest" },
  () => {
    full();
  },
);

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink, grown);
  obj.close();
});
