/**
 * A store with rows of every program that cover the cases an event's JSON has: IPv4, IPv6,
 * IPv4-mapped and unix destinations, other families, null fields, strings JSON must escape
 * (a quote, a backslash, control characters, non-ASCII, a lone surrogate), large and negative
 * numbers, NaN, and the optional and nested parts (packet_drop's location and owner, tcp_life's
 * connect). The event JSON tests compare the JSON writer with `JSON.stringify(toJson(...))`
 * over them.
 *
 * @module
 */

import { attributionOf, CgroupCache } from "../cgroup/mod.ts";
import { parseIPv4, parseIPv6 } from "../net/cidr.ts";
import { type EventTable, Store } from "../store/mod.ts";
import { cgroup } from "./cgroup/mod.ts";
import { connection } from "./connection/mod.ts";
import { dns } from "./dns/mod.ts";
import { stateOf } from "./dns/state.ts";
import { packetDrop } from "./packet_drop/mod.ts";
import { REASON_UNKNOWN } from "./packet_drop/reasons.ts";
import { tcpLife } from "./tcp_life/mod.ts";

const ID = "c0ffee".repeat(10) + "c0ff";

/** Commands with every kind of character JSON treats apart. */
export const COMMANDS = [
  "curl",
  'say "hi"',
  "back\\slash",
  "tab\there",
  "nl\nx\u0001\u001f",
  "caf\u00e9",
  "\u{1f600}smile",
  "lone\ud800",
  "del\u007f",
  "",
];

const V4 = ["127.0.0.1", "10.0.0.255", "0.0.0.0", "255.255.255.255", "192.168.4.7"];
const V6 = ["::1", "2001:db8::1", "fd00:1:2:3:4:5:6:7", "::ffff:10.9.9.9", "::", "fe80::"];

type Cols = Record<string, { [i: number]: number }>;

/** A deterministic pick: `xs[(i * step) % xs.length]`. */
function pick<T>(xs: readonly T[], i: number, step = 1): T {
  return xs[(i * step) % xs.length];
}

function setAddress(table: EventTable, column: string, s: number, ip: string): 4 | 6 {
  const v4 = parseIPv4(ip);
  const bytes = table.bytes16(column as never, s);
  bytes.fill(0);
  if (v4) {
    bytes.set(v4);
    return 4;
  }
  bytes.set(parseIPv6(ip)!);
  return 6;
}

/**
 * A store of `rows` events of each of connection, packet_drop, tcp_life, dns and cgroup (and
 * the attribution of three cgroups), newest at `endMs`.
 */
