/**
 * packet_drop: every packet the kernel drops, from `bpf/packet_drop.bpf.c`, with the kernel's
 * own reason name, the dropping function, the flow and the socket's owner; plus exact counts
 * per (reason, location) from in-kernel counters.
 *
 * @module
 */

import { createRoute } from "@hono/zod-openapi";
import { ATTRIBUTION_COLUMNS } from "../../cgroup/mod.ts";
import type { BpfObject } from "../../ffi/shim.ts";
import { kernelAddress, kernelAddressesExposed } from "../../kernel/addresses.ts";
import { kernelSymbols } from "../../kernel/kallsyms.ts";
import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import { etherTypeName, tcpFlagNames } from "../../net/ethernet.ts";
import { AF_INET, AF_INET6, protocolName } from "../../net/names.ts";
import type { MetricFamily } from "../../metrics/exposition.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import {
  codeField,
  type FilterField,
  ipField,
  portField,
  type RowTest,
  simpleGroup,
} from "../filter.ts";
import {
  commonFilters,
  commonGroups,
  familyParse,
  PROTO_UNKNOWN,
  protocolParse,
} from "../fields.ts";
import {
  attributionFields,
  baseFields,
  endpointField,
  eventJson,
  field,
  intField,
  ipv4Key,
  ipv4Texts,
  object,
  otherKey,
  pairIds,
  spread,
} from "../event_json.ts";
import { structLayout } from "../layout.ts";
import { planWriter } from "../copy_plan.ts";
import { type BatchDecoder, type DecoderContext, defineProgram } from "../program.ts";
import { bump } from "../query.ts";
import { kernelDropReasons, REASON_UNKNOWN } from "./reasons.ts";
import { DropReasonList, PacketDropEvent, PacketDropSummary } from "./schema.ts";
import { DROP_KEY, summarize, summarizeSliced } from "./summary.ts";

/** Store columns beyond ts, pid and comm (pid/comm: the owner when known, else the context). */
export const columns = {
  reason: "u32",
  loc_lo: "u32",
  loc_hi: "u32",
  ctx_pid: "u32",
  ctx_comm: "str",
  owner_cgroup: "f64",
  has_owner: "u8",
  len: "u32",
  ifindex: "u32",
  netns: "u32",
  ifname: "str",
  protocol: "u16",
  l4: "u8",
  ipver: "u8",
  tcp_flags: "u8",
  sport: "u16",
  dport: "u16",
  saddr: "bytes16",
  daddr: "bytes16",
  /** the cgroup the drop is attributed to: the owner's when known, else the context task's */
  cgroup: "f64",
  ...ATTRIBUTION_COLUMNS,
} as const;

type Columns = typeof columns;

function configure(obj: BpfObject): void {
  const reasons = kernelDropReasons();
  const notDropped = reasons.code("NOT_DROPPED_YET");
  const consumed = reasons.code("CONSUMED");
  // Kernels without these names get values no reason has (nor REASON_UNKNOWN).
  obj.setConstU32("reason_not_dropped", notDropped ?? 0xfffffffe);
  obj.setConstU32("reason_consumed", consumed ?? 0xfffffffd);
}

/**
 * The records into the columns by the shim's column writer. pid, comm and cgroup are the
 * owner's when the socket's owner is known, else the context task's; a drop in the idle task's
 * context (pid 0) has no task to take a cgroup from.
 */
