/**
 * How events leave the kernel's ring: the BPF side wakes the server only when a ring holds a
 * half of its size; fewer events wait for the drain interval or for a query, which drains
 * first. The manager runs in this process with the real connection program.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ProgramManager } from "../src/programs/manager.ts";
import { cgroup } from "../src/programs/cgroup/mod.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { tcpLife } from "../src/programs/tcp_life/mod.ts";
import { cgroup2Root } from "../src/kernel/cgroup.ts";
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

/** The values of column `key` (strings resolved) of the rows of `name` where `keep` holds. */
function columnOf(
  store: Store,
  name: string,
  key: string,
  keep: (cols: Record<string, ArrayLike<number>>, s: number) => boolean,
): (number | string)[] {
  const table = store.get(name);
  const out: (number | string)[] = [];
  if (!table) return out;
  const cols = table.cols as Record<string, ArrayLike<number>>;
  const strings = table.spec[key] === "str";
  for (let i = 0; i < table.length; i++) {
    const s = table.slot(i);
    if (keep(cols, s)) out.push(strings ? store.strings.get(cols[key][s]) : cols[key][s]);
  }
  return out;
}

Deno.test({
  name: privileged(
    "drain: records that wrap round a ring's end arrive whole, by every writer (connection's, the copy plan's, the copy)",
  ),
  ignore: !canRunPrivileged,
  async fn() {
    // 8 KiB rings: a connection record is 100-odd bytes, tcp_life's about 100, cgroup's about
    // 570, none a divisor of 8192, so records keep ending past the data's end and wrapping
    const store = new Store(100_000);
    const manager = new ProgramManager([cgroup, connection, tcpLife], store, {
      ringSize: 8192,
      drainIntervalMs: 5,
      selfPid: Deno.pid,
    });
    const root = cgroup2Root();
    assert.ok(root, "a cgroup v2 hierarchy is mounted");
    const made: string[] = [];
    try {
      for (const name of ["cgroup", "connection", "tcp_life"]) manager.start(name);
      manager.startDraining();
      const children: { pid: number; ports: number[] }[] = [];
      for (let round = 0; round < 8; round++) {
        // 20 refused connects (a connection and a tcp_life record each), to ports that say which
        const ports = Array.from({ length: 20 }, (_, i) => 20_000 + 20 * round + i);
        const child = await pythonConnects(
          ports.map((port) => ({ op: "tcp" as const, host: "127.0.0.1", port })),
        );
        assert.deepEqual(child.errnos, ports.map(() => 111), "every connect was refused");
        children.push({ pid: child.pid, ports });
        // two cgroups made and removed: four cgroup records
        for (let j = 0; j < 2; j++) {
          const dir = `${root}/ebpf-wrap-${Deno.pid}-${round}-${j}`;
          Deno.mkdirSync(dir);
          made.push(dir);
          Deno.removeSync(dir);
        }
        manager.drain();
      }
      manager.drain();
      for (const name of ["cgroup", "connection", "tcp_life"]) {
        const status = manager.status(name);
        assert.equal(status.lost, 0, `${name}: no record found its ring full`);
        assert.equal(status.decode_errors, 0, `${name}: every record decoded`);
      }
      for (const { pid, ports } of children) {
        const ofPid = (cols: Record<string, ArrayLike<number>>, s: number) => cols.pid[s] === pid;
        const connected = columnOf(store, "connection", "port", ofPid);
        assert.deepEqual(connected.sort(), ports, `pid ${pid}: each connect() once, its port`);
        assert.deepEqual(
          columnOf(store, "connection", "ret", ofPid),
          ports.map(() => -111),
          "each refused",
        );
        const closed = columnOf(store, "tcp_life", "dport", ofPid);
        assert.deepEqual(closed.sort(), ports, `pid ${pid}: each connection's end once, its port`);
      }
      const paths = columnOf(store, "cgroup", "path", () => true);
      for (const dir of made) {
        const path = dir.slice(root.length);
        assert.equal(
          paths.filter((p) => p === path).length,
          2,
          `${path}: made and removed, its whole path each time`,
        );
      }
    } finally {
      for (const dir of made) {
        try {
          Deno.removeSync(dir);
        } catch {
          // removed already
        }
      }
      await manager.close();
    }
  },
});