export function variedStore(rows = 600, endMs = Date.UTC(2026, 10, 25, 3, 4, 5, 678.5)) {
  const store = new Store(10 * rows);
  const cache = new CgroupCache({ root: null });
  cache.created(21, "/system.slice/nginx.service");
  cache.created(22, `/system.slice/docker-${ID}.scope`);
  cache.created(23, '/user.slice/odd "name"\\.slice/caf\u00e9.scope');
  const attrs = attributionOf(store, cache);
  const cgroups = [0, 21, 22, 23, 99, 2 ** 53 - 1];
  const comms = COMMANDS.map((c) => store.strings.intern(c));
  const names = stateOf(store).names;

  const conn = store.table("connection", connection.columns) as unknown as EventTable;
  const life = store.table("tcp_life", tcpLife.columns) as unknown as EventTable;
  const drops = store.table("packet_drop", packetDrop.columns) as unknown as EventTable;
  const dnsTable = store.table("dns", dns.columns) as unknown as EventTable;
  const cg = store.table("cgroup", cgroup.columns) as unknown as EventTable;
  const paths = ["/run/x.sock", "@abstract", '/tmp/q"uote\\d', "", "/run/\u00e9\n"].map((p) =>
    store.strings.intern(p)
  );
  const families = [2, 2, 10, 1, 0, 16, 2, 10];
  for (let i = 0; i < rows; i++) {
    const t = endMs - (rows - i) * 0.0137 - (i % 3) * 1e-4;
    const pid = pick([1, 4242, 4294967295, 0, 77], i, 3);
    const cgroupId = pick(cgroups, i, 5);
    const comm = pick(comms, i, 7);
    const sockLo = (i * 64) >>> 0, sockHi = 0xffff8880;

    // connection
    let s = store.append(conn);
    let c = conn.cols as unknown as Cols;
    c.ts[s] = t;
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.tid[s] = pid + 1;
    c.uid[s] = pick([0, 1000, 4294967295], i, 2);
    c.cgroup[s] = cgroupId;
    c.attr[s] = attrs.idOf(cgroupId);
    c.ret[s] = pick([0, -111, -115, -113, -2, -4095, -77, 5], i, 3);
    c.latency[s] = pick([0, 18000, 2 ** 52 + 1, 123456789.5], i, 1);
    const family = pick(families, i, 3);
    c.family[s] = family;
    c.sock_type[s] = pick([1, 2, 0, 3, 9], i, 2);
    c.protocol[s] = pick([6, 17, 0, 1, 58, 262, 999], i, 4);
    c.port[s] = pick([443, 0, 65535, 53], i, 3);
    c.sock_lo[s] = sockLo;
    c.sock_hi[s] = sockHi;
    if (family === 2) setAddress(conn, "addr", s, pick(V4, i, 3));
    else if (family === 10) setAddress(conn, "addr", s, pick(V6, i, 5));
    else if (family === 1) c.unix_path[s] = pick(paths, i, 2);
    if (family === 2 || family === 10) {
      const ip = family === 2 ? pick(V4, i, 3) : pick(V6, i, 5);
      // a name this process looked up for the address (the join of destination_name)
      if (i % 4 === 0) {
        const name = ip.startsWith("10.") || ip.startsWith("2001:")
          ? 'we"ird\\name'
          : "example.com";
        names.add(ip, store.strings.intern(name), pid, 0, t);
      }
    }

    // tcp_life: most outbound ones connected by the connection row just written
    s = store.append(life);
    c = life.cols as unknown as Cols;
    c.ts[s] = t + 0.002;
    c.start[s] = pick([t - 0.001, NaN, t - 3000.25, t + 0.0005], i, 1);
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.cgroup[s] = cgroupId;
    c.attr[s] = attrs.idOf(cgroupId);
    const v = i % 5 === 2 ? 6 : 4;
    c.family[s] = v;
    setAddress(life, "saddr", s, v === 4 ? pick(V4, i, 1) : pick(V6, i, 1));
    setAddress(life, "daddr", s, v === 4 ? pick(V4, i, 2) : pick(V6, i, 3));
    c.sport[s] = pick([32768, 0, 65535, 8080], i, 1);
    c.dport[s] = pick([9999, 443, 0], i, 1);
    c.direction[s] = pick([1, 1, 2, 0, 7], i, 1);
    c.state[s] = pick([7, 7, 1, 12, 13, 42], i, 1);
    c.nstates[s] = pick([2, 3, 0, 8, 11, 1], i, 1);
    life.bytes8("states", s).set(pick([[2, 7], [3, 1, 7], [1, 4, 5, 6, 7, 9, 10, 77]], i, 1));
    c.sk_err[s] = pick([0, 111, 110, 104, 65535], i, 1);
    c.bytes_sent[s] = pick([0, 1000, 2 ** 53 - 1, 123.5], i, 1);
    c.bytes_received[s] = pick([1, 0, 2 ** 40], i, 1);
    c.srtt[s] = pick([0, 15, 4294967295], i, 1);
    c.retrans[s] = i % 3;
    c.segs_out[s] = i % 7;
    c.resets_sent[s] = i % 2;
    c.resets_received[s] = (i >> 1) % 2;
    c.unknown[s] = pick([0, 0, 1, 2, 3], i, 1);
    c.outcome[s] = i % 7;
    // sockets: the one the connection row above has, another row's, or one no row has
    c.sock_lo[s] = pick([sockLo, sockLo, (sockLo + 64) >>> 0, 7], i, 1);
    c.sock_hi[s] = sockHi;

    // packet_drop
    s = store.append(drops);
    c = drops.cols as unknown as Cols;
    c.ts[s] = t + 0.001;
    const owned = i % 3 !== 1;
    c.has_owner[s] = owned ? 1 : 0;
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.ctx_pid[s] = pick([0, 13, pid], i, 1);
    c.ctx_comm[s] = pick(comms, i, 3);
    c.owner_cgroup[s] = owned ? cgroupId : 0;
    c.cgroup[s] = cgroupId;
    c.attr[s] = attrs.idOf(cgroupId);
    c.reason[s] = pick([2, REASON_UNKNOWN, 0, 5, 100000], i, 1);
    c.loc_lo[s] = pick([0x81a2b3c4, 0, 0x81000010, 0xffffffff], i, 1);
    c.loc_hi[s] = pick([0xffffffff, 0, 0xffffffff], i, 1);
    c.len[s] = pick([60, 0, 4294967295], i, 1);
    c.ifindex[s] = i % 4;
    c.netns[s] = pick([4026531840, 0], i, 1);
    c.ifname[s] = store.strings.intern(pick(["lo", "", "eth0", 'we"ird'], i, 1));
    const ipver = pick([4, 4, 6, 0, 6], i, 1);
    c.ipver[s] = ipver;
    c.protocol[s] = pick([0x0800, 0x86dd, 0x0806, 0x1234, 0], i, 1);
    c.l4[s] = pick([6, 17, 1, 58, 132, 136, 200], i, 2);
    c.tcp_flags[s] = pick([2, 0x12, 0, 0xff, 4], i, 1);
    c.sport[s] = pick([40000, 0, 65535], i, 1);
    c.dport[s] = pick([9, 443, 0], i, 1);
    if (ipver === 4) {
      setAddress(drops, "saddr", s, pick(V4, i, 2));
      setAddress(drops, "daddr", s, pick(V4, i, 3));
    } else if (ipver === 6) {
      setAddress(drops, "saddr", s, pick(V6, i, 2));
      setAddress(drops, "daddr", s, pick(V6, i, 3));
    }

    // dns
    s = store.append(dnsTable);
    c = dnsTable.cols as unknown as Cols;
    c.ts[s] = t + 0.003;
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.tid[s] = pid;
    c.uid[s] = 0;
    c.cgroup[s] = cgroupId;
    c.attr[s] = attrs.idOf(cgroupId);
    c.netns[s] = 4026531840;
    c.qts[s] = t - 1.5;
    c.latency[s] = pick([1500000, NaN], i, 1);
    c.ttl[s] = pick([300, NaN, 0], i, 1);
    c.id[s] = i & 0xffff;
    c.qtype[s] = pick([1, 28, 5, 65535], i, 1);
    c.rcode[s] = pick([0, 3, 0xffff, 2], i, 1);
    c.ancount[s] = i % 3;
    const dnsV = i % 2 ? 4 : 6;
    c.family[s] = dnsV;
    setAddress(dnsTable, "server", s, dnsV === 4 ? "127.0.0.53" : "2001:db8::53");
    c.server_port[s] = 53;
    c.client_port[s] = 40000 + i;
    c.outcome[s] = i % 3;
    c.transport[s] = i % 2;
    c.flags[s] = i % 16;
    c.attempts[s] = 1 + (i % 3);
    c.qname[s] = store.strings.intern(pick(["example.com", 'q"uote.\\test', "caf\u00e9.fr"], i));
    c.answers[s] = i % 3 === 0 ? 0 : store.strings.intern(
      pick(["example.com\tA\t93.184.215.14", 'a\tTXT\t"x\\"y"\nb\tAAAA\t::1'], i),
    );

    // cgroup
    s = store.append(cg);
    c = cg.cols as unknown as Cols;
    c.ts[s] = t + 0.004;
    c.pid[s] = pid;
    c.comm[s] = comm;
    c.cgroup[s] = cgroupId;
    c.attr[s] = attrs.idOf(cgroupId);
    c.action[s] = i % 4;
    c.level[s] = i % 5;
    c.truncated[s] = i % 2;
    c.path[s] = store.strings.intern(pick(["/", '/a "b"/c\\d', "/system.slice/x.service"], i));
  }
  return store;
}