function batchDecoder(ctx: DecoderContext<Columns>): BatchDecoder {
  const owned = { flag: "has_owner" } as const;
  return planWriter(ctx, {
    struct: "packet_drop_event",
    steps: [
      { column: "ts", kind: "boot_ms", field: "ts_ns" },
      { column: "ctx_pid", kind: "u32", field: "pid" },
      { column: "ctx_comm", kind: "str16", field: "comm" },
      { column: "has_owner", kind: "u8", field: "has_owner" },
      { column: "pid", kind: "u32", field: "owner_pid", ...owned, alt: "pid" },
      { column: "comm", kind: "str16", field: "owner_comm", ...owned, alt: "comm" },
      { column: "owner_cgroup", kind: "u64_f64", field: "owner_cgroup_id", ...owned, alt: "zero" },
      {
        column: "cgroup",
        kind: "u64_f64",
        field: "owner_cgroup_id",
        ...owned,
        alt: "cgroup_id",
        zeroIf: "pid",
      },
      { column: "reason", kind: "u32", field: "reason" },
      { column: "loc_lo", kind: "u32", field: "location", at: 0 },
      { column: "loc_hi", kind: "u32", field: "location", at: 4 },
      { column: "len", kind: "u32", field: "len" },
      { column: "ifindex", kind: "u32", field: "ifindex" },
      { column: "netns", kind: "u32", field: "netns" },
      { column: "ifname", kind: "str16", field: "ifname" },
      { column: "protocol", kind: "u16", field: "protocol" },
      { column: "l4", kind: "u8", field: "l4_protocol" },
      { column: "ipver", kind: "u8", field: "ip_version" },
      { column: "tcp_flags", kind: "u8", field: "tcp_flags" },
      { column: "sport", kind: "u16", field: "sport" },
      { column: "dport", kind: "u16", field: "dport" },
      { column: "saddr", kind: "bytes16", field: "saddr" },
      { column: "daddr", kind: "bytes16", field: "daddr" },
    ],
  });
}

/** Reads the in-kernel counters and logs what grew since the last read. */
function sampler({ obj, store }: DecoderContext<Columns>): (now: number) => void {
  const key = structLayout(obj, "drop_key", { location: 8, reason: 4 });
  const keySize = key.$size;
  const log = store.counters("packet_drop");
  const previous = new Map<string, number>();
  let overflowBefore = 0;
  return (now) => {
    for (const { key: k, value } of obj.dumpMap("drop_counts", keySize, 8)) {
      const reason = k.getUint32(key.reason, true);
      const loc = k.getBigUint64(key.location, true);
      const name = `${DROP_KEY}${reason} ${loc.toString(16)}`;
      const count = Number(value.getBigUint64(0, true));
      log.add(now, name, count - (previous.get(name) ?? 0));
      previous.set(name, count);
    }
    const overflow = obj.percpuSum("counts_overflow");
    log.add(now, "counts_overflow", overflow - overflowBefore);
    overflowBefore = overflow;
  };
}

function locationOf(table: EventTable<Columns>, slot: number): bigint {
  return (BigInt(table.cols.loc_hi[slot]) << 32n) | BigInt(table.cols.loc_lo[slot]);
}

function addressOf(
  table: EventTable<Columns>,
  column: "saddr" | "daddr",
  slot: number,
): string | null {
  const version = table.cols.ipver[slot];
  const bytes = table.bytes16(column, slot);
  if (version === 4) return formatIPv4(bytes);
  if (version === 6) return formatIPv6(bytes);
  return null;
}

function hasPorts(l4: number): boolean {
  return l4 === 6 || l4 === 17 || l4 === 132 || l4 === 136;
}

/**
 * A drop's fields: `toJson` and the lists' JSON writer both come from them. pid, command and
 * cgroup are the owner's when it is known, else the context task's (the decoder wrote them so).
 */
