/**
 * The tcp_life summary over 1M stored connections (1 ms apart, so a 60 s window holds 60,000
 * of them and `duration=3600` all): a workload's mix of a few remotes and processes, and one
 * where every connection has its own remote (an inbound server's clients). Run:
 * `deno bench --allow-all bench/tcp_life_summary_bench.ts`.
 *
 * @module
 */

import { Store } from "../src/store/mod.ts";
import type { EventTable } from "../src/store/mod.ts";
import { columns, tcpLife } from "../src/programs/tcp_life/mod.ts";

const EVENTS = 1_000_000;
const now = Date.now();

function filled(distinctRemotes: boolean) {
  const store = new Store(EVENTS);
  const table = store.table("tcp_life", columns);
  const comms = ["curl", "psql", "nginx", "python3"].map((c) => store.strings.intern(c));
  for (let i = 0; i < EVENTS; i++) {
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    c.ts[s] = now - EVENTS + i;
    c.start[s] = c.ts[s] - (i % 977) / 3;
    c.pid[s] = 100 + ((i >> 6) % 8);
    c.comm[s] = comms[(i >> 6) % 4];
    c.family[s] = 4;
    const addr = table.bytes16("daddr", s);
    addr.fill(0);
    addr.set([10, 0, (i >> 8) & 255, distinctRemotes ? i & 255 : (i >> 10) % 8]);
    c.dport[s] = distinctRemotes ? 1024 + (i % 60000) : 443;
    c.bytes_sent[s] = i % 10007;
    c.bytes_received[s] = i % 1009;
    c.segs_out[s] = 10 + (i % 7);
    c.retrans[s] = i % 101 === 0 ? 1 : 0;
    c.outcome[s] = i % 5;
  }
  return { store, table: table as unknown as EventTable };
}

const few = filled(false);
const all = { since: now - EVENTS - 1, until: now };
const minute = { since: now - 60_000, until: now };

Deno.bench("tcp_life summary, all 1M rows, 8 remotes", { group: "tcp_life" }, () => {
  tcpLife.summarize(few.table, all, few.store);
});
Deno.bench("tcp_life summary, last 60 s (60,000 rows), 8 remotes", { group: "tcp_life" }, () => {
  tcpLife.summarize(few.table, minute, few.store);
});
Deno.bench("tcp_life summary, all 1M rows, pid filter", { group: "tcp_life" }, () => {
  tcpLife.summarize(few.table, { ...all, pid: 103 }, few.store);
});

const many = filled(true);
Deno.bench("tcp_life summary, all 1M rows, a remote per connection", { group: "tcp_life" }, () => {
  tcpLife.summarize(many.table, all, many.store);
});
