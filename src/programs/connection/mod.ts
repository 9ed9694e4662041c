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
import { isoMicros, quantilesOf, scanPlan, type SummaryQuery } from "../query.ts";
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
  // Offsets as closure constants: one load each, no property lookup per event.
  const SIZE = at.$size,
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
    PATH = at.unix_path,
    PATH_LEN = at.unix_path_len;
  // The command of the previous event (its 16 bytes as 4 words) and its id: a burst of
  // connects from one process interns nothing.
  let comm0 = 0, comm1 = 0, comm2 = 0, comm3 = 0, commId = -1;
  // The addr column as 32-bit words (made again when the table grows).
  let addrCol: unknown = null;
  let addr32: Uint32Array = new Uint32Array(0);
  // A run of events with one tally key is added to the tally once (at its end, or at flush).
  let runKey = -1, runLength = 0;
  const decode: RecordDecoder = (view, bytes, r, size) => {
    if (size < SIZE) {
      throw new RangeError(`connection record of ${size} bytes, expected ${SIZE}`);
    }
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    c.ts[s] = clock.wallMs(view.getUint32(r + TS, true), view.getUint32(r + TS + 4, true));
    c.pid[s] = view.getUint32(r + PID, true);
    const w0 = view.getUint32(r + COMM, true), w1 = view.getUint32(r + COMM + 4, true);
    const w2 = view.getUint32(r + COMM + 8, true), w3 = view.getUint32(r + COMM + 12, true);
    if (commId < 0 || w0 !== comm0 || w1 !== comm1 || w2 !== comm2 || w3 !== comm3) {
      commId = strings.internBytes(bytes, r + COMM, 16);
      comm0 = w0, comm1 = w1, comm2 = w2, comm3 = w3;
    }
    c.comm[s] = commId;
    c.tid[s] = view.getUint32(r + TID, true);
    c.uid[s] = view.getUint32(r + UID, true);
    c.cgroup[s] = view.getUint32(r + CG, true) + view.getUint32(r + CG + 4, true) * 4294967296;
    const ret = view.getInt32(r + RET, true);
    c.ret[s] = ret;
    c.sock_lo[s] = view.getUint32(r + SOCK, true);
    c.sock_hi[s] = view.getUint32(r + SOCK + 4, true);
    c.latency[s] = view.getUint32(r + LAT, true) + view.getUint32(r + LAT + 4, true) * 4294967296;
    const family = view.getUint16(r + FAMILY, true);
    const sockType = view.getUint16(r + TYPE, true);
    const protocol = view.getUint16(r + PROTO, true);
    c.family[s] = family;
    c.sock_type[s] = sockType;
    c.protocol[s] = protocol;
    c.port[s] = view.getUint16(r + PORT, true);
    if (c.addr !== addrCol) {
      addrCol = c.addr;
      addr32 = new Uint32Array((c.addr as Uint8Array).buffer);
    }
    // the 16 address bytes as they were (little-endian in, little-endian out, as every decoder)
    const a = s * 4;
    addr32[a] = view.getUint32(r + ADDR, true);
    addr32[a + 1] = view.getUint32(r + ADDR + 4, true);
    addr32[a + 2] = view.getUint32(r + ADDR + 8, true);
    addr32[a + 3] = view.getUint32(r + ADDR + 12, true);
    if (family === AF_UNIX) {
      const len = Math.min(view.getUint32(r + PATH_LEN, true), 108);
      const abstract = len > 0 && bytes[r + PATH] === 0;
      c.unix_path[s] = abstract
        ? strings.intern(
          "@" + new TextDecoder().decode(bytes.subarray(r + PATH + 1, r + PATH + len)),
        )
        : strings.internBytes(bytes, r + PATH, len);
    } else {
      c.unix_path[s] = 0;
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

/** Counts by a small integer code, remembering the order in which codes first appeared. */
class CodeCounts {
  readonly count: Float64Array;
  readonly first: Float64Array;
  constructor(size: number) {
    this.count = new Float64Array(size);
    this.first = new Float64Array(size);
  }
  add(code: number, row: number): void {
    if (this.count[code]++ === 0) this.first[code] = row;
  }
  /** Merged by name (several codes can share one), largest first, ties in order of appearance. */
  named(name: (code: number) => string, extra?: Map<string, { n: number; first: number }>) {
    const byName = new Map<string, { n: number; first: number }>(extra);
    for (let code = 0; code < this.count.length; code++) {
      const n = this.count[code];
      if (n === 0) continue;
      const key = name(code);
      const e = byName.get(key);
      if (!e) byName.set(key, { n, first: this.first[code] });
      else {
        e.n += n;
        e.first = Math.min(e.first, this.first[code]);
      }
    }
    return [...byName].sort((a, b) => b[1].n - a[1].n || a[1].first - b[1].first);
  }
}

const ERRNO_CODES = 4096;
const PROTO_UNKNOWN = 0, PROTO_UNIX = 1, PROTO_IP = 2, PROTO_OTHER = 2 + 65536;

/**
 * Destinations counted by (family, address, port) or unix path, in an open-addressing table of
 * typed arrays: no string per row; each distinct destination is formatted once at the end.
 */
class DestinationCounts {
  #mask = 1023;
  rep = new Int32Array(1024).fill(-1); // a row slot holding the destination
  count = new Float64Array(1024);
  failed = new Float64Array(1024);
  first = new Float64Array(1024);
  #used = 0;
  #last = -1;
  constructor(
    readonly family: Uint8Array,
    readonly port: Uint16Array,
    readonly addr: Uint32Array,
    readonly path: Uint32Array,
  ) {}

  #hash(s: number): number {
    const f = this.family[s];
    let h: number;
    if (f === AF_INET) h = this.addr[4 * s] ^ Math.imul(this.port[s], 0x9e3779b1);
    else if (f === AF_INET6) {
      const a = 4 * s;
      h = Math.imul(this.addr[a] ^ this.port[s], 0x9e3779b1) ^ this.addr[a + 1];
      h = Math.imul(h, 0x85ebca6b) ^ this.addr[a + 2];
      h = Math.imul(h, 0xc2b2ae35) ^ this.addr[a + 3];
    } else if (f === AF_UNIX) h = this.path[s] ^ 0x5bd1e995;
    else h = f;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.#mask;
  }

  #same(r: number, s: number): boolean {
    const f = this.family[s];
    if (this.family[r] !== f) return false;
    if (f === AF_INET) {
      return this.port[r] === this.port[s] && this.addr[4 * r] === this.addr[4 * s];
    }
    if (f === AF_INET6) {
      const a = 4 * r, b = 4 * s;
      return this.port[r] === this.port[s] && this.addr[a] === this.addr[b] &&
        this.addr[a + 1] === this.addr[b + 1] && this.addr[a + 2] === this.addr[b + 2] &&
        this.addr[a + 3] === this.addr[b + 3];
    }
    if (f === AF_UNIX) return this.path[r] === this.path[s];
    return true;
  }

  add(s: number, failed: boolean, row: number): void {
    // rows come in bursts to one destination: try the previous row's entry first
    let i = this.#last;
    if (i >= 0 && this.#same(this.rep[i], s)) {
      this.count[i]++;
      if (failed) this.failed[i]++;
      return;
    }
    i = this.#hash(s);
    for (;;) {
      const r = this.rep[i];
      if (r < 0) break;
      if (this.#same(r, s)) {
        this.count[i]++;
        if (failed) this.failed[i]++;
        this.#last = i;
        return;
      }
      i = (i + 1) & this.#mask;
    }
    this.#last = i;
    this.rep[i] = s;
    this.count[i] = 1;
    this.failed[i] = failed ? 1 : 0;
    this.first[i] = row;
    if (++this.#used * 2 > this.#mask) this.#grow();
  }

  #grow(): void {
    const { rep, count, failed, first } = this;
    this.#last = -1;
    const size = rep.length * 2;
    this.#mask = size - 1;
    this.rep = new Int32Array(size).fill(-1);
    this.count = new Float64Array(size);
    this.failed = new Float64Array(size);
    this.first = new Float64Array(size);
    for (let j = 0; j < rep.length; j++) {
      if (rep[j] < 0) continue;
      let i = this.#hash(rep[j]);
      while (this.rep[i] >= 0) i = (i + 1) & this.#mask;
      this.rep[i] = rep[j];
      this.count[i] = count[j];
      this.failed[i] = failed[j];
      this.first[i] = first[j];
    }
  }
}