const toJson = eventJson<Columns>((table, store) => {
  // a copy of the columns' object: its properties are fast to read (the table's own object,
  // made a column at a time, is a dictionary)
  const c = { ...table.cols };
  const strings = store.strings;
  const reasons = kernelDropReasons();
  const symbols = kernelSymbols();
  const locationId = pairIds();
  const reason = c.reason, ipver = c.ipver, l4 = c.l4, protocol = c.protocol;
  const sport = c.sport, dport = c.dport, flags = c.tcp_flags, ifname = c.ifname;
  const saddr = c.saddr as Uint8Array, daddr = c.daddr as Uint8Array;
  const ports = (s: number) => ipver[s] !== 0 && hasPorts(l4[s]);
  /** IPv4: the address; IPv6: none; no IP: the null */
  const ipKey = (bytes: Uint8Array, s: number) =>
    ipver[s] === 4 ? ipv4Key(bytes, s) : ipver[s] === 6 ? -1 : otherKey(0);
  /** `source` or `destination`: ip:port or ip, null without an address */
  const v4 = ipv4Texts();
  /** `addressOf`, IPv4 ones formatted once */
  const address = (column: "saddr" | "daddr", s: number) =>
    ipver[s] === 4 ? v4(column === "saddr" ? saddr : daddr, s) : addressOf(table, column, s);
  const endpointKey = (bytes: Uint8Array, port: ArrayLike<number>, s: number) =>
    ipver[s] === 4
      ? ports(s) ? ipv4Key(bytes, s) * 65536 + port[s] : otherKey(256 + ipv4Key(bytes, s))
      : ipver[s] === 6
      ? -1
      : otherKey(0);
  const owner = [
    intField("pid", (s) => c.pid[s]),
    field("command", (s) => strings.get(c.comm[s]), (s) => c.comm[s]),
    intField("cgroup_id", (s) => c.owner_cgroup[s]),
  ];
  return {
    fields: [
      ...baseFields("packet_drop", table as unknown as EventTable, store),
      intField("cgroup_id", (s) => c.cgroup[s]),
      attributionFields(table as unknown as EventTable, store),
      field("reason", (s) => reasons.name(reason[s]), (s) => reason[s]),
      field(
        "reason_code",
        (s) => reason[s] === REASON_UNKNOWN ? null : reason[s],
        (s) => reason[s],
      ),
      // the raw address only with --expose-kernel-addresses: it gives away KASLR
      spread((s) => {
        const location = kernelAddressesExposed() ? kernelAddress(locationOf(table, s)) : undefined;
        return location === undefined ? {} : { location };
      }, () => kernelAddressesExposed() ? -1 : 0),
      field(
        "location_symbol",
        (s) => symbols.resolve(locationOf(table, s)),
        (s) => locationId(c.loc_lo[s], c.loc_hi[s]),
      ),
      field("protocol", (s) => etherTypeName(protocol[s]), (s) => protocol[s]),
      intField("protocol_number", (s) => protocol[s]),
      field(
        "l4_protocol",
        (s) => ipver[s] === 0 ? null : protocolName(ipver[s] === 4 ? AF_INET : AF_INET6, l4[s], 1),
        (s) => ipver[s] === 0 ? otherKey(0) : (ipver[s] === 4 ? 0 : 256) + l4[s],
      ),
      field("source_ip", (s) => address("saddr", s), (s) => ipKey(saddr, s)),
      field(
        "source_port",
        (s) => ports(s) ? sport[s] : null,
        (s) => ports(s) ? sport[s] : otherKey(0),
      ),
      field("destination_ip", (s) => address("daddr", s), (s) => ipKey(daddr, s)),
      field(
        "destination_port",
        (s) => ports(s) ? dport[s] : null,
        (s) => ports(s) ? dport[s] : otherKey(0),
      ),
      endpointField(
        "source",
        (s) => address("saddr", s),
        (s) => ports(s) ? sport[s] : null,
        (s) => endpointKey(saddr, sport, s),
      ),
      endpointField(
        "destination",
        (s) => address("daddr", s),
        (s) => ports(s) ? dport[s] : null,
        (s) => endpointKey(daddr, dport, s),
      ),
      field(
        "tcp_flags",
        (s) => ipver[s] !== 0 && l4[s] === 6 ? tcpFlagNames(flags[s]) : null,
        (s) => ipver[s] !== 0 && l4[s] === 6 ? flags[s] : otherKey(0),
      ),
      intField("length", (s) => c.len[s]),
      field("interface", (s) => strings.get(ifname[s]) || null, (s) => ifname[s]),
      intField("ifindex", (s) => c.ifindex[s]),
      intField("netns", (s) => c.netns[s]),
      intField("context_pid", (s) => c.ctx_pid[s]),
      field("context_command", (s) => strings.get(c.ctx_comm[s]), (s) => c.ctx_comm[s]),
      object("owner", (s) => c.has_owner[s] ? s : -1, owner),
    ],
  };
});

