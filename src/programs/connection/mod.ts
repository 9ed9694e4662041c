/**
 * connection: every completed connect(2) on the host, from `bpf/connection.bpf.c`.
 *
 * @module
 */

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
import { isoMicros } from "../query.ts";
import { ConnectionEvent, ConnectionSummary } from "./schema.ts";
import { destinationOf, summarize } from "./summary.ts";

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
  // AF_UNIX connects come as the longer struct connection_unix_event: the event, then the path
  const unix = structLayout(obj, "connection_unix_event", { event: at.$size, unix_path: 108 });
  const strings = store.strings;
  const tally = store.tally("connection");
  // Offsets as closure constants: one load each, no property lookup per event.
  const SIZE = at.$size,
    UNIX_SIZE = unix.$size,
    TS = at.ts_ns,
    LAT = at.latency_ns,
    CG = at.cgroup_id,
    SOCK = at.sock_id,
    PID = at.pid,
    TID = at.tid,
    UID = at.uid,
    RET = at.ret,
    FAMILY = at.family,
    PORT = at.port,
    TYPE = at.sock_type,
    PROTO = at.protocol,
    ADDR = at.addr,
    COMM = at.comm,
    PATH = unix.unix_path,
    PATH_LEN = at.unix_path_len;
  // The columns, bound again when the table moves them (once, as it grows to full size).
  let ts: Float64Array, pids: Uint32Array, comms: Uint32Array, tids: Uint32Array;
  let uids: Uint32Array, cgroups: Float64Array, rets: Int32Array, sockLo: Uint32Array;
  let sockHi: Uint32Array, latency: Float64Array, families: Uint8Array, types: Uint8Array;
  let protocols: Uint16Array, ports: Uint16Array, paths: Uint32Array, addr32: Uint32Array;
  const bind = () => {
    const c = table.cols;
    ts = c.ts as Float64Array, pids = c.pid as Uint32Array, comms = c.comm as Uint32Array;
    tids = c.tid as Uint32Array, uids = c.uid as Uint32Array;
    cgroups = c.cgroup as Float64Array, rets = c.ret as Int32Array;
    sockLo = c.sock_lo as Uint32Array, sockHi = c.sock_hi as Uint32Array;
    latency = c.latency as Float64Array, families = c.family as Uint8Array;
    types = c.sock_type as Uint8Array, protocols = c.protocol as Uint16Array;
    ports = c.port as Uint16Array, paths = c.unix_path as Uint32Array;
    const addr = c.addr as Uint8Array;
    addr32 = new Uint32Array(addr.buffer, addr.byteOffset, addr.length / 4);
  };
  bind();
  // The command of the previous event (its 16 bytes as 4 words) and its id: a burst of
  // connects from one process interns nothing.
  let comm0 = 0, comm1 = 0, comm2 = 0, comm3 = 0, commId = -1;
  // A run of events with one tally key is added to the tally once (at its end, or at flush).
  let runKey = -1, runLength = 0;
  const decode: RecordDecoder = (view, bytes, r, size) => {
    const family = view.getUint16(r + FAMILY, true);
    if (size < SIZE || (family === AF_UNIX && size < UNIX_SIZE)) {
      throw new RangeError(
        `connection record of ${size} bytes, expected ${family === AF_UNIX ? UNIX_SIZE : SIZE}`,
      );
    }
    const s = store.append(table as unknown as EventTable);
    if (table.cols.ts !== ts) bind();
    ts[s] = clock.wallMs(view.getUint32(r + TS, true), view.getUint32(r + TS + 4, true));
    pids[s] = view.getUint32(r + PID, true);
    const w0 = view.getUint32(r + COMM, true), w1 = view.getUint32(r + COMM + 4, true);
    const w2 = view.getUint32(r + COMM + 8, true), w3 = view.getUint32(r + COMM + 12, true);
    if (commId < 0 || w0 !== comm0 || w1 !== comm1 || w2 !== comm2 || w3 !== comm3) {
      commId = strings.internBytes(bytes, r + COMM, 16);
      comm0 = w0, comm1 = w1, comm2 = w2, comm3 = w3;
    }
    comms[s] = commId;
    tids[s] = view.getUint32(r + TID, true);
    uids[s] = view.getUint32(r + UID, true);
    cgroups[s] = view.getUint32(r + CG, true) + view.getUint32(r + CG + 4, true) * 4294967296;
    const ret = view.getInt32(r + RET, true);
    rets[s] = ret;
    sockLo[s] = view.getUint32(r + SOCK, true);
    sockHi[s] = view.getUint32(r + SOCK + 4, true);
    latency[s] = view.getUint32(r + LAT, true) + view.getUint32(r + LAT + 4, true) * 4294967296;
    const sockType = view.getUint16(r + TYPE, true);
    const protocol = view.getUint16(r + PROTO, true);
    families[s] = family;
    types[s] = sockType;
    protocols[s] = protocol;
    ports[s] = view.getUint16(r + PORT, true);
    // the 16 address bytes as they were (little-endian in, little-endian out, as every decoder)
    const a = s * 4;
    addr32[a] = view.getUint32(r + ADDR, true);
    addr32[a + 1] = view.getUint32(r + ADDR + 4, true);
    addr32[a + 2] = view.getUint32(r + ADDR + 8, true);
    addr32[a + 3] = view.getUint32(r + ADDR + 12, true);
    if (family === AF_UNIX) {
      const len = Math.min(view.getUint32(r + PATH_LEN, true), 108);
      const abstract = len > 0 && bytes[r + PATH] === 0;
      paths[s] = abstract
        ? strings.intern(
          "@" + new TextDecoder().decode(bytes.subarray(r + PATH + 1, r + PATH + len)),
        )
        : strings.internBytes(bytes, r + PATH, len);
    } else {
      paths[s] = 0;
    }
    const key = packKey(commId, family, sockType, protocol, ret);
    if (key === runKey) runLength++;
    else {
      if (runLength) tally.set(runKey, (tally.get(runKey) ?? 0) + runLength);
      runKey = key;
      runLength = 1;
    }
  };
  // The manager calls flush after every drained batch: the tally is exact between batches.
  decode.flush = () => {
    if (runLength) tally.set(runKey, (tally.get(runKey) ?? 0) + runLength);
    runLength = 0;
  };
  return decode;
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