function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const pids = c.pid as Uint32Array, comms = c.comm as Uint32Array, rets = c.ret as Int32Array;
  const families = c.family as Uint8Array, types = c.sock_type as Uint8Array;
  const protocols = c.protocol as Uint16Array, latency = c.latency as Float64Array;
  const addr = c.addr as Uint8Array;
  const byErrno = new CodeCounts(ERRNO_CODES); // 0: ret 0; n: -n
  const byProto = new CodeCounts(PROTO_OTHER + 65536);
  const byComm = new CodeCounts(store.strings.size);
  const oddResults = new Map<number, { n: number; first: number }>(); // ret > 0 or < -4095
  const dests = new DestinationCounts(
    families,
    c.port as Uint16Array,
    new Uint32Array(addr.buffer, addr.byteOffset, addr.length / 4),
    c.unix_path as Uint32Array,
  );
  const plan = scanPlan(table as unknown as EventTable, store, query);
  const latencies = new Float64Array(plan?.rows ?? 0);
  let n = 0, ok = 0, inProgress = 0, max = -Infinity;
  for (const [from, to] of plan?.ranges ?? []) {
    const pid = plan!.pid, comm = plan!.comm;
    for (let s = from; s < to; s++) {
      if ((pid >= 0 && pids[s] !== pid) || (comm >= 0 && comms[s] !== comm)) continue;
      const ret = rets[s];
      let bad = true;
      if (ret === 0) ok++, bad = false;
      else if (ret === EINPROGRESS) inProgress++, bad = false;
      if (ret <= 0 && ret > -ERRNO_CODES) byErrno.add(ret === 0 ? 0 : -ret, n); // not -0: a double index is a slow path
      else {
        const e = oddResults.get(ret);
        if (e) e.n++;
        else oddResults.set(ret, { n: 1, first: n });
      }
      const family = families[s], type = types[s], protocol = protocols[s];
      byProto.add(
        type === 0
          ? PROTO_UNKNOWN
          : family === AF_UNIX
          ? PROTO_UNIX
          : family === AF_INET || family === AF_INET6
          ? PROTO_IP + protocol
          : protocol === 0
          ? PROTO_UNKNOWN
          : PROTO_OTHER + protocol,
        n,
      );
      byComm.add(comms[s], n);
      dests.add(s, bad, n);
      const l = latency[s];
      latencies[n++] = l;
      if (l > max) max = l;
    }
  }
  const results = new Map<string, { n: number; first: number }>();
  for (const [ret, e] of oddResults) {
    const key = resultName(ret);
    const known = results.get(key);
    if (!known) results.set(key, { ...e });
    else known.n += e.n, known.first = Math.min(known.first, e.first);
  }
  const protoName = (code: number) =>
    code === PROTO_UNKNOWN
      ? "unknown"
      : code === PROTO_UNIX
      ? "UNIX"
      : code < PROTO_OTHER
      ? protocolName(AF_INET, code - PROTO_IP, 1)!
      : protocolName(0, code - PROTO_OTHER, 1)!;
  const topDestinations = new Map<string, { count: number; failed: number; first: number }>();
  for (let i = 0; i < dests.rep.length; i++) {
    if (dests.rep[i] < 0) continue;
    const name = destinationOf(table, dests.rep[i], store).destination;
    const e = topDestinations.get(name);
    if (!e) {
      topDestinations.set(name, {
        count: dests.count[i],
        failed: dests.failed[i],
        first: dests.first[i],
      });
    } else {
      e.count += dests.count[i];
      e.failed += dests.failed[i];
      e.first = Math.min(e.first, dests.first[i]);
    }
  }
  const [p50, p90, p99] = quantilesOf(latencies, n, [0.5, 0.9, 0.99]);
  const counts = (list: [string, { n: number }][]) =>
    Object.fromEntries(list.map(([k, v]) => [k, v.n]));
  return {
    total_attempts: n,
    successful: ok,
    in_progress: inProgress,
    failed: n - ok - inProgress,
    by_result: counts(byErrno.named((e) => resultName(-e), results)),
    by_protocol: counts(byProto.named(protoName)),
    by_command: counts(byComm.named((id) => store.strings.get(id))),
    top_destinations: [...topDestinations]
      .sort((a, b) => b[1].count - a[1].count || a[1].first - b[1].first)
      .slice(0, 20)
      .map(([destination, v]) => ({ destination, count: v.count, failed: v.failed })),
    latency_ns: { p50, p90, p99, max: n ? max : null },
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
