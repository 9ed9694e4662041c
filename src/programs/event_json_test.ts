import assert from "node:assert/strict";
import type { z } from "@hono/zod-openapi";
import { setKernelAddressesExposed } from "../kernel/addresses.ts";
import { resultName } from "../net/names.ts";
import { EventTable, Store } from "../store/mod.ts";
import { variedStore } from "./_event_rows_testing.ts";
import { connection } from "./connection/mod.ts";
import { eventWriter } from "./event_json.ts";
import { JsonBytes } from "./json_bytes.ts";
import { programs } from "./mod.ts";
import type { Program } from "./program.ts";
import { isoMicros } from "./query.ts";
import { tcpLife } from "./tcp_life/mod.ts";

const decoder = new TextDecoder();

function textOf(out: JsonBytes): string {
  return out.take().map((c) => decoder.decode(c)).join("");
}

/** The rows of a table, newest first (as a list has them). */
function newestFirst(table: EventTable): number[] {
  return Array.from({ length: table.length }, (_, i) => table.slot(table.length - 1 - i));
}

/** Each event's text from a writer, one list of them all (so that kept texts are used). */
function written(program: Program, table: EventTable, store: Store, check: boolean): string[] {
  const writer = eventWriter(program, table, store, { check });
  const out = new JsonBytes();
  return newestFirst(table).map((slot) => {
    writer.write(slot, out);
    return textOf(out);
  });
}

for (const exposed of [false, true]) {
  Deno.test(
    `every program's writer writes JSON.stringify(toJson) of every row (kernel addresses ${
      exposed ? "shown" : "hidden"
    })`,
    () => {
      setKernelAddressesExposed(exposed);
      try {
        const store = variedStore();
        for (const program of programs.values()) {
          const table = store.get(program.name)!;
          const want = newestFirst(table).map((s) =>
            JSON.stringify(program.toJson(table, s, store))
          );
          assert.ok(want.length >= 600, program.name);
          // with check, every text kept is compared with the text made fresh as it is used
          for (const check of [true, false]) {
            const got = written(program, table, store, check);
            for (let i = 0; i < want.length; i++) {
              assert.equal(got[i], want[i], `${program.name} row ${i} (check ${check})`);
            }
          }
        }
      } finally {
        setKernelAddressesExposed(false);
      }
    },
  );
}

Deno.test("every program's events have the keys of its schema, in its order", () => {
  const store = variedStore(60);
  for (const program of programs.values()) {
    const shape = Object.keys((program.eventSchema as z.ZodObject).shape);
    const table = store.get(program.name)!;
    for (const s of newestFirst(table)) {
      const keys = Object.keys(program.toJson(table, s, store));
      // keys left out (packet_drop's location, unless shown) keep the others' order
      assert.deepEqual(keys, shape.filter((k) => keys.includes(k)), program.name);
      assert.deepEqual(
        shape.filter((k) => !keys.includes(k)),
        program.name === "packet_drop" ? ["location"] : [],
      );
    }
  }
});

Deno.test("a writer follows a table that moves its columns in the middle of a list", () => {
  const store = new Store(1000);
  const table = new EventTable("connection", connection.columns, 1000, { initialRows: 8 });
  const add = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = table.append();
      const c = table.cols as unknown as Record<string, { [i: number]: number }>;
      const k = table.appended;
      c.ts[s] = 1795576846797.5 + k;
      c.pid[s] = 100 + (k % 3);
      c.comm[s] = store.strings.intern(`c${k % 2}`);
      c.family[s] = 2;
      c.sock_type[s] = 1;
      c.protocol[s] = 6;
      c.port[s] = 443;
      c.ret[s] = k % 2 ? 0 : -111;
      table.bytes16("addr", s).set([10, 0, 0, k % 4]);
    }
  };
  const program = connection as unknown as Program;
  const t = table as unknown as EventTable;
  const writer = eventWriter(program, t, store, { check: true });
  const out = new JsonBytes();
  add(6);
  const before = table.cols;
  for (let i = 0; i < 6; i++) {
    writer.write(table.slot(i), out);
    assert.equal(textOf(out), JSON.stringify(program.toJson(t, table.slot(i), store)));
  }
  add(100); // beyond the 8 rows it began with: the columns move
  assert.notEqual(table.cols, before);
  for (let i = 0; i < table.length; i++) {
    writer.write(table.slot(i), out);
    assert.equal(textOf(out), JSON.stringify(program.toJson(t, table.slot(i), store)));
  }
});

/** The connect() event of a tcp_life row as tcp_life found it before its index: a scan. */
function connectByScan(life: EventTable, s: number, store: Store) {
  const c = life.cols;
  const start = c.start[s];
  const connections = store.get("connection");
  if (!connections || Number.isNaN(start) || c.direction[s] !== 1) return null;
  const cc = connections.cols;
  const lo = c.sock_lo[s], hi = c.sock_hi[s], pid = c.pid[s];
  const first = connections.lowerBound(start - 5);
  for (let i = first, n = 0; i < connections.length && n < 5000; i++, n++) {
    const row = connections.slot(i);
    if (cc.ts[row] > start + 180_000) break;
    if (cc.sock_lo[row] === lo && cc.sock_hi[row] === hi && cc.pid[row] === pid) {
      return {
        result: resultName(cc.ret[row]),
        latency_ns: cc.latency[row],
        wall_time: isoMicros(cc.ts[row]),
      };
    }
  }
  return null;
}

