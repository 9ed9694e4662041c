/**
 * Ingest hot path: walking a drained 1 MiB buffer of `connection` records and decoding them into
 * the columnar store, as ProgramManager.#drainSlot does. Divide by the record count in each name
 * for the cost per event. Run: `deno bench --allow-all bench/`.
 *
 * @module
 */

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
  return connection.decoder({ obj, store, table, clock });
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
    walk(buf.view, buf.bytes, buf.used, growing);
    grown += N;
  },
);
Deno.bench(
  `decode ${N} records into a store (growing, up to 16M rows, 4 KiB pages)`,
  { group: "ingest" },
  () => {
    walk(buf.view, buf.bytes, buf.used, growingSmallPages);
  },
);

const full = decoderInto(100_000);
walk(buf.view, buf.bytes, buf.used, full);
for (let i = 0; i < 100_000 / N + 1; i++) walk(buf.view, buf.bytes, buf.used, full);
Deno.bench(
  `decode ${N} records into a full store (every insert evicts)`,
  { group: "ingest" },
  () => {
    walk(buf.view, buf.bytes, buf.used, full);
  },
);

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink, grown);
  obj.close();
});
