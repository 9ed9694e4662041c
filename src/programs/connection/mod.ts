/**
 * connection: every completed connect(2) on the host, from `bpf/connection.bpf.c`.
 *
 * @module
 */

import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  familyName,
  protocolName,
  resultName,
  socketTypeName,
} from "../../net/names.ts";
import type { MetricFamily } from "../../metrics/exposition.ts";
import type { LabelCap } from "../../metrics/label_cap.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { structLayout } from "../layout.ts";
import { type DecoderContext, defineProgram, type RecordDecoder } from "../program.ts";
import {
  bump,
  forEachRow,
  isoMicros,
  quantile,
  sortedCounts,
  type SummaryQuery,
} from "../query.ts";
import { ConnectionEvent, ConnectionSummary } from "./schema.ts";

const EINPROGRESS = -115;

/** Store columns beyond ts, pid and comm. */
export const columns = {
  tid: "u32",
  uid: "u32",
  cgroup: "f64",
  ret: "i32",
  latency: "f64",
  family: "u8",
  sock_type: "u8",
  protocol: "u16",
  port: "u16",
  addr: "bytes16",
  unix_path: "str",
  sock_lo: "u32",
  sock_hi: "u32",
} as const;

type Columns = typeof columns;

/** Field sizes the decoder reads; offsets come from the object's BTF. */
const FIELDS = {
  ts_ns: 8,
  latency_ns: 8,
  cgroup_id: 8,
  sock_id: 8,
  pid: 4,
  tid: 4,
  uid: 4,
  ret: 4,
  family: 2,
  port: 2,
  sock_type: 2,
  protocol: 2,
  addr: 16,
  comm: 16,
  unix_path: 108,
  unix_path_len: 4,
} as const;

/** Packs command, protocol and errno into one tally key (see {@linkcode unpackKey}). */
function packKey(comm: number, family: number, sockType: number, protocol: number, ret: number) {
  let proto = 511; // no socket
  if (sockType !== 0) {
    if (family === AF_UNIX) proto = 510;
    else if (family === AF_INET || family === AF_INET6) proto = protocol < 508 ? protocol : 509;
    else proto = 508;
  }
  const errno = ret < 0 ? Math.min(-ret, 4095) : 0;
  return comm * 2097152 + proto * 4096 + errno;
}

function unpackKey(key: number) {
  const comm = Math.floor(key / 2097152);
  const proto = Math.floor(key / 4096) % 512;
  const errno = key % 4096;
  const protocol = proto === 511
    ? "unknown"
    : proto === 510
    ? "UNIX"
    : proto >= 508
    ? "other"
    : protocolName(AF_INET, proto, 1) ?? "unknown";
  return { comm, protocol, result: resultName(-errno) };
}

function decoder({ obj, store, table, clock }: DecoderContext<Columns>): RecordDecoder {
  const at = structLayout(obj, "connection_event", FIELDS);
  const strings = store.strings;
  const tally = store.tally("connection");
  return (view, bytes, r, size) => {
    if (size < at.$size) {
      throw new RangeError(`connection record of ${size} bytes, expected ${at.$size}`);
    }
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    c.ts[s] = clock.wallMs(
      view.getUint32(r + at.ts_ns, true),
      view.getUint32(r + at.ts_ns + 4, true),
    );
    c.pid[s] = view.getUint32(r + at.pid, true);
    c.comm[s] = strings.internBytes(bytes, r + at.comm, 16);
    c.tid[s] = view.getUint32(r + at.tid, true);
    c.uid[s] = view.getUint32(r + at.uid, true);
    c.cgroup[s] = view.getUint32(r + at.cgroup_id, true) +
      view.getUint32(r + at.cgroup_id + 4, true) * 4294967296;
    c.ret[s] = view.getInt32(r + at.ret, true);
    c.sock_lo[s] = view.getUint32(r + at.sock_id, true);
    c.sock_hi[s] = view.getUint32(r + at.sock_id + 4, true);
    c.latency[s] = view.getUint32(r + at.latency_ns, true) +
      view.getUint32(r + at.latency_ns + 4, true) * 4294967296;
    const family = view.getUint16(r + at.family, true);
    c.family[s] = family;
    c.sock_type[s] = view.getUint16(r + at.sock_type, true);
    c.protocol[s] = view.getUint16(r + at.protocol, true);
    c.port[s] = view.getUint16(r + at.port, true);
    (c.addr as Uint8Array).set(bytes.subarray(r + at.addr, r + at.addr + 16), s * 16);
    if (family === AF_UNIX) {
      const len = Math.min(view.getUint32(r + at.unix_path_len, true), 108);
      const abstract = len > 0 && bytes[r + at.unix_path] === 0;
      c.unix_path[s] = abstract
        ? strings.intern(
          "@" +
            new TextDecoder().decode(bytes.subarray(r + at.unix_path + 1, r + at.unix_path + len)),
        )
        : strings.internBytes(bytes, r + at.unix_path, len);
    } else {
      c.unix_path[s] = 0;
    }
    const key = packKey(c.comm[s], family, c.sock_type[s], c.protocol[s], c.ret[s]);
    tally.set(key, (tally.get(key) ?? 0) + 1);
  };
}

