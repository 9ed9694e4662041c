import assert from "node:assert/strict";
import { readAsset } from "../../assets.ts";
import { BpfObject } from "../../ffi/shim.ts";
import { setKernelAddressesExposed } from "../../kernel/addresses.ts";
import { kernelSymbols } from "../../kernel/kallsyms.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import {
  BOOT_WALL_MS,
  btfOffsets,
  clock,
  drained,
  recordArea,
  withSummaryBase,
} from "../_testing.ts";
import { batchDecoderOf } from "../batch.ts";
import { packetDrop } from "./mod.ts";
import { DropReasons, kernelDropReasons } from "./reasons.ts";

const ETH_P_IP = 0x0800;
const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const TCP_SYN = 0x02;

type Columns = typeof packetDrop.columns;

/** What the kernel side writes into one record (fields left out stay zero, as bpf memsets it). */
interface RawDrop {
  tsNs: bigint;
  location: bigint;
  reason: number;
  pid: number;
  comm: string;
  protocol: number;
  len: number;
  ifindex?: number;
  ifname?: string;
  netns?: number;
  ipVersion?: number;
  l4?: number;
  sport?: number;
  dport?: number;
  tcpFlags?: number;
  saddr?: number[];
  daddr?: number[];
  owner?: { pid: number; comm: string; cgroupId: bigint };
  /** the context task's cgroup */
  cgroupId?: bigint;
}

const FIELD_NAMES = [
  "ts_ns",
  "location",
  "owner_cgroup_id",
  "cgroup_id",
  "reason",
  "pid",
  "owner_pid",
  "len",
  "ifindex",
  "netns",
  "protocol",
  "sport",
  "dport",
  "l4_protocol",
  "ip_version",
  "tcp_flags",
  "has_owner",
  "saddr",
  "daddr",
  "comm",
  "owner_comm",
  "ifname",
] as const;

const encoder = new TextEncoder();

function openObject(): BpfObject {
  return new BpfObject(readAsset("bpf/packet_drop.bpf.o"), "packet_drop");
}

/** Offsets read from the object's BTF, independently of the decoder's own table. */
function offsets(obj: BpfObject) {
  return btfOffsets(obj, "packet_drop_event", FIELD_NAMES);
}

/**
 * One record at a non-zero offset of a buffer that starts inside a larger ArrayBuffer, with junk
 * around it (as a drained ring would have); the record itself is zeroed first, as the BPF side
 * does, and strings keep junk after their NUL.
 */
function encode(obj: BpfObject, rec: RawDrop) {
  const { at, size } = offsets(obj);
  const { bytes, view, r } = recordArea(size);
  bytes.fill(0, r, r + size);
  const str = (field: number, text: string) => {
    const b = encoder.encode(text);
    bytes.fill(0x5a, r + field, r + field + 16); // junk after the NUL
    bytes.set(b, r + field);
    if (b.length < 16) bytes[r + field + b.length] = 0;
  };
  view.setBigUint64(r + at.ts_ns, rec.tsNs, true);
  view.setBigUint64(r + at.location, rec.location, true);
  view.setUint32(r + at.reason, rec.reason, true);
  view.setUint32(r + at.pid, rec.pid, true);
  view.setUint32(r + at.len, rec.len, true);
  view.setUint32(r + at.ifindex, rec.ifindex ?? 0, true);
  view.setUint32(r + at.netns, rec.netns ?? 0, true);
  view.setUint16(r + at.protocol, rec.protocol, true);
  view.setUint16(r + at.sport, rec.sport ?? 0, true);
  view.setUint16(r + at.dport, rec.dport ?? 0, true);
  bytes[r + at.l4_protocol] = rec.l4 ?? 0;
  bytes[r + at.ip_version] = rec.ipVersion ?? 0;
  bytes[r + at.tcp_flags] = rec.tcpFlags ?? 0;
  bytes.set(rec.saddr ?? [], r + at.saddr);
  bytes.set(rec.daddr ?? [], r + at.daddr);
  str(at.comm, rec.comm);
  if (rec.ifname !== undefined) str(at.ifname, rec.ifname);
  if (rec.cgroupId !== undefined) view.setBigUint64(r + at.cgroup_id, rec.cgroupId, true);
  if (rec.owner) {
    bytes[r + at.has_owner] = 1;
    view.setUint32(r + at.owner_pid, rec.owner.pid, true);
    view.setBigUint64(r + at.owner_cgroup_id, rec.owner.cgroupId, true);
    str(at.owner_comm, rec.owner.comm);
  }
  return { view, bytes, offset: r, size };
}

