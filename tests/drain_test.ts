/**
 * How events leave the kernel's ring: the BPF side wakes the server only when a ring holds a
 * half of its size; fewer events wait for the drain interval or for a query, which drains
 * first. The manager runs in this process with the real connection program.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ProgramManager } from "../src/programs/manager.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { Store } from "../src/store/mod.ts";
import { canRunPrivileged, privileged, pythonConnects, waitFor } from "./_server.ts";

/** Rows of `pid` in the store's connection table. */
function storedOf(store: Store, pid: number): number {
  const table = store.get("connection");
  let n = 0;
  for (let i = 0; table && i < table.length; i++) if (table.cols.pid[table.slot(i)] === pid) n++;
  return n;
}

/** A child making `n` UDP connect() calls on loopback (no packet is sent). */
function udpConnects(n: number) {
  return pythonConnects(Array.from({ length: n }, () => ({
    op: "udp" as const,
    host: "127.0.0.1",
    port: 9,
  })));
}

Deno.test({
  name: privileged("drain: a half-full ring wakes the server; fewer events wait for a query"),
  ignore: !canRunPrivileged,
  async fn() {
    const ringSize = 64 * 1024; // half: 32 KiB, about 315 records of a UDP connect
    const store = new Store(10_000);
    const manager = new ProgramManager([connection], store, {
      ringSize,
      drainIntervalMs: 60_000, // only a wake-up or a query can drain during the test
      selfPid: Deno.pid,
    });
    try {
      manager.start("connection");
      manager.startDraining();

      // a few events: they stay in the ring (no wake-up per event) until a query drains it
      const few = await udpConnects(5);
      assert.deepEqual(few.errnos, [0, 0, 0, 0, 0]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(storedOf(store, few.pid), 0, "events below the threshold were drained");
      manager.drain();
      assert.equal(storedOf(store, few.pid), 5);

      // past half the ring (during the fourth 100) the BPF side forces a wake-up: the loop
      // drains by itself; the last 200 stay in the ring again (less than half)
      const many: { pid: number }[] = [];
      for (let i = 0; i < 6; i++) many.push(await udpConnects(100));
      const count = () => many.reduce((sum, child) => sum + storedOf(store, child.pid), 0);
      const woken = await waitFor("the woken drain loop to store the events", () => {
        const n = count();
        return n >= 300 ? n : undefined;
      }, { timeoutMs: 5000 });
      assert.ok(woken < 600, `all ${woken} events drained without a query`);
      manager.drain();
      assert.equal(count(), 600);
      assert.equal(manager.status("connection").lost, 0);
    } finally {
      await manager.close();
    }
  },
});