Deno.test("tcp_life finds the connect() of each connection as a scan of the calls does", () => {
  // a ring that has wrapped, times not always in order, a socket connected twice, matches
  // beyond 5000 calls and beyond 180 s, starts before every call
  const store = new Store(40_000);
  const conn = store.table("connection", connection.columns) as unknown as EventTable;
  const life = store.table("tcp_life", tcpLife.columns) as unknown as EventTable;
  const t0 = 1795576846797.5;
  let seed = 3;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const sockets: { lo: number; ts: number; pid: number }[] = [];
  for (let i = 0; i < 45_000; i++) {
    const s = store.append(conn);
    const c = conn.cols as unknown as Record<string, { [i: number]: number }>;
    const late = i === 30_000 || i === 41_000; // out of order by far more than 180 s
    c.ts[s] = late ? t0 + i + 500_000 : t0 + i * 0.5 - (i % 7 === 3 ? 0.3 : 0);
    c.pid[s] = 1 + (i % 5);
    c.sock_lo[s] = i % 997 === 0 ? 7 : (i * 64) >>> 0; // socket 7: connected again and again
    c.sock_hi[s] = 0xffff8880;
    c.ret[s] = i % 2 ? -115 : 0;
    c.latency[s] = 1000 + i;
    sockets.push({ lo: c.sock_lo[s], ts: c.ts[s], pid: c.pid[s] });
    if (i % 20 === 0 && i > 30_000) {
      const l = store.append(life);
      const d = life.cols as unknown as Record<string, { [i: number]: number }>;
      const target = sockets[Math.floor(random() * sockets.length)];
      d.ts[l] = t0 + i * 0.5 + 1;
      d.start[l] = random() < 0.1 ? NaN : target.ts - random() * (random() < 0.2 ? 400_000 : 3);
      d.direction[l] = random() < 0.9 ? 1 : 2;
      d.pid[l] = random() < 0.9 ? target.pid : 99;
      d.sock_lo[l] = target.lo;
      d.sock_hi[l] = 0xffff8880;
      d.family[l] = 4;
    }
  }
  // connections that began just before a call made far out of order: the scan stops there
  for (const late of [30_000, 41_000]) {
    for (const [target, start] of [[late, late], [late + 3, late + 3], [late + 2, late - 2]]) {
      const l = store.append(life);
      const d = life.cols as unknown as Record<string, { [i: number]: number }>;
      d.ts[l] = t0 + 45_000 * 0.5 + target;
      d.start[l] = t0 + start * 0.5 - 1;
      d.direction[l] = 1;
      d.pid[l] = sockets[target].pid;
      d.sock_lo[l] = sockets[target].lo;
      d.sock_hi[l] = 0xffff8880;
      d.family[l] = 4;
    }
  }
  assert.ok(conn.slot(0) !== 0, "the ring has wrapped");
  const program = tcpLife as unknown as Program;
  const rows = newestFirst(life);
  assert.ok(rows.length > 500);
  const want = rows.map((s) => connectByScan(life, s, store));
  assert.ok(want.filter((w) => w !== null).length > 100, "some connect() found");
  assert.ok(want.filter((w) => w === null).length > 30, "some not");
  // a list's toJson and writer search with the index (after 16 searches), one event alone
  // scans: oldest first too, so that the index answers for the rows appended last
  const got = rows.map((s) => program.toJson(life, s, store).connect);
  assert.deepEqual(got, want);
  const oldestFirst = [...rows].reverse().map((s) => program.toJson(life, s, store).connect);
  assert.deepEqual(oldestFirst, [...want].reverse());
  const texts = written(program, life, store, false);
  assert.deepEqual(texts.map((t) => JSON.parse(t).connect), want);
});

Deno.test("tcp_life's connect() search stops 180 s after the connection's start", () => {
  // calls in order, 100 ms apart: 5000 of them span more than 180 s
  const store = new Store(20_000);
  const conn = store.table("connection", connection.columns) as unknown as EventTable;
  const life = store.table("tcp_life", tcpLife.columns) as unknown as EventTable;
  const t0 = 1795576846797.5;
  for (let i = 0; i < 10_000; i++) {
    const s = store.append(conn);
    const c = conn.cols as unknown as Record<string, { [i: number]: number }>;
    c.ts[s] = t0 + 100 * i;
    c.pid[s] = 7;
    c.sock_lo[s] = i;
    c.sock_hi[s] = 1;
  }
  for (let k = 0; k < 400; k++) {
    const target = 100 + 20 * k;
    const l = store.append(life);
    const d = life.cols as unknown as Record<string, { [i: number]: number }>;
    d.ts[l] = t0 + 1_000_000 + k;
    // 0.5 s to 360 s before the call
    d.start[l] = t0 + 100 * target - 500 * (1 + (k % 720));
    d.direction[l] = 1;
    d.pid[l] = 7;
    d.sock_lo[l] = target;
    d.sock_hi[l] = 1;
    d.family[l] = 4;
  }
  const program = tcpLife as unknown as Program;
  const rows = newestFirst(life);
  const want = rows.map((s) => connectByScan(life, s, store));
  assert.ok(want.some((w) => w === null) && want.some((w) => w !== null));
  assert.deepEqual(rows.map((s) => program.toJson(life, s, store).connect), want);
});