interface Ctx {
  obj: BpfObject;
  store: Store;
  table: EventTable<Columns>;
}

function setup(): Ctx {
  const obj = openObject();
  const store = new Store(100);
  const table = store.table("packet_drop", packetDrop.columns);
  return { obj, store, table };
}

/** Decodes `rec` into the store and returns the JSON of the stored row. */
function decodeOne(ctx: Ctx, rec: RawDrop) {
  const decode = batchDecoderOf(packetDrop, { ...ctx, clock } as never);
  const result = decode(drained(encode(ctx.obj, rec)));
  assert.deepEqual(result, { events: 1, rejected: 0 });
  const slot = ctx.table.slot(ctx.table.length - 1);
  return packetDrop.toJson(ctx.table as never, slot, ctx.store);
}

/**
 * A real text symbol of the running kernel (address and every name at that address), read
 * from /proc/kallsyms independently of src/kernel/; null when addresses are hidden.
 */
function kernelTextSymbol(wanted: string): { addr: bigint; names: string[] } | null {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/kallsyms");
  } catch {
    return null;
  }
  const byAddr = new Map<bigint, string[]>();
  let addr: bigint | null = null;
  for (const line of text.split("\n")) {
    const [hex, type, name] = line.split(/\s+/);
    if (type !== "t" && type !== "T") continue;
    const a = BigInt("0x" + hex);
    if (a === 0n) continue;
    byAddr.set(a, [...(byAddr.get(a) ?? []), name]);
    if (name === wanted && addr === null) addr = a;
  }
  return addr === null ? null : { addr, names: byAddr.get(addr)! };
}

/** The location to put in records and what its symbol must resolve to. */
function udpLocation(): { location: bigint; accept: (symbol: string | null) => boolean } {
  const sym = kernelTextSymbol("__udp4_lib_rcv");
  if (!sym) {
    // no readable symbols: whatever the server's table says for an arbitrary address
    const location = 0xffffffff81234567n;
    return { location, accept: (s) => s === kernelSymbols().resolve(location) };
  }
  return {
    location: sym.addr + 0x4bcn,
    accept: (s) => sym.names.some((n) => s === `${n}+0x4bc`),
  };
}

const NO_SOCKET = kernelDropReasons().code("NO_SOCKET");
const NETFILTER_DROP = kernelDropReasons().code("NETFILTER_DROP");

Deno.test("packet_drop decodes an IPv4 UDP drop with reason NO_SOCKET", () => {
  assert.ok(NO_SOCKET !== undefined, "the running kernel has SKB_DROP_REASON_NO_SOCKET");
  const ctx = setup();
  using _obj = ctx.obj;
  const { location, accept } = udpLocation();
  const json = decodeOne(ctx, {
    tsNs: 123_456_000n, // .123456 s after BOOT_WALL_MS
    location,
    reason: NO_SOCKET,
    pid: 4242,
    comm: "python3",
    protocol: ETH_P_IP,
    len: 18,
    ifindex: 1,
    ifname: "lo",
    netns: 4026532177,
    ipVersion: 4,
    l4: IPPROTO_UDP,
    sport: 52104,
    dport: 9,
    saddr: [127, 0, 0, 1],
    daddr: [10, 1, 2, 3],
  });
  assert.ok(accept(json.location_symbol as string | null), `symbol ${json.location_symbol}`);
  assert.deepEqual(json, {
    type: "packet_drop",
    wall_time: "2026-11-25T03:04:05.123456Z",
    timestamp_ms: BOOT_WALL_MS + 123.456,
    pid: 4242,
    command: "python3",
    cgroup_id: 0,
    cgroup_path: null,
    unit: null,
    container_id: null,
    container_runtime: null,
    reason: "NO_SOCKET",
    reason_code: NO_SOCKET,
    location_symbol: json.location_symbol,
    protocol: "IPv4",
    protocol_number: ETH_P_IP,
    l4_protocol: "UDP",
    source_ip: "127.0.0.1",
    source_port: 52104,
    destination_ip: "10.1.2.3",
    destination_port: 9,
    source: "127.0.0.1:52104",
    destination: "10.1.2.3:9",
    tcp_flags: null,
    length: 18,
    interface: "lo",
    ifindex: 1,
    netns: 4026532177,
    context_pid: 4242,
    context_command: "python3",
    owner: null,
  });
  assert.deepEqual(packetDrop.eventSchema.parse(json), json);
  assert.equal(ctx.store.size, 1);
});

