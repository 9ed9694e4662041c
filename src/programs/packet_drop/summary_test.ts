/**
 * The packet_drop summary against the scan it replaced (kept here as the oracle: strings per
 * row, Maps by name) on random tables, whole and in slices.
 */

import assert from "node:assert/strict";
import { attributionCounts } from "../../cgroup/mod.ts";
import { kernelAddress } from "../../kernel/addresses.ts";
import { kernelSymbols } from "../../kernel/kallsyms.ts";
import { etherTypeName } from "../../net/ethernet.ts";
import { AF_INET, AF_INET6, protocolName } from "../../net/names.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import { bump, forEachRow, sortedCounts, type SummaryQuery } from "../query.ts";
import { random } from "../_testing.ts";
import { columns } from "./mod.ts";
import { kernelDropReasons } from "./reasons.ts";
import { BlockCache } from "../blocks.ts";
import {
  DROP_KEY,
  type Pass,
  summarize,
  summarizeSliced,
  summarizeWith,
  UNKNOWN_LOCATION,
} from "./summary.ts";

type Table = EventTable<typeof columns>;

/** The summary as the scan building strings per row made it. */
function oracle(table: Table, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const reasons = kernelDropReasons();
  const symbols = kernelSymbols();
  const byReason = new Map<string, number>();
  const byLocation = new Map<string, number>();
  const byProtocol = new Map<string, number>();
  const byL4 = new Map<string, number>();
  const byInterface = new Map<string, number>();
  const byOwner = new Map<string, { pid: number; command: string; count: number }>();
  let unattributed = 0;
  const filtered = query.pid !== undefined || query.command !== undefined ||
    (query.match ?? null) !== null;
  const byAttr = new Map<number, number>();
  const events = forEachRow(table as unknown as EventTable, store, query, (s) => {
    byAttr.set(c.attr[s], (byAttr.get(c.attr[s]) ?? 0) + 1);
    if (filtered) {
      bump(byReason, reasons.label(c.reason[s]));
      const loc = (BigInt(c.loc_hi[s]) << 32n) | BigInt(c.loc_lo[s]);
      bump(byLocation, symbols.resolve(loc) ?? kernelAddress(loc) ?? UNKNOWN_LOCATION);
    }
    bump(byProtocol, etherTypeName(c.protocol[s]));
    if (c.ipver[s]) {
      bump(byL4, protocolName(c.ipver[s] === 4 ? AF_INET : AF_INET6, c.l4[s], 1) ?? "?");
    }
    bump(byInterface, store.strings.get(c.ifname[s]) || "none");
    if (!c.has_owner[s]) {
      unattributed++;
      return;
    }
    const key = `${c.pid[s]} ${c.comm[s]}`;
    const entry = byOwner.get(key) ??
      { pid: c.pid[s], command: store.strings.get(c.comm[s]), count: 0 };
    entry.count++;
    byOwner.set(key, entry);
  });
  let total = events;
  if (!filtered) {
    total = 0;
    const counted = store.counters("packet_drop").sumBetween(query.since, query.until, DROP_KEY);
    for (const [key, n] of counted) {
      const [, reason, loc] = key.split(" ");
      const addr = BigInt("0x" + loc);
      bump(byReason, reasons.label(Number(reason)), n);
      bump(byLocation, symbols.resolve(addr) ?? kernelAddress(addr) ?? UNKNOWN_LOCATION, n);
      total += n;
    }
  }
  return {
    total_drops: total,
    counts_source: filtered ? "events" as const : "kernel" as const,
    events_in_window: events,
    by_reason: sortedCounts(byReason),
    by_location: sortedCounts(byLocation),
    by_protocol: sortedCounts(byProtocol),
    by_l4_protocol: sortedCounts(byL4),
    by_interface: sortedCounts(byInterface),
    by_owner: [...byOwner.values()].sort((a, b) => b.count - a.count).slice(0, 50),
    unattributed,
    ...attributionCounts(store, byAttr),
  };
}

const T0 = 1_795_000_000_000;

/** Appends `n` drops 1 ms apart from `t0`: floods and a mix of senders, reasons and places. */
function fill(store: Store, table: Table, n: number, { seed = 1, t0 = T0 } = {}) {
  const rnd = random(seed);
  const comms = ["curl", "nginx", "swapper/0", "dnsmasq"].map((c) => store.strings.intern(c));
  const ifnames = [0, store.strings.intern("lo"), store.strings.intern("eth0")];
  let pid = 100, reason = 2, loc = 0;
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.05) pid = Math.floor(rnd() * 60); // some owners 1 in 60 apart
    if (rnd() < 0.1) reason = [2, 3, 5, 77, 0xffffffff][Math.floor(rnd() * 5)];
    if (rnd() < 0.1) loc = Math.floor(rnd() * 4);
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    c.ts[s] = t0 + i;
    c.pid[s] = pid;
    c.comm[s] = comms[pid % comms.length];
    c.has_owner[s] = rnd() < 0.7 ? 1 : 0;
    c.attr[s] = 0;
    c.reason[s] = reason;
    c.loc_lo[s] = 0x81000000 + loc * 0x40;
    c.loc_hi[s] = 0xffffffff;
    c.protocol[s] = [0x0800, 0x86dd, 0x0806, 0x88cc][Math.floor(rnd() * 4)];
    c.ipver[s] = c.protocol[s] === 0x0800 ? 4 : c.protocol[s] === 0x86dd ? 6 : 0;
    c.l4[s] = [6, 17, 1, 58, 132][Math.floor(rnd() * 5)];
    c.ifname[s] = ifnames[Math.floor(rnd() * 3)];
  }
}

