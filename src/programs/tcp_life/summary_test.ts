/**
 * The tcp_life summary against the scan it replaced (kept here as the oracle: a string per row,
 * Maps by name, a sort per group) on random tables, whole and in slices.
 */

import assert from "node:assert/strict";
import { attributionCounts } from "../../cgroup/mod.ts";
import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import {
  bump,
  forEachRow,
  quantile,
  roundMicros,
  sortedCounts,
  type SummaryQuery,
} from "../query.ts";
import { random } from "../_testing.ts";
import { columns } from "./mod.ts";
import { OUTCOMES } from "./schema.ts";
import { summarize, summarizeSliced } from "./summary.ts";

type Table = EventTable<typeof columns>;

interface GroupAcc {
  connections: number;
  bytes_sent: number;
  bytes_received: number;
  retransmits: number;
  segments_out: number;
  durations: number[];
  outcomes: Map<string, number>;
}

function newGroup(): GroupAcc {
  return {
    connections: 0,
    bytes_sent: 0,
    bytes_received: 0,
    retransmits: 0,
    segments_out: 0,
    durations: [],
    outcomes: new Map(),
  };
}

function finish(g: GroupAcc) {
  const sorted = Float64Array.from(g.durations).sort();
  return {
    connections: g.connections,
    bytes_sent: g.bytes_sent,
    bytes_received: g.bytes_received,
    retransmits: g.retransmits,
    segments_out: g.segments_out,
    retransmit_rate: g.segments_out ? g.retransmits / g.segments_out : null,
    duration_ms: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
    },
    by_outcome: sortedCounts(g.outcomes),
  };
}

function remoteOf(table: Table, s: number): string {
  const bytes = table.bytes16("daddr", s);
  const ip = table.cols.family[s] === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
  return joinHostPort(ip, table.cols.dport[s]);
}

/** The summary as a scan building a string per row made it. */
function oracle(table: Table, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const all = newGroup();
  const byRemote = new Map<string, GroupAcc>();
  const byProcess = new Map<string, GroupAcc & { pid: number; command: string }>();
  const byAttr = new Map<number, number>();
  forEachRow(table as unknown as EventTable, store, query, (s) => {
    byAttr.set(c.attr[s], (byAttr.get(c.attr[s]) ?? 0) + 1);
    const remote = remoteOf(table, s);
    const pkey = `${c.pid[s]} ${c.comm[s]}`;
    let r = byRemote.get(remote);
    if (!r) byRemote.set(remote, r = newGroup());
    let p = byProcess.get(pkey);
    if (!p) {
      byProcess.set(
        pkey,
        p = { ...newGroup(), pid: c.pid[s], command: store.strings.get(c.comm[s]) },
      );
    }
    const outcome = OUTCOMES[c.outcome[s]];
    const duration = roundMicros(c.ts[s] - c.start[s]);
    for (const g of [all, r, p]) {
      g.connections++;
      g.bytes_sent += c.bytes_sent[s];
      g.bytes_received += c.bytes_received[s];
      g.retransmits += c.retrans[s];
      g.segments_out += c.segs_out[s];
      if (!Number.isNaN(duration)) g.durations.push(duration);
      bump(g.outcomes, outcome);
    }
  });
  const top = <T extends GroupAcc>(m: Map<string, T>) =>
    [...m].sort((a, b) => b[1].connections - a[1].connections).slice(0, 20);
  return {
    ...finish(all),
    by_remote: top(byRemote).map(([remote, g]) => ({ remote, ...finish(g) })),
    by_process: top(byProcess).map(([, g]) => ({ pid: g.pid, command: g.command, ...finish(g) })),
    ...attributionCounts(store, byAttr),
  };
}

const T0 = 1_795_000_000_000;

/**
 * Appends `n` rows closing 1 ms apart from `t0`: bursts from a few processes to a few remotes
 * (IPv4 and IPv6), a fat tail of one-off remotes (an inbound client's ports), unknown starts,
 * every outcome, durations rounding to 0 and below.
 */