function metrics(store: Store): MetricFamily[] {
  const reasons = kernelDropReasons();
  const byReason = new Map<string, number>();
  let overflow = 0;
  for (const [key, n] of store.counters("packet_drop").totals()) {
    if (key.startsWith(DROP_KEY)) bump(byReason, reasons.label(Number(key.split(" ")[1])), n);
    else if (key === "counts_overflow") overflow = n;
  }
  return [
    {
      name: "ebpf_server_packet_drops_total",
      type: "counter",
      help:
        "packets the kernel dropped, by the kernel's reason (in-kernel counters, read every second)",
      samples: [...byReason].map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: "ebpf_server_packet_drop_counts_overflow_total",
      type: "counter",
      help: "drops not counted by reason because the in-kernel counter map was full",
      samples: [{ value: overflow }],
    },
  ];
}

type Cols = Record<string, ArrayLike<number>>;

const ipVersion = (cols: Cols) => (s: number) => cols.ipver[s];

/** Rows whose packet has ports (TCP, UDP, SCTP, UDP-Lite over IP). */
const withPorts = (cols: Cols) => (s: number) => cols.ipver[s] !== 0 && hasPorts(cols.l4[s]);

/** `reason=`: the running kernel's reason names, and `unknown` (the kernel gave none). */
function parseReason(text: string): { label: string; codes: number[] } {
  if (text === "unknown") return { label: "unknown", codes: [REASON_UNKNOWN] };
  const reasons = kernelDropReasons();
  const name = text.toUpperCase().replace(/^SKB_DROP_REASON_/, "");
  const code = reasons.code(name);
  if (code === undefined) {
    throw new TypeError(
      reasons.available
        ? `'${text}' is no drop reason of this kernel (see GET /api/drop-reasons), nor unknown`
        : `this kernel gives no drop reasons (its skb:kfree_skb has none): only unknown matches`,
    );
  }
  return { label: name, codes: [code] };
}

/** `interface=lo,eth0`: device names as the kernel has them. */
const interfaceField: FilterField<string> = {
  description: "the device the packet was on (lo, eth0, ...)",
  example: "lo",
  parse(text) {
    if (!/^[^\s/,]{1,15}$/.test(text)) throw new TypeError(`'${text}' is no device name`);
    return { label: text, value: text };
  },
  compile(table, store, names): RowTest {
    const ids = new Set(names.map((n) => store.strings.find(n)).filter((id) => id >= 0));
    const col = table.cols.ifname as Uint32Array;
    return (s) => ids.has(col[s]);
  },
};

const filters: Record<string, FilterField> = {
  ...commonFilters(),
  source: ipField("the packet's source address", { columns: ["saddr"], version: ipVersion }),
  destination: ipField("the packet's destination address", {
    columns: ["daddr"],
    version: ipVersion,
  }),
  port: portField("the packet's source or destination port", {
    columns: ["sport", "dport"],
    valid: withPorts,
  }),
  protocol: codeField("the packet's transport protocol (TCP, UDP, ICMP, ...)", {
    example: "UDP",
    parse: protocolParse,
    key: (cols) => (s) => cols.ipver[s] === 0 ? PROTO_UNKNOWN : cols.l4[s],
  }),
  family: codeField("the packet's IP version (ipv4 or AF_INET, ipv6 or AF_INET6)", {
    example: "ipv4",
    parse: familyParse,
    key: (cols) => (s) => cols.ipver[s] === 4 ? AF_INET : cols.ipver[s] === 6 ? AF_INET6 : 0,
  }),
  reason: codeField(
    "the kernel's drop reason (NO_SOCKET, NETFILTER_DROP, ...: GET /api/drop-reasons), or unknown",
    { example: "NO_SOCKET", parse: parseReason, key: (cols) => (s) => cols.reason[s] },
  ),
  interface: interfaceField as FilterField,
};