Deno.test("packet_drop decodes an IPv6 TCP SYN drop", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    tsNs: 5_000_000_000n + 1_000n, // 5.000001 s
    location: 0xffffffff82035bd1n,
    reason: NO_SOCKET!,
    pid: 31337,
    comm: "curl",
    protocol: ETH_P_IPV6,
    len: 60,
    ifindex: 1,
    ifname: "lo",
    netns: 4026531833,
    ipVersion: 6,
    l4: IPPROTO_TCP,
    sport: 40000,
    dport: 8443,
    tcpFlags: TCP_SYN,
    saddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    daddr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  });
  assert.equal(json.wall_time, "2026-11-25T03:04:10.000001Z");
  assert.equal(json.protocol, "IPv6");
  assert.equal(json.protocol_number, ETH_P_IPV6);
  assert.equal(json.l4_protocol, "TCP");
  assert.equal(json.tcp_flags, "SYN");
  assert.equal(json.source_ip, "2001:db8::1");
  assert.equal(json.destination_ip, "::1");
  assert.equal(json.source_port, 40000);
  assert.equal(json.destination_port, 8443);
  assert.equal(json.source, "[2001:db8::1]:40000");
  assert.equal(json.destination, "[::1]:8443");
  assert.equal(json.reason, "NO_SOCKET");
  assert.equal("location" in json, false, "no raw kernel address by default");
  assert.equal(json.location_symbol, kernelSymbols().resolve(0xffffffff82035bd1n));
  assert.equal(json.length, 60);
  assert.equal(json.owner, null);
  assert.deepEqual(packetDrop.eventSchema.parse(json), json);
});

Deno.test("packet_drop shows the raw location only with --expose-kernel-addresses", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const drop = {
    tsNs: 1_000n,
    location: 0xffffffff82035bd1n,
    reason: NO_SOCKET!,
    pid: 1,
    comm: "curl",
    protocol: ETH_P_IP,
    len: 60,
  };
  setKernelAddressesExposed(true);
  try {
    const json = decodeOne(ctx, drop);
    assert.equal(json.location, "0xffffffff82035bd1");
    assert.deepEqual(packetDrop.eventSchema.parse(json), json);
    const keys = Object.keys(json);
    assert.equal(keys.indexOf("location") + 1, keys.indexOf("location_symbol"), "beside it");
  } finally {
    setKernelAddressesExposed(false);
  }
  const json = decodeOne(ctx, drop);
  assert.equal("location" in json, false);
});

Deno.test("packet_drop attributes a drop to the socket's owner and keeps the context", () => {
  assert.ok(NETFILTER_DROP !== undefined, "the running kernel has NETFILTER_DROP");
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    tsNs: 1_000_000n,
    location: 0xffffffffc0100000n,
    reason: NETFILTER_DROP,
    pid: 0, // a retransmission timer in softirq, on an idle CPU
    comm: "swapper/1",
    protocol: ETH_P_IP,
    len: 102,
    ifindex: 1,
    ifname: "lo",
    netns: 4026532177,
    ipVersion: 4,
    l4: IPPROTO_TCP,
    sport: 51644,
    dport: 57579,
    tcpFlags: 0x18, // PSH|ACK
    saddr: [127, 0, 0, 1],
    daddr: [127, 0, 0, 1],
    owner: { pid: 777, comm: "nginx", cgroupId: 0x1_0000_0042n }, // above 32 bits
  });
  assert.equal(json.pid, 777, "pid is the owner's");
  assert.equal(json.command, "nginx", "command is the owner's");
  assert.equal(json.context_pid, 0, "the task in whose context the drop happened is kept");
  assert.equal(json.context_command, "swapper/1");
  assert.deepEqual(json.owner, { pid: 777, command: "nginx", cgroup_id: 0x1_0000_0042 });
  assert.equal(json.reason, "NETFILTER_DROP");
  assert.equal(json.reason_code, NETFILTER_DROP);
  assert.equal(json.tcp_flags, "PSH|ACK");
  assert.deepEqual(packetDrop.eventSchema.parse(json), json);

  // the pid filter of queries and summaries uses the owner's pid
  const window = { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 1000 };
  const byOwner = packetDrop.summarize(ctx.table as never, { ...window, pid: 777 }, ctx.store);
  assert.equal(byOwner.total_drops, 1);
  assert.deepEqual(byOwner.by_owner, [{ pid: 777, command: "nginx", count: 1 }]);
  assert.equal(byOwner.unattributed, 0);
  const byContext = packetDrop.summarize(ctx.table as never, { ...window, pid: 0 }, ctx.store);
  assert.equal(byContext.total_drops, 0);
});