function metrics(store: Store, cap: LabelCap): MetricFamily[] {
  const { own, other } = cap.split(store.tally("connection"), (key) => unpackKey(key).comm);
  const series = new Map<string, { labels: Record<string, string>; value: number }>();
  const add = (key: number, value: number, command: string) => {
    const { protocol, result } = unpackKey(key);
    const id = `${command}\0${protocol}\0${result}`;
    const entry = series.get(id);
    if (entry) entry.value += value;
    else series.set(id, { labels: { command, protocol, result }, value });
  };
  for (const [key, value] of own) add(key, value, store.strings.get(unpackKey(key).comm));
  for (const [key, value] of other) add(key, value, "other");
  return [{
    name: "ebpf_server_connect_calls_total",
    type: "counter",
    help:
      `connect() calls by command (the ${cap.max} busiest get a label; the rest are "other"), protocol and result`,
    samples: [...series.values()],
  }];
}

function destinationOf(table: EventTable<Columns>, slot: number, store: Store) {
  const c = table.cols;
  const family = c.family[slot];
  const addr = table.bytes16("addr", slot);
  let ip: string | null = null;
  if (family === AF_INET) ip = formatIPv4(addr);
  else if (family === AF_INET6) ip = formatIPv6(addr);
  const port = ip === null ? null : c.port[slot];
  const path = family === AF_UNIX ? store.strings.get(c.unix_path[slot]) : null;
  const destination = ip !== null ? joinHostPort(ip, port!) : path ?? familyName(family);
  return { ip, port, path, destination };
}

function toJson(table: EventTable<Columns>, slot: number, store: Store) {
  const c = table.cols;
  const dest = destinationOf(table, slot, store);
  const sockType = c.sock_type[slot];
  const family = c.family[slot];
  return {
    type: "connection",
    wall_time: isoMicros(c.ts[slot]),
    timestamp_ms: c.ts[slot],
    pid: c.pid[slot],
    command: store.strings.get(c.comm[slot]),
    tid: c.tid[slot],
    uid: c.uid[slot],
    cgroup_id: c.cgroup[slot],
    address_family: familyName(family),
    protocol: protocolName(family, c.protocol[slot], sockType),
    protocol_number: c.protocol[slot],
    socket_type: socketTypeName(sockType),
    destination_ip: dest.ip,
    destination_port: dest.port,
    destination: dest.destination,
    unix_path: dest.path,
    result: resultName(c.ret[slot]),
    ret: c.ret[slot],
    latency_ns: c.latency[slot],
  };
}

function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const byResult = new Map<string, number>();
  const byProtocol = new Map<string, number>();
  const byCommand = new Map<string, number>();
  const byDestination = new Map<string, { count: number; failed: number }>();
  const latencies: number[] = [];
  let ok = 0, inProgress = 0, failed = 0;
  const total = forEachRow(table as unknown as EventTable, store, query, (s) => {
    const ret = c.ret[s];
    if (ret === 0) ok++;
    else if (ret === EINPROGRESS) inProgress++;
    else failed++;
    bump(byResult, resultName(ret));
    bump(byProtocol, protocolName(c.family[s], c.protocol[s], c.sock_type[s]) ?? "unknown");
    bump(byCommand, store.strings.get(c.comm[s]));
    const dest = destinationOf(table, s, store).destination;
    const entry = byDestination.get(dest) ?? { count: 0, failed: 0 };
    entry.count++;
    if (ret !== 0 && ret !== EINPROGRESS) entry.failed++;
    byDestination.set(dest, entry);
    latencies.push(c.latency[s]);
  });
  const sorted = Float64Array.from(latencies).sort();
  return {
    total_attempts: total,
    successful: ok,
    in_progress: inProgress,
    failed,
    by_result: sortedCounts(byResult),
    by_protocol: sortedCounts(byProtocol),
    by_command: sortedCounts(byCommand),
    top_destinations: [...byDestination]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 20)
      .map(([destination, v]) => ({ destination, count: v.count, failed: v.failed })),
    latency_ns: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: sorted.length ? sorted[sorted.length - 1] : null,
    },
  };
}

export const connection = defineProgram<Columns>({
  name: "connection",
  description:
    "Every completed connect() on the host: caller, destination, the socket's real type and protocol, result and latency.",
  columns,
  eventSchema: ConnectionEvent,
  summarySchema: ConnectionSummary,
  decoder,
  toJson,
  summarize,
  metrics,
});