/** Source or destination of a drop as `ip:port` (or `ip`), or its address or port alone. */
function flowGroup(description: string, end: "s" | "d", part: "endpoint" | "ip" | "port") {
  return simpleGroup(description, (table) => (s) => {
    const t = table as unknown as EventTable<Columns>;
    const ip = addressOf(t, end === "s" ? "saddr" : "daddr", s);
    const c = t.cols;
    const port = ip !== null && hasPorts(c.l4[s]) ? (end === "s" ? c.sport[s] : c.dport[s]) : null;
    if (part === "ip") return ip;
    if (part === "port") return port;
    return ip === null ? null : port === null ? ip : joinHostPort(ip, port);
  });
}

const groups = {
  ...commonGroups(),
  reason: simpleGroup("the kernel's drop reason", (table) => {
    const reasons = kernelDropReasons();
    const col = table.cols.reason as Uint32Array;
    return (s) => reasons.name(col[s]);
  }),
  location: simpleGroup("the function that dropped it", (table) => {
    const symbols = kernelSymbols();
    return (s) => {
      const loc = locationOf(table as unknown as EventTable<Columns>, s);
      return symbols.resolve(loc) ?? `0x${loc.toString(16)}`;
    };
  }),
  interface: simpleGroup("the device", (table, store) => {
    const col = table.cols.ifname as Uint32Array;
    return (s) => store.strings.get(col[s]) || null;
  }),
  protocol: simpleGroup("the transport protocol", (table) => {
    const c = table.cols as unknown as Cols;
    return (s) =>
      c.ipver[s] === 0 ? null : protocolName(c.ipver[s] === 4 ? AF_INET : AF_INET6, c.l4[s], 1);
  }),
  source: flowGroup("source ip:port", "s", "endpoint"),
  destination: flowGroup("destination ip:port", "d", "endpoint"),
  source_ip: flowGroup("source address", "s", "ip"),
  destination_ip: flowGroup("destination address", "d", "ip"),
  port: flowGroup("destination port", "d", "port"),
};

const NO_REASONS =
  "this kernel's BTF has no enum skb_drop_reason (drop reasons came with Linux 5.17): drops are recorded with reason null, and counted by location";

export const packetDrop = defineProgram<Columns>({
  name: "packet_drop",
  description:
    "Every packet the kernel drops (skb:kfree_skb): the kernel's reason, the dropping function, the flow, the device, and the process that owned the socket.",
  columns,
  eventSchema: PacketDropEvent,
  summarySchema: PacketDropSummary,
  kernelFeatures: [
    {
      name: "drop_reason",
      probe: { type: "struct trace_event_raw_kfree_skb", member: "reason" },
      present: "the kernel's own reason from skb:kfree_skb's reason field",
      absent:
        "skb:kfree_skb has no reason field: reason and reason_code are null; drops are still recorded, and counted in the kernel by location",
      fields: ["reason", "reason_code"],
    },
    {
      name: "drop_reason_names",
      probe: { type: "enum skb_drop_reason" },
      present: "reason names from the kernel's enum skb_drop_reason",
      absent: "no enum skb_drop_reason: /api/drop-reasons lists none",
    },
    {
      name: "receiving_socket",
      probe: { type: "struct trace_event_raw_kfree_skb", member: "rx_sk" },
      present: "a dropped received packet's socket from the tracepoint's rx_sk",
      absent:
        "the socket from skb->sk only: a received packet dropped before a socket took it has no owner",
    },
  ],
  filters,
  groups,
  configure,
  batchDecoder,
  sampler,
  toJson,
  summarize,
  summarizeSliced,
  metrics,
  routes(app) {
    app.openapi(
      createRoute({
        method: "get",
        path: "/api/drop-reasons",
        operationId: "listDropReasons",
        tags: ["packet_drop"],
        summary: "Every drop reason the running kernel knows (from its BTF), code and name",
        responses: {
          200: {
            description: "reasons",
            content: { "application/json": { schema: DropReasonList } },
          },
        },
      }),
      (c) => {
        const reasons = kernelDropReasons();
        return c.json({
          available: reasons.available,
          reasons: reasons.list(),
          note: reasons.available ? null : NO_REASONS,
        }, 200);
      },
    );
  },
});
