import assert from "node:assert/strict";
import { readAsset } from "../assets.ts";
import { BpfObject } from "../ffi/shim.ts";
import { Store } from "../store/mod.ts";
import { clock } from "./_testing.ts";
import { planWriter } from "./copy_plan.ts";
import { packetDrop } from "./packet_drop/mod.ts";

function ctx() {
  const obj = new BpfObject(readAsset("bpf/packet_drop.bpf.o"), "packet_drop");
  const store = new Store(16);
  const table = store.table("packet_drop", packetDrop.columns);
  return { obj, store, table, clock };
}

Deno.test("planWriter refuses a step whose column is of another kind than it writes", () => {
  const c = ctx();
  using _obj = c.obj;
  // the C side would write 4 bytes a row into a column of one
  assert.throws(
    () =>
      planWriter(c, {
        struct: "packet_drop_event",
        steps: [{ column: "l4", kind: "u32", field: "len" }],
      }),
    /u32 writes a u32 column, l4 is u8/,
  );
  assert.throws(
    () =>
      planWriter(c, {
        struct: "packet_drop_event",
        steps: [{ column: "nosuch", kind: "u8", field: "l4_protocol" }],
      }),
    /there is no column nosuch/,
  );
});

Deno.test("planWriter refuses a field of another size than its step reads, unless a part is asked for", () => {
  const c = ctx();
  using _obj = c.obj;
  assert.throws(
    () =>
      planWriter(c, {
        struct: "packet_drop_event",
        steps: [{ column: "len", kind: "u32", field: "location" }],
      }),
    /packet_drop_event.location is 8 bytes in the BPF object: the copy plan reads 4/,
  );
  assert.throws(
    () =>
      planWriter(c, {
        struct: "packet_drop_event",
        steps: [{ column: "len", kind: "u32", field: "location", at: 6 }],
      }),
    /reads 4 at \+6/,
  );
  planWriter(c, {
    struct: "packet_drop_event",
    steps: [{ column: "len", kind: "u32", field: "location", at: 4 }],
  });
});