function tableOf(capacity: number): { store: Store; table: Table } {
  const store = new Store(capacity);
  return { store, table: store.table("packet_drop", columns) };
}

Deno.test("packet_drop summary: the same answer as the row-by-row scan, with and without filters", () => {
  for (const seed of [1, 2, 3]) {
    const { store, table } = tableOf(20_000);
    fill(store, table, 30_000, { seed }); // wrapped: the window's rows lie in two slot ranges
    const window = { since: T0 + 12_345, until: T0 + 28_000 };
    const queries: SummaryQuery[] = [
      window,
      { since: T0, until: T0 + 40_000 },
      { ...window, pid: 42 },
      { ...window, command: "nginx" },
      { ...window, command: "nosuch" },
      { ...window, match: (s) => table.cols.l4[s] === 17 },
      { since: T0 + 50_000, until: T0 + 60_000 },
    ];
    for (const query of queries) {
      assert.deepEqual(summarize(table, query, store), oracle(table, query, store), `seed ${seed}`);
    }
  }
});

Deno.test("packet_drop summary: in slices, the same answer; rows appended meanwhile are not read", async () => {
  const { store, table } = tableOf(400_000);
  fill(store, table, 150_000, { seed: 7 });
  const query = { since: T0 + 1000, until: T0 + 149_000, pid: 7 };
  const expected = oracle(table, query, store);
  let yields = 0;
  const slicer = {
    due: () => true,
    next: () => {
      yields++;
      fill(store, table, 1000, { seed: 100 + yields, t0: T0 + 149_000 });
      return Promise.resolve();
    },
  };
  assert.deepEqual(await summarizeSliced(table, query, store, slicer), expected);
  assert.ok(yields >= 2, `it yielded ${yields} times`);
});

Deno.test("packet_drop summary: from block aggregates, the same answer as the scan, also as rows are evicted", () => {
  for (const seed of [4, 5]) {
    const { store, table } = tableOf(20_000);
    const cache = new BlockCache<Pass>(1024);
    fill(store, table, 30_000, { seed });
    const windows = [
      { since: T0 + 12_345, until: T0 + 28_000 }, // a head, 14 blocks and a tail
      { since: T0 + 10_240, until: T0 + 12_288 }, // two whole blocks, no ends
      { since: T0, until: T0 + 40_000 },
      { since: T0 + 20_001, until: T0 + 20_900 }, // inside one block
    ];
    for (const query of windows) {
      const expected = oracle(table, query, store);
      assert.deepEqual(summarizeWith(table, query, store, { cache }), expected, `seed ${seed}`);
      const computed = cache.computed;
      assert.deepEqual(summarizeWith(table, query, store, { cache }), expected, "cached");
      assert.equal(cache.computed, computed, "the second call computes no block");
    }
    assert.ok(cache.computed >= 14, `${cache.computed} blocks computed`);
    // 5000 more rows evict the oldest blocks; the window now ends in rows of a new block
    fill(store, table, 5000, { seed: seed + 10, t0: T0 + 30_000 });
    const query = { since: T0 + 12_000, until: T0 + 34_500 };
    assert.deepEqual(summarizeWith(table, query, store, { cache }), oracle(table, query, store));
    assert.ok([...cache.values()].length <= 20_000 / 1024, "evicted blocks are dropped");
  }
});

Deno.test("packet_drop summary: blocks computed one per slice give the same answer; rows appended meanwhile are not read", async () => {
  const { store, table } = tableOf(400_000);
  fill(store, table, 150_000, { seed: 8 });
  const cache = new BlockCache<Pass>(4096);
  const query = { since: T0 + 1000, until: T0 + 149_000 };
  const expected = oracle(table, query, store);
  let yields = 0;
  const slicer = {
    due: () => true,
    next: () => {
      yields++;
      fill(store, table, 1000, { seed: 200 + yields, t0: T0 + 149_000 });
      return Promise.resolve();
    },
  };
  assert.deepEqual(await summarizeSliced(table, query, store, slicer, { cache }), expected);
  assert.ok(yields >= 30, `it yielded ${yields} times`);
});

Deno.test("packet_drop summary: blocks evicted while it yields are left out, the rest still adds up", async () => {
  const { store, table } = tableOf(16_384);
  fill(store, table, 16_384, { seed: 9 });
  const cache = new BlockCache<Pass>(1024);
  const query = { since: T0, until: T0 + 16_384 };
  const whole = oracle(table, query, store).events_in_window;
  let yields = 0, calls = 0;
  const slicer = {
    due: () => ++calls % 4 === 0, // a yield after every 3 blocks
    next: () => {
      yields++; // each yield evicts eight blocks' rows: the next ones the pass was to read
      fill(store, table, 8192, { seed: 300 + yields, t0: T0 + 20_000 + 8192 * yields });
      return Promise.resolve();
    },
  };
  const got = await summarizeSliced(table, query, store, slicer, { cache });
  assert.ok(got.events_in_window < whole && got.events_in_window > 0, `${got.events_in_window}`);
  const byInterface = Object.values(got.by_interface).reduce((a, b) => a + b, 0);
  assert.equal(byInterface, got.events_in_window);
  const owned = got.by_owner.reduce((a, b) => a + b.count, 0);
  assert.ok(owned + got.unattributed <= got.events_in_window);
});