Deno.test("packet_drop decodes an ARP drop: no addresses, ports or L4 protocol", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    tsNs: 2_000_000n,
    location: 0xffffffff81000010n,
    reason: kernelDropReasons().code("NOT_SPECIFIED")!,
    pid: 0,
    comm: "swapper/0",
    protocol: ETH_P_ARP,
    len: 28,
    ifindex: 2,
    ifname: "eth0",
    netns: 4026531833,
  });
  assert.equal(json.protocol, "ARP");
  assert.equal(json.protocol_number, ETH_P_ARP);
  assert.equal(json.l4_protocol, null);
  assert.equal(json.source_ip, null);
  assert.equal(json.destination_ip, null);
  assert.equal(json.source_port, null);
  assert.equal(json.destination_port, null);
  assert.equal(json.source, null);
  assert.equal(json.destination, null);
  assert.equal(json.tcp_flags, null);
  assert.equal(json.interface, "eth0");
  assert.equal(json.ifindex, 2);
  assert.equal(json.reason, "NOT_SPECIFIED");
  assert.equal(json.pid, 0);
  assert.equal(json.command, "swapper/0");
  assert.deepEqual(packetDrop.eventSchema.parse(json), json);
});

Deno.test("packet_drop: a drop without a device has interface null", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    tsNs: 3_000_000n,
    location: 0xffffffff81000020n,
    reason: kernelDropReasons().code("SOCKET_CLOSE") ?? 4,
    pid: 99,
    comm: "sshd",
    protocol: 0,
    len: 0,
  });
  assert.equal(json.interface, null);
  assert.equal(json.ifindex, 0);
  assert.equal(json.netns, 0);
  assert.equal(json.protocol, "0x0000");
  assert.equal(json.l4_protocol, null);
  assert.deepEqual(packetDrop.eventSchema.parse(json), json);
});

Deno.test("packet_drop keeps a subsystem drop reason (above 16 bits) as the kernel gave it", () => {
  // openvswitch and mac80211 drop with codes (subsystem << 16) | n, e.g. OVS_DROP_LAST_ACTION
  // = 0x30001; the in-kernel counters key on all 32 bits, the event must too.
  const ctx = setup();
  using _obj = ctx.obj;
  const code = (3 << 16) | 1;
  const json = decodeOne(ctx, {
    tsNs: 4_000_000n,
    location: 0xffffffff81000030n,
    reason: code,
    pid: 1,
    comm: "ovs-vswitchd",
    protocol: ETH_P_IP,
    len: 64,
  });
  assert.equal(json.reason_code, code);
  assert.equal(json.reason, `UNKNOWN_${code}`);
});

Deno.test("packet_drop: the cgroup is the owner's, else the context task's, and none for idle", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const drop = { tsNs: 1n, location: 1n, reason: NO_SOCKET!, protocol: ETH_P_IP, len: 1 };
  const task = decodeOne(ctx, { ...drop, pid: 4242, comm: "curl", cgroupId: 77n });
  assert.equal(task.cgroup_id, 77);
  const idle = decodeOne(ctx, { ...drop, pid: 0, comm: "swapper/0", cgroupId: 77n });
  assert.equal(idle.cgroup_id, 0, "the idle task has no cgroup to name");
  const owned = decodeOne(ctx, {
    ...drop,
    pid: 0,
    comm: "swapper/0",
    cgroupId: 77n,
    owner: { pid: 9, comm: "nginx", cgroupId: 0x1_0000_0042n },
  });
  assert.equal(owned.cgroup_id, 0x1_0000_0042, "an owner's cgroup, in any context");
  assert.equal(owned.pid, 9);
  assert.equal(owned.context_pid, 0);
});

