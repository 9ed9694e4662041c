import assert from "node:assert/strict";
import { EventTable } from "../store/mod.ts";
import { hugePageBuffer, RingWaiter } from "./shim.ts";

Deno.test("hugePageBuffer gives zeroed, writable memory that can back a table", () => {
  const bytes = 3 * 1024 * 1024 + 123; // not a whole number of huge pages
  const buffer = hugePageBuffer(bytes);
  assert.equal(buffer.byteLength, bytes);
  const all = new Uint8Array(buffer);
  assert.equal(all.findIndex((b) => b !== 0), -1);
  all[0] = 1;
  all[bytes - 1] = 2;
  assert.equal(all[0] + all[bytes - 1], 3);

  const table = new EventTable("t", { n: "u32" }, 5000, {
    memory: hugePageBuffer,
    initialRows: 16,
  });
  for (let i = 0; i < 5000; i++) {
    const s = table.append();
    table.cols.ts[s] = i;
    table.cols.pid[s] = i * 2;
    table.cols.n[s] = i * 3;
  }
  for (let i = 0; i < 5000; i += 499) {
    const s = table.slot(i);
    assert.deepEqual([table.cols.ts[s], table.cols.pid[s], table.cols.n[s]], [i, i * 2, i * 3]);
  }
});

Deno.test("RingWaiter: a wait ends at its timeout (none with -1), at once when kicked, and on close", async () => {
  const waiter = new RingWaiter();
  let t0 = performance.now();
  assert.equal(await waiter.wait(30), 0);
  assert.ok(performance.now() - t0 >= 25, "returned before its timeout");

  t0 = performance.now();
  const kicked = waiter.wait(10_000);
  waiter.kick();
  assert.equal(await kicked, 0);
  assert.ok(performance.now() - t0 < 5000, "a kick did not end the wait");

  const forever = waiter.wait(-1); // no timeout: only a kick ends it
  const raced = await Promise.race([
    forever,
    new Promise((r) => setTimeout(() => r("timer"), 100)),
  ]);
  assert.equal(raced, "timer");
  waiter.kick();
  assert.equal(await forever, 0);

  const first = waiter.wait(10_000);
  assert.throws(() => waiter.wait(10), /already pending/);
  waiter.kick();
  assert.equal(await first, 0);

  const pending = waiter.wait(10_000);
  t0 = performance.now();
  await waiter.close(); // kicks the pending wait and waits for it
  assert.equal(await pending, 0);
  assert.ok(performance.now() - t0 < 5000, "close did not end the wait");
  assert.equal(await waiter.wait(10), 0); // closed: returns at once
});
