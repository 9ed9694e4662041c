/**
 * 10,000-event lists over HTTP in process (routing, validation, JSON), from a store as the
 * queries part of bench/run.ts fills it: a million refused TCP connects at 67,000 a second from
 * one process, each a connection, a tcp_life and a packet_drop event (333,333 of each). Run:
 * `deno bench --allow-all bench/list_bench.ts`.
 *
 * @module
 */

import { attributionOf, CgroupCache } from "../src/cgroup/mod.ts";
import { createApp } from "../src/http/app.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { ProgramManager } from "../src/programs/manager.ts";
import { programs } from "../src/programs/mod.ts";
import { packetDrop } from "../src/programs/packet_drop/mod.ts";
import { tcpLife } from "../src/programs/tcp_life/mod.ts";
import { type EventTable, Store } from "../src/store/mod.ts";

const now = Date.now();
const PER_TABLE = 333_333;
/** ms between two connects: 67,000 a second (tcp-refused's rate on the bench machine) */
const STEP = 1000 / 67_000;

const store = new Store(3 * PER_TABLE + 1);
const cgroups = new CgroupCache({ root: null });
cgroups.created(23, "/user.slice/user-0.slice/session-4.scope");
const attrs = attributionOf(store, cgroups);
const comm = store.strings.intern("loadgen");
const lo = store.strings.intern("lo");
const conn = store.table("connection", connection.columns) as unknown as EventTable;
const life = store.table("tcp_life", tcpLife.columns) as unknown as EventTable;
const drops = store.table("packet_drop", packetDrop.columns) as unknown as EventTable;
type Cols = Record<string, { [i: number]: number }>;
for (let i = 0; i < PER_TABLE; i++) {
  const t = now - (PER_TABLE - i) * STEP;
  const sport = 32768 + (i % 28232); // the ephemeral port of this connect
  const sockLo = (i * 64) >>> 0, sockHi = 0xffff8880;
  // the SYN, dropped: no socket listens on the port
  let s = store.append(drops);
  let c = drops.cols as unknown as Cols;
  c.ts[s] = t + 0.005;
  c.pid[s] = c.ctx_pid[s] = 4000;
  c.comm[s] = c.ctx_comm[s] = comm;
  c.has_owner[s] = 1;
  c.owner_cgroup[s] = c.cgroup[s] = 23;
  c.attr[s] = attrs.idOf(23);
  c.reason[s] = 2;
  c.loc_lo[s] = 0x81a2b3c4;
  c.loc_hi[s] = 0xffffffff;
  c.len[s] = 60;
  c.ifindex[s] = 1;
  c.netns[s] = 4026531840;
  c.ifname[s] = lo;
  c.protocol[s] = 0x0800;
  c.l4[s] = 6;
  c.ipver[s] = 4;
  c.tcp_flags[s] = 2;
  c.sport[s] = sport;
  c.dport[s] = 9999;
  drops.bytes16("saddr", s).set([127, 0, 0, 1]);
  drops.bytes16("daddr", s).set([127, 0, 0, 1]);
  // connect() returns ECONNREFUSED
  s = store.append(conn);
  c = conn.cols as unknown as Cols;
  c.ts[s] = t + 0.01;
  c.pid[s] = c.tid[s] = 4000;
  c.comm[s] = comm;
  c.cgroup[s] = 23;
  c.attr[s] = attrs.idOf(23);
  c.ret[s] = -111;
  c.latency[s] = 18_000 + (i % 4000);
  c.family[s] = 2;
  c.sock_type[s] = 1;
  c.protocol[s] = 6;
  c.port[s] = 9999;
  conn.bytes16("addr", s).set([127, 0, 0, 1]);
  c.sock_lo[s] = sockLo;
  c.sock_hi[s] = sockHi;
  // the connection's life: SYN_SENT, then CLOSE on the RST
  s = store.append(life);
  c = life.cols as unknown as Cols;
  c.ts[s] = t + 0.012;
  c.start[s] = t;
  c.pid[s] = 4000;
  c.comm[s] = comm;
  c.cgroup[s] = 23;
  c.attr[s] = attrs.idOf(23);
  c.family[s] = 4;
  c.direction[s] = 1;
  c.state[s] = 7;
  c.nstates[s] = 2;
  c.sk_err[s] = 111;
  c.segs_out[s] = 1;
  c.resets_received[s] = 1;
  c.outcome[s] = 3; // refused
  life.bytes8("states", s).set([2, 7]);
  life.bytes16("saddr", s).set([127, 0, 0, 1]);
  life.bytes16("daddr", s).set([127, 0, 0, 1]);
  c.sport[s] = sport;
  c.dport[s] = 9999;
  c.sock_lo[s] = sockLo;
  c.sock_hi[s] = sockHi;
}

// the manager never loads anything here: it only gives the app its tables and counters
const manager = new ProgramManager(programs.values(), store, {
  ringSize: 1 << 24,
  drainIntervalMs: 10,
  selfPid: Deno.pid,
});
const app = createApp({ programs, manager, store, docs: false, startedAt: now, now: () => now });

for (const name of ["connection", "packet_drop", "tcp_life"]) {
  Deno.bench(`GET /api/programs/${name}/events?limit=10000`, { group: "list" }, async () => {
    const res = await app.request(`/api/programs/${name}/events?limit=10000`);
    await res.arrayBuffer();
  });
}
Deno.bench("GET /api/events?limit=10000 (all three, merged)", { group: "list" }, async () => {
  const res = await app.request("/api/events?limit=10000");
  await res.arrayBuffer();
});
Deno.bench(
  "GET /api/list-packet-drops?limit=10000 (compatibility)",
  { group: "list" },
  async () => {
    const res = await app.request("/api/list-packet-drops?limit=10000");
    await res.arrayBuffer();
  },
);