function fill(store: Store, table: Table, n: number, { seed = 1, t0 = T0 } = {}) {
  const rnd = random(seed);
  const comms = ["curl", "psql", "nginx", "python3"].map((c) => store.strings.intern(c));
  let pid = 100, comm = comms[0], remote = 0;
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.1) pid = 100 + Math.floor(rnd() * 6), comm = comms[pid % comms.length];
    if (rnd() < 0.2) remote = Math.floor(rnd() * 8);
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    const ts = t0 + i;
    c.ts[s] = ts;
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.attr[s] = 0;
    const oneOff = rnd() < 0.3; // a remote seen once or twice
    const v6 = !oneOff && remote >= 6;
    c.family[s] = v6 ? 6 : 4;
    const addr = table.bytes16("daddr", s);
    addr.fill(0);
    if (v6) addr.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, remote]);
    else addr.set([10, 0, oneOff ? 1 : 0, remote]);
    c.dport[s] = oneOff ? 30000 + Math.floor(rnd() * 2000) : 443 + remote;
    const r = rnd();
    c.start[s] = r < 0.1 ? NaN : r < 0.15 ? ts + 0.0004 : ts - Math.floor(rnd() * 5000) / 7;
    c.bytes_sent[s] = Math.floor(rnd() * 1e6);
    c.bytes_received[s] = Math.floor(rnd() * 1e5);
    c.retrans[s] = rnd() < 0.9 ? 0 : Math.floor(rnd() * 5);
    c.segs_out[s] = rnd() < 0.05 ? 0 : Math.floor(rnd() * 100);
    c.outcome[s] = Math.floor(rnd() * OUTCOMES.length);
  }
}

/** As the API prints it (where -0 is 0). */
function json(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function tableOf(capacity: number): { store: Store; table: Table } {
  const store = new Store(capacity);
  return { store, table: store.table("tcp_life", columns) };
}

Deno.test("tcp_life summary: the same answer as the row-by-row scan, with and without filters", () => {
  for (const seed of [1, 2, 3]) {
    const { store, table } = tableOf(20_000);
    fill(store, table, 30_000, { seed }); // wrapped: the window's rows lie in two slot ranges
    const window = { since: T0 + 12_345, until: T0 + 28_000 };
    const queries: SummaryQuery[] = [
      window,
      { since: T0, until: T0 + 40_000 },
      { ...window, pid: 103 },
      { ...window, command: "psql" },
      { ...window, command: "nosuch" },
      { ...window, match: (s) => table.cols.dport[s] === 445 },
      { since: T0 + 50_000, until: T0 + 60_000 }, // nothing in it
    ];
    for (const query of queries) {
      assert.deepEqual(
        json(summarize(table, query, store)),
        json(oracle(table, query, store)),
        `seed ${seed}`,
      );
    }
  }
});

Deno.test("tcp_life summary: in slices, the same answer; rows appended meanwhile are not read", async () => {
  const { store, table } = tableOf(400_000);
  fill(store, table, 150_000, { seed: 7 });
  const query = { since: T0 + 1000, until: T0 + 149_000 };
  const expected = oracle(table, query, store);
  let yields = 0;
  const slicer = {
    due: () => true,
    next: () => {
      yields++;
      // more connections close meanwhile, inside the window's time and after it
      fill(store, table, 1000, { seed: 100 + yields, t0: T0 + 149_000 });
      return Promise.resolve();
    },
  };
  assert.deepEqual(json(await summarizeSliced(table, query, store, slicer)), json(expected));
  assert.ok(yields >= 2, `it yielded ${yields} times`);
});

Deno.test("tcp_life summary: in slices, rows evicted meanwhile are left out", async () => {
  const { store, table } = tableOf(100_000);
  fill(store, table, 100_000, { seed: 9 });
  const query = { since: T0, until: T0 + 100_000 };
  let yields = 0;
  const slicer = {
    due: () => true,
    next: () => {
      // after the first slice (65536 rows read), 70000 newer rows evict the 70000 oldest
      if (yields++ === 0) fill(store, table, 70_000, { seed: 50, t0: T0 + 200_000 });
      return Promise.resolve();
    },
  };
  const got = await summarizeSliced(table, query, store, slicer);
  const rest = oracle(table, { since: T0 + 70_000, until: T0 + 100_000 }, store);
  assert.equal(rest.connections, 30_000);
  assert.equal(got.connections, 65_536 + 30_000, "the rows read, and those still held after");
});