Deno.test("packet_drop rejects a short record without storing a row", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const decode = batchDecoderOf(packetDrop, { ...ctx, clock } as never);
  const record = encode(ctx.obj, {
    tsNs: 1n,
    location: 1n,
    reason: NO_SOCKET!,
    pid: 1,
    comm: "x",
    protocol: ETH_P_IP,
    len: 1,
  });
  const result = decode(drained({ ...record, size: record.size - 1 }));
  assert.equal(result.events, 0);
  assert.equal(result.rejected, 1);
  assert.match(result.error ?? "", /packet_drop_event records shorter than/);
  assert.equal(ctx.table.length, 0);
  assert.equal(ctx.store.size, 0);
});

Deno.test("packet_drop.summarize: kernel counts without a filter, events with one", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const { location } = udpLocation();
  const udp = {
    location,
    reason: NO_SOCKET!,
    protocol: ETH_P_IP,
    len: 18,
    ifindex: 1,
    ifname: "lo",
    ipVersion: 4,
    l4: IPPROTO_UDP,
    sport: 1000,
    dport: 9,
    saddr: [127, 0, 0, 1],
    daddr: [127, 0, 0, 1],
  };
  decodeOne(ctx, { ...udp, tsNs: 1_000_000n, pid: 100, comm: "python3" });
  decodeOne(ctx, { ...udp, tsNs: 2_000_000n, pid: 100, comm: "python3" });
  decodeOne(ctx, {
    ...udp,
    tsNs: 3_000_000n,
    pid: 0,
    comm: "swapper/0",
    reason: NETFILTER_DROP!,
    l4: IPPROTO_TCP,
    owner: { pid: 200, comm: "nginx", cgroupId: 1n },
  });
  // the kernel counted more than the ring delivered: 10 NO_SOCKET drops at that place
  const counters = ctx.store.counters("packet_drop");
  counters.add(BOOT_WALL_MS + 5, `drop ${NO_SOCKET} ${location.toString(16)}`, 10);
  counters.add(BOOT_WALL_MS + 5, `drop ${NETFILTER_DROP} ffffffffc0100000`, 1);
  const window = { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 1000 };
  const symbol = kernelSymbols().resolve(location) ?? "unknown";

  const all = packetDrop.summarize(ctx.table as never, window, ctx.store);
  assert.equal(all.counts_source, "kernel");
  assert.equal(all.total_drops, 11);
  assert.equal(all.events_in_window, 3);
  assert.deepEqual(all.by_reason, { NO_SOCKET: 10, NETFILTER_DROP: 1 });
  assert.equal((all.by_location as Record<string, number>)[symbol], 10);
  assert.deepEqual(all.by_l4_protocol, { UDP: 2, TCP: 1 });
  assert.deepEqual(all.by_interface, { lo: 3 });
  assert.deepEqual(all.by_owner, [{ pid: 200, command: "nginx", count: 1 }]);
  assert.equal(all.unattributed, 2);

  const mine = packetDrop.summarize(ctx.table as never, { ...window, pid: 100 }, ctx.store);
  assert.equal(mine.counts_source, "events");
  assert.equal(mine.total_drops, 2);
  assert.deepEqual(mine.by_reason, { NO_SOCKET: 2 });
  assert.deepEqual(mine.by_location, { [symbol]: 2 });
  assert.deepEqual(mine.by_owner, []);
  assert.equal(mine.unattributed, 2);

  packetDrop.summarySchema.parse(withSummaryBase("packet_drop", all));

  // An address without a symbol is "unknown", never the address (unless exposed).
  counters.add(BOOT_WALL_MS + 6, `drop ${NO_SOCKET} 1`, 3);
  const again = packetDrop.summarize(ctx.table as never, window, ctx.store);
  const keys = Object.keys(again.by_location as Record<string, number>);
  assert.deepEqual(keys.filter((k) => /^0x[0-9a-f]+$/.test(k)), [], keys.join(", "));
  assert.ok(keys.includes("unknown"), keys.join(", "));
  setKernelAddressesExposed(true);
  try {
    const exposed = packetDrop.summarize(ctx.table as never, window, ctx.store);
    assert.equal((exposed.by_location as Record<string, number>)["0x1"], 3);
  } finally {
    setKernelAddressesExposed(false);
  }
});

