/**
 * 10,000-event lists over HTTP in process (routing, validation, JSON), from a store holding 1M
 * connection events and 200,000 each of tcp_life and packet_drop. Run:
 * `deno bench --allow-all bench/list_bench.ts`.
 *
 * @module
 */

import { createApp } from "../src/http/app.ts";
import { ProgramManager } from "../src/programs/manager.ts";
import { programs } from "../src/programs/mod.ts";
import { packetDrop } from "../src/programs/packet_drop/mod.ts";
import { tcpLife } from "../src/programs/tcp_life/mod.ts";
import type { EventTable } from "../src/store/mod.ts";
import { filledStore } from "./_fixture.ts";

const now = Date.now();
const { store } = filledStore(1_000_000, now, 1_400_000);
const ROWS = 200_000;
const comm = store.strings.intern("nginx");

// tcp_life: closed inbound connections of one server, its clients' ports
const life = store.table("tcp_life", tcpLife.columns) as EventTable;
for (let i = 0; i < ROWS; i++) {
  const s = store.append(life);
  const c = life.cols;
  c.ts[s] = now - ROWS + i;
  c.start[s] = c.ts[s] - 3.25;
  c.pid[s] = 4242;
  c.comm[s] = comm;
  c.family[s] = 4;
  c.direction[s] = 2;
  c.state[s] = 7;
  c.nstates[s] = 3;
  life.bytes8("states", s).set([3, 1, 7]);
  life.bytes16("saddr", s).set([127, 0, 0, 1]);
  life.bytes16("daddr", s).set([127, 0, 0, 1]);
  c.sport[s] = 8080;
  c.dport[s] = 30000 + (i % 20000);
  c.bytes_sent[s] = 1000;
  c.outcome[s] = 0;
}

// packet_drop: a UDP flood to a closed port
const drops = store.table("packet_drop", packetDrop.columns) as EventTable;
for (let i = 0; i < ROWS; i++) {
  const s = store.append(drops);
  const c = drops.cols;
  c.ts[s] = now - ROWS + i;
  c.pid[s] = 777;
  c.comm[s] = comm;
  c.ctx_pid[s] = 777;
  c.ctx_comm[s] = comm;
  c.reason[s] = 2;
  c.len[s] = 64;
  c.protocol[s] = 0x0800;
  c.ipver[s] = 4;
  c.l4[s] = 17;
  c.sport[s] = 40000;
  c.dport[s] = 9;
  drops.bytes16("saddr", s).set([127, 0, 0, 1]);
  drops.bytes16("daddr", s).set([127, 0, 0, 1]);
}

// the manager never loads anything here: it only gives the app its tables and counters
const manager = new ProgramManager(programs.values(), store, {
  ringSize: 1 << 24,
  drainIntervalMs: 10,
  selfPid: Deno.pid,
});
const app = createApp({ programs, manager, store, docs: false, startedAt: now, now: () => now });

for (const name of ["connection", "tcp_life", "packet_drop"]) {
  Deno.bench(`GET /api/programs/${name}/events?limit=10000`, { group: "list" }, async () => {
    const res = await app.request(`/api/programs/${name}/events?limit=10000`);
    await res.arrayBuffer();
  });
}