Deno.test("DropReasons: names without the kernel's prefix, code/name round trip, UNKNOWN_n", () => {
  const reasons = new DropReasons(
    new Map([
      [3, "SKB_DROP_REASON_NO_SOCKET"],
      [0, "SKB_NOT_DROPPED_YET"],
      [1, "SKB_CONSUMED"],
      [2, "SKB_DROP_REASON_NOT_SPECIFIED"],
      [12, "SKB_DROP_REASON_NETFILTER_DROP"],
    ]),
  );
  assert.equal(reasons.name(3), "NO_SOCKET");
  assert.equal(reasons.name(0), "NOT_DROPPED_YET");
  assert.equal(reasons.name(1), "CONSUMED");
  assert.equal(reasons.code("NETFILTER_DROP"), 12);
  assert.equal(reasons.code("SKB_DROP_REASON_NETFILTER_DROP"), undefined);
  assert.equal(reasons.code("NO_SUCH_REASON"), undefined);
  assert.equal(reasons.name(999), "UNKNOWN_999");
  assert.deepEqual(reasons.list(), [
    { code: 0, name: "NOT_DROPPED_YET" },
    { code: 1, name: "CONSUMED" },
    { code: 2, name: "NOT_SPECIFIED" },
    { code: 3, name: "NO_SOCKET" },
    { code: 12, name: "NETFILTER_DROP" },
  ]);
  for (const { code, name } of reasons.list()) {
    assert.equal(reasons.code(name), code);
    assert.equal(reasons.name(code), name);
  }
});

Deno.test("DropReasons strips the kernel's prefix once: SKB_DROP_REASON_SKB_CSUM is SKB_CSUM", () => {
  // The kernel's own names (the kfree_skb tracepoint prints them) keep the SKB_ of SKB_CSUM,
  // SKB_GSO_SEG and SKB_UCOPY_FAULT; only enum values outside the DROP_REASON range
  // (SKB_NOT_DROPPED_YET, SKB_CONSUMED) carry a bare SKB_ prefix.
  const reasons = new DropReasons(
    new Map([
      [0, "SKB_NOT_DROPPED_YET"],
      [1, "SKB_CONSUMED"],
      [75, "SKB_DROP_REASON_SKB_CSUM"],
      [76, "SKB_DROP_REASON_SKB_GSO_SEG"],
    ]),
  );
  assert.equal(reasons.name(0), "NOT_DROPPED_YET");
  assert.equal(reasons.name(1), "CONSUMED");
  assert.equal(reasons.name(75), "SKB_CSUM");
  assert.equal(reasons.name(76), "SKB_GSO_SEG");
  assert.equal(reasons.code("SKB_CSUM"), 75);
  assert.equal(reasons.code("CSUM"), undefined);
});

Deno.test("kernelDropReasons: the running kernel's reasons, each a real reason code", () => {
  const reasons = kernelDropReasons();
  assert.equal(kernelDropReasons(), reasons, "read once");
  const list = reasons.list();
  assert.ok(list.length > 50, `${list.length} reasons`);
  assert.equal(reasons.code("NOT_DROPPED_YET"), 0);
  assert.equal(reasons.code("CONSUMED"), 1);
  assert.ok(reasons.code("NO_SOCKET")! > 1);
  for (const { code, name } of list) {
    assert.ok(!name.startsWith("SKB_DROP_REASON_"), `${name} keeps no SKB_DROP_REASON_ prefix`);
    assert.ok(!/^SKB_(NOT_DROPPED_YET|CONSUMED)$/.test(name), `${name} keeps no SKB_ prefix`);
    assert.equal(reasons.code(name), code);
    assert.equal(reasons.name(code), name);
  }
  // enum skb_drop_reason also holds SKB_DROP_REASON_SUBSYS_MASK (0xffff0000), a bit mask for
  // subsystem reasons: it is no reason, and its value is unsigned.
  for (const { code, name } of list) {
    assert.ok(
      Number.isInteger(code) && code >= 0 && code <= 0xffffffff,
      `reason ${name} has code ${code}, not an unsigned 32-bit value`,
    );
  }
  assert.equal(reasons.code("SUBSYS_MASK"), undefined, "SUBSYS_MASK is listed as a reason");
});
