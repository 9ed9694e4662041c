/**
 * tcp_life: one record per TCP connection when it closes, from `bpf/tcp_life.bpf.c`, and a
 * snapshot of the connections open now (its `iter/tcp` program).
 *
 * @module
 */

import { createRoute, type z } from "@hono/zod-openapi";
import { ATTRIBUTION_COLUMNS, attributionOf, type Attributions } from "../../cgroup/mod.ts";
import { errorContent } from "../../http/errors.ts";
import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import { resultName } from "../../net/names.ts";
import type { MetricFamily } from "../../metrics/exposition.ts";
import { EventTable, type Interner, type Store } from "../../store/mod.ts";
import type { BpfObject } from "../../ffi/shim.ts";
import { destinationName } from "../dns/mod.ts";
import {
  codeField,
  type FilterField,
  ipField,
  namesParse,
  portField,
  simpleGroup,
} from "../filter.ts";
import { commonFilters, commonGroups, familyParse } from "../fields.ts";
import {
  attributionFields,
  baseFields,
  endpointField,
  eventJson,
  field,
  intField,
  ipv4Key,
  ipv4Texts,
  microsField,
  object,
  otherKey,
  timeField,
} from "../event_json.ts";
import { structLayout } from "../layout.ts";
import { planWriter } from "../copy_plan.ts";
import { type BatchDecoder, type Clock, type DecoderContext, defineProgram } from "../program.ts";
import { OpenConnections, OUTCOMES, TcpLifeEvent, TcpLifeSummary } from "./schema.ts";
import { summarize, summarizeSliced } from "./summary.ts";

export const columns = {
  cgroup: "f64",
  start: "f64",
  bytes_sent: "f64",
  bytes_received: "f64",
  srtt: "u32",
  retrans: "u32",
  segs_out: "u32",
  sk_err: "u16",
  sport: "u16",
  dport: "u16",
  family: "u8",
  direction: "u8",
  state: "u8",
  resets_sent: "u8",
  resets_received: "u8",
  nstates: "u8",
  states: "bytes8",
  saddr: "bytes16",
  daddr: "bytes16",
  sock_lo: "u32",
  sock_hi: "u32",
  outcome: "u8",
  /** UNKNOWN_* bits: counts this kernel could not give (a hook it lacks) */
  unknown: "u8",
  ...ATTRIBUTION_COLUMNS,
} as const;

/** Bits of the `unknown` column. */
const UNKNOWN_RESETS_SENT = 1, UNKNOWN_RESETS_RECEIVED = 2;

type Columns = typeof columns;

/** Field sizes the decoder reads from `struct tcp_life_event`; offsets come from the BTF. */
export const FIELDS = {
  ts_ns: 8,
  start_ns: 8,
  bytes_sent: 8,
  bytes_received: 8,
  cgroup_id: 8,
  sock_id: 8,
  pid: 4,
  srtt_us: 4,
  total_retrans: 4,
  sk_err: 4,
  sport: 2,
  dport: 2,
  family: 2,
  direction: 1,
  state: 1,
  resets_sent: 1,
  resets_received: 1,
  nstates: 1,
  has_owner: 1,
  segs_out: 4,
  states: 8,
  saddr: 16,
  daddr: 16,
  comm: 16,
} as const;

const STATE_NAMES = [
  "UNKNOWN",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
  "BOUND_INACTIVE",
];
const TCP_CLOSE = 7;
const ECONNRESET = 104, ETIMEDOUT = 110, ECONNREFUSED = 111;
const AF_INET = 2, AF_INET6 = 10;
const DIRECTIONS = ["unknown", "outbound", "inbound"] as const;

type Layout = ReturnType<typeof layoutOf>;

function layoutOf(obj: BpfObject) {
  return structLayout(obj, "tcp_life_event", FIELDS);
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 4294967296;
}

/** Writes one record into row `s` of a table. */
function writeRow(
  table: EventTable<Columns>,
  s: number,
  { view, bytes, r, at, strings, attrs, clock, unknown }: {
    attrs: Attributions;
    view: DataView;
    bytes: Uint8Array;
    r: number;
    at: Layout;
    strings: Interner;
    clock: Clock;
    /** UNKNOWN_* bits of this kernel */
    unknown: number;
  },
): void {
  const c = table.cols;
  c.unknown[s] = unknown;
  c.ts[s] = clock.wallMs(
    view.getUint32(r + at.ts_ns, true),
    view.getUint32(r + at.ts_ns + 4, true),
  );
  const startLo = view.getUint32(r + at.start_ns, true);
  const startHi = view.getUint32(r + at.start_ns + 4, true);
  c.start[s] = startLo === 0 && startHi === 0 ? NaN : clock.wallMs(startLo, startHi);
  const owned = bytes[r + at.has_owner] !== 0;
  c.pid[s] = owned ? view.getUint32(r + at.pid, true) : 0;
  c.comm[s] = owned ? strings.internBytes(bytes, r + at.comm, 16) : 0;
  c.cgroup[s] = owned ? u64(view, r + at.cgroup_id) : 0;
  c.attr[s] = attrs.idOf(c.cgroup[s]);
  c.bytes_sent[s] = u64(view, r + at.bytes_sent);
  c.bytes_received[s] = u64(view, r + at.bytes_received);
  c.srtt[s] = view.getUint32(r + at.srtt_us, true);
  c.retrans[s] = view.getUint32(r + at.total_retrans, true);
  c.segs_out[s] = view.getUint32(r + at.segs_out, true);
  c.sk_err[s] = view.getUint32(r + at.sk_err, true);
  c.sport[s] = view.getUint16(r + at.sport, true);
  c.dport[s] = view.getUint16(r + at.dport, true);
  c.family[s] = view.getUint16(r + at.family, true) === AF_INET ? 4 : 6;
  c.direction[s] = bytes[r + at.direction];
  c.state[s] = bytes[r + at.state];
  c.resets_sent[s] = bytes[r + at.resets_sent];
  c.resets_received[s] = bytes[r + at.resets_received];
  c.nstates[s] = bytes[r + at.nstates];
  (c.states as Uint8Array).set(bytes.subarray(r + at.states, r + at.states + 8), s * 8);
  (c.saddr as Uint8Array).set(bytes.subarray(r + at.saddr, r + at.saddr + 16), s * 16);
  (c.daddr as Uint8Array).set(bytes.subarray(r + at.daddr, r + at.daddr + 16), s * 16);
  c.sock_lo[s] = view.getUint32(r + at.sock_id, true);
  c.sock_hi[s] = view.getUint32(r + at.sock_id + 4, true);
  c.outcome[s] = OUTCOMES.indexOf(outcomeOf({
    state: c.state[s],
    states: statesOf(table, s),
    skErr: c.sk_err[s],
    resetsSent: c.resets_sent[s],
    resetsReceived: c.resets_received[s],
  }));
}

/** Tally keys beyond `direction * 16 + outcome index`. */
const SUM_KEYS = { bytes_sent: -1, bytes_received: -2, retransmits: -3, segments_out: -4 };

function add(tally: Map<number, number>, key: number, n: number): void {
  tally.set(key, (tally.get(key) ?? 0) + n);
}

/** The `unknown` column's bits for the fields this kernel cannot give. */
function unknownBits(fields: ReadonlySet<string> | undefined): number {
  return (fields?.has("resets_sent") ? UNKNOWN_RESETS_SENT : 0) |
    (fields?.has("resets_received") ? UNKNOWN_RESETS_RECEIVED : 0);
}

/**
 * The records into the columns by the shim's column writer; then, over the batch's rows, the
 * outcome of each connection, this kernel's unknown bits, and the counts /metrics reads. A
 * connection older than the program has no owner: pid, command and cgroup 0.
 */
function batchDecoder(ctx: DecoderContext<Columns>): BatchDecoder {
  const unknown = unknownBits(ctx.unknownFields);
  const tally = ctx.store.tally("tcp_life");
  // counts by direction * 16 + outcome, gathered per batch
  const counts = new Float64Array(64);
  const owned = { flag: "has_owner", alt: "zero" } as const;
  return planWriter(ctx, {
    struct: "tcp_life_event",
    steps: [
      { column: "ts", kind: "boot_ms", field: "ts_ns" },
      { column: "start", kind: "boot_ms", field: "start_ns" },
      { column: "pid", kind: "u32", field: "pid", ...owned },
      { column: "comm", kind: "str16", field: "comm", ...owned },
      { column: "cgroup", kind: "u64_f64", field: "cgroup_id", ...owned },
      { column: "bytes_sent", kind: "u64_f64", field: "bytes_sent" },
      { column: "bytes_received", kind: "u64_f64", field: "bytes_received" },
      { column: "srtt", kind: "u32", field: "srtt_us" },
      { column: "retrans", kind: "u32", field: "total_retrans" },
      { column: "segs_out", kind: "u32", field: "segs_out" },
      { column: "sk_err", kind: "u16", field: "sk_err", at: 0 }, // an errno: its low half
      { column: "sport", kind: "u16", field: "sport" },
      { column: "dport", kind: "u16", field: "dport" },
      {
        column: "family",
        kind: "u16_is",
        field: "family",
        is: { equals: AF_INET, then: 4, otherwise: 6 },
      },
      { column: "direction", kind: "u8", field: "direction" },
      { column: "state", kind: "u8", field: "state" },
      { column: "resets_sent", kind: "u8", field: "resets_sent" },
      { column: "resets_received", kind: "u8", field: "resets_received" },
      { column: "nstates", kind: "u8", field: "nstates" },
      { column: "states", kind: "bytes8", field: "states" },
      { column: "saddr", kind: "bytes16", field: "saddr" },
      { column: "daddr", kind: "bytes16", field: "daddr" },
      { column: "sock_lo", kind: "u32", field: "sock_id", at: 0 },
      { column: "sock_hi", kind: "u32", field: "sock_id", at: 4 },
    ],
    finish(table, from, to) {
      // every column in a typed local: one shape for the loop to compile against
      const c = table.cols;
      const states = c.states as Uint8Array, outcome = c.outcome as Uint8Array;
      const direction = c.direction as Uint8Array, state = c.state as Uint8Array;
      const nstates = c.nstates as Uint8Array, skErr = c.sk_err as Uint16Array;
      const resetsSent = c.resets_sent as Uint8Array;
      const resetsReceived = c.resets_received as Uint8Array;
      const bytesSent = c.bytes_sent as Float64Array;
      const bytesReceived = c.bytes_received as Float64Array;
      const retrans = c.retrans as Uint32Array, segsOut = c.segs_out as Uint32Array;
      (c.unknown as Uint8Array).fill(unknown, from, to);
      let sent = 0, received = 0, retransmits = 0, segments = 0;
      for (let s = from; s < to; s++) {
        const o = outcomeCode(
          state[s],
          states,
          8 * s,
          Math.min(nstates[s], 8),
          skErr[s],
          resetsSent[s],
          resetsReceived[s],
        );
        outcome[s] = o;
        const key = direction[s] * 16 + o;
        if (key < counts.length) counts[key]++;
        else add(tally, key, 1);
        sent += bytesSent[s];
        received += bytesReceived[s];
        retransmits += retrans[s];
        segments += segsOut[s];
      }
      for (let key = 0; key < counts.length; key++) {
        if (counts[key] === 0) continue;
        add(tally, key, counts[key]);
        counts[key] = 0;
      }
      add(tally, SUM_KEYS.bytes_sent, sent);
      add(tally, SUM_KEYS.bytes_received, received);
      add(tally, SUM_KEYS.retransmits, retransmits);
      add(tally, SUM_KEYS.segments_out, segments);
    },
  });
}

function metrics(store: Store): MetricFamily[] {
  const tally = store.tally("tcp_life");
  const connections = [...tally].filter(([key]) => key >= 0).map(([key, value]) => ({
    labels: { direction: DIRECTIONS[key >> 4] ?? "unknown", outcome: OUTCOMES[key & 15] },
    value,
  }));
  const sum = (name: string, help: string, key: number): MetricFamily => ({
    name,
    type: "counter",
    help,
    samples: [{ value: tally.get(key) ?? 0 }],
  });
  return [
    {
      name: "ebpf_server_tcp_connections_total",
      type: "counter",
      help: "TCP connections that ended, by direction and outcome",
      samples: connections,
    },
    sum(
      "ebpf_server_tcp_bytes_sent_total",
      "bytes sent and acknowledged on TCP connections that ended (the kernel's bytes_acked)",
      SUM_KEYS.bytes_sent,
    ),
    sum(
      "ebpf_server_tcp_bytes_received_total",
      "bytes received on TCP connections that ended",
      SUM_KEYS.bytes_received,
    ),
    sum(
      "ebpf_server_tcp_retransmits_total",
      "segments retransmitted on TCP connections that ended",
      SUM_KEYS.retransmits,
    ),
    sum(
      "ebpf_server_tcp_segments_sent_total",
      "segments sent on TCP connections that ended",
      SUM_KEYS.segments_out,
    ),
  ];
}

function statesOf(table: EventTable<Columns>, s: number): number[] {
  const n = Math.min(table.cols.nstates[s], 8);
  return [...table.bytes8("states", s).subarray(0, n)];
}

/** How a connection ended, from what the kernel recorded. */
export function outcomeOf(
  o: { state: number; states: number[]; skErr: number; resetsSent: number; resetsReceived: number },
): typeof OUTCOMES[number] {
  return OUTCOMES[
    outcomeCode(o.state, o.states, 0, o.states.length, o.skErr, o.resetsSent, o.resetsReceived)
  ];
}

const OUTCOME = Object.fromEntries(OUTCOMES.map((o, i) => [o, i])) as Record<
  typeof OUTCOMES[number],
  number
>;

/** {@linkcode outcomeOf} as an index of OUTCOMES, the states being `states[from, from + n)`. */
function outcomeCode(
  state: number,
  states: ArrayLike<number>,
  from: number,
  n: number,
  skErr: number,
  resetsSent: number,
  resetsReceived: number,
): number {
  if (state !== TCP_CLOSE) return OUTCOME.open;
  let established = false;
  for (let i = from; i < from + n && !established; i++) {
    const st = states[i];
    established = st !== 2 && st !== 3 && st !== TCP_CLOSE && st !== 0;
  }
  if (!established) {
    if (skErr === ECONNREFUSED || resetsReceived > 0) return OUTCOME.refused;
    if (skErr === ETIMEDOUT) return OUTCOME.timeout;
    return OUTCOME.closed_before_established;
  }
  if (skErr === ETIMEDOUT) return OUTCOME.timeout;
  if (resetsReceived > 0) return OUTCOME.reset_by_peer;
  if (resetsSent > 0) return OUTCOME.reset_sent; // close() with SO_LINGER 0 also sets ECONNRESET
  if (skErr === ECONNRESET) return OUTCOME.reset_by_peer;
  return OUTCOME.closed;
}

/** How the connection of row `s` ended (worked out once, as the row was written). */
function outcomeAt(table: EventTable<Columns>, s: number): typeof OUTCOMES[number] {
  return OUTCOMES[table.cols.outcome[s]];
}

function address(table: EventTable<Columns>, column: "saddr" | "daddr", s: number): string {
  const bytes = table.bytes16(column, s);
  return table.cols.family[s] === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** Calls of one table state a {@linkcode ConnectFinder} scans before it makes an index. */
const INDEX_AFTER = 16;

/**
 * Finds the connect() event that opened the socket of an outbound connection: the first call
 * of the same socket and pid from 5 ms before the connection's start on, among the next 5000
 * calls, up to one made more than 180 s after the start (connect() returns at most a few
 * minutes after the SYN). One search is a scan; a list's many searches of one state of the
 * connection table use an index of its rows by socket (made once, grown to older rows as
 * asked), with the same answers.
 */
class ConnectFinder {
  /** the connection table's state the index and count are of */
  #table: EventTable | null = null;
  #cols: unknown = null;
  #appended = -1;
  #length = -1;
  #calls = 0;
  /** rows `[#from, #length)` are indexed: bucket of a socket -> its smallest row, row -> next */
  #from = 0;
  #head: Int32Array | null = null;
  #next: Int32Array | null = null;
  /** whether the indexed rows' times never go down, and the latest of them */
  #ordered = true;
  #maxTs = -Infinity;

  /**
   * The connection table's columns as of the last search (a copy of its object, fast to read):
   * the found event's fields read them.
   */
  cols: Record<string, ArrayLike<number>> = {};
  /** the slot of its oldest row, and its slots */
  #first = 0;
  #size = 0;

  /** The slot of the connect() event of row `s` (of `c`, a tcp_life table's columns), or -1. */
  find(c: EventTable<Columns>["cols"], s: number, store: Store): number {
    const start = c.start[s];
    const connections = store.get("connection");
    if (!connections || Number.isNaN(start) || DIRECTIONS[c.direction[s]] !== "outbound") {
      return -1;
    }
    if (
      connections !== this.#table || connections.cols !== this.#cols ||
      connections.appended !== this.#appended || connections.length !== this.#length
    ) {
      this.#table = connections;
      this.#cols = connections.cols;
      this.cols = { ...connections.cols };
      this.#appended = connections.appended;
      this.#length = connections.length;
      this.#first = connections.slot(0);
      this.#size = connections.cols.ts.length;
      this.#calls = 0;
      this.#head = this.#next = null;
    }
    const { ts, sock_lo: sockLo, sock_hi: sockHi, pid: pids } = this.cols;
    // connections.lowerBound(start - 5), its very probes, with the columns at hand
    const at = start - 5, head0 = this.#first, size = this.#size;
    let low = 0, high = this.#length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const row = head0 + mid >= size ? head0 + mid - size : head0 + mid;
      if (ts[row] < at) low = mid + 1;
      else high = mid;
    }
    const first = low;
    const end = Math.min(this.#length, first + 5000);
    if (first >= end) return -1;
    const lo = c.sock_lo[s], hi = c.sock_hi[s], pid = c.pid[s], limit = start + 180_000;
    if (++this.#calls < INDEX_AFTER) return scan(connections, first, end, { lo, hi, pid, limit });
    this.#cover(connections, first);
    // an index answers as the scan does when no row before the one found is later than `limit`
    if (!this.#ordered && this.#maxTs > limit) {
      return scan(connections, first, end, { lo, hi, pid, limit });
    }
    const head = this.#head!, next = this.#next!;
    for (let r = head[bucket(lo, head.length)]; r !== -1 && r < end; r = next[r]) {
      if (r < first) continue;
      const row = head0 + r >= size ? head0 + r - size : head0 + r;
      if (sockLo[row] === lo && sockHi[row] === hi && pids[row] === pid) {
        return ts[row] > limit ? -1 : row;
      }
    }
    return -1;
  }

  /** Indexes the rows from `first` on (those not indexed yet). */
  #cover(connections: EventTable, first: number): void {
    const { ts, sock_lo: sockLo } = this.cols;
    if (!this.#head) {
      this.#head = new Int32Array(1 << 12).fill(-1);
      this.#next = new Int32Array(this.#length);
      this.#from = this.#length;
      this.#ordered = true;
      this.#maxTs = -Infinity;
    }
    if (first >= this.#from) return;
    if (2 * (this.#length - first) > this.#head.length) {
      // grown: every row again into more buckets, the newest first
      let size = this.#head.length;
      while (size < 2 * (this.#length - first)) size *= 2;
      this.#head = new Int32Array(size).fill(-1);
      this.#from = this.#length;
    }
    const head = this.#head, next = this.#next!;
    let later = this.#from < this.#length ? ts[connections.slot(this.#from)] : Infinity;
    // from the newest row to the oldest: each bucket's rows stay in order, smallest first
    for (let r = this.#from - 1; r >= first; r--) {
      const row = connections.slot(r);
      const b = bucket(sockLo[row], head.length);
      next[r] = head[b];
      head[b] = r;
      const t = ts[row];
      if (t > later) this.#ordered = false;
      if (t > this.#maxTs) this.#maxTs = t;
      later = t;
    }
    this.#from = first;
  }
}

/** The bucket of a socket's low word in a table of `size` (a power of two) buckets. */
function bucket(lo: number, size: number): number {
  return (Math.imul(lo, 0x9e3779b1) >>> 0) & (size - 1);
}

/** {@linkcode ConnectFinder}'s search as a scan of rows `[first, end)`. */
function scan(
  connections: EventTable,
  first: number,
  end: number,
  want: { lo: number; hi: number; pid: number; limit: number },
): number {
  const cc = connections.cols as Record<string, ArrayLike<number>>;
  const ts = cc.ts, sockLo = cc.sock_lo, sockHi = cc.sock_hi, pids = cc.pid;
  const { lo, hi, pid, limit } = want;
  // slots follow rows one by one, back to 0 past the end of the columns
  const size = ts.length;
  let row = connections.slot(first);
  for (let i = first; i < end; i++) {
    if (ts[row] > limit) break;
    if (sockLo[row] === lo && sockHi[row] === hi && pids[row] === pid) return row;
    if (++row === size) row = 0;
  }
  return -1;
}

/** A key of the states of row `s` (`by` of the states field), or -1 for more than 6 of them. */
function statesKey(nstates: ArrayLike<number>, states: Uint8Array, s: number): number {
  const n = Math.min(nstates[s], 8);
  if (n > 6) return -1;
  let key = n;
  for (let i = 0; i < n; i++) key = key * 256 + states[8 * s + i];
  return key;
}

/**
 * A tcp_life event's fields: `toJson` and the lists' JSON writer both come from them. The
 * remote address is formatted once per event (IPv4 ones are kept by address).
 */
const toJson = eventJson<Columns>((table, store) => {
  // a copy of the columns' object: its properties are fast to read (the table's own object,
  // made a column at a time, is a dictionary)
  const c = { ...table.cols };
  const ts = c.ts, start = c.start, pid = c.pid, cgroup = c.cgroup, family = c.family;
  const sport = c.sport, dport = c.dport, skErr = c.sk_err, unknown = c.unknown;
  const saddr = c.saddr as Uint8Array, daddr = c.daddr as Uint8Array;
  const states = c.states as Uint8Array;
  const ipKey = (bytes: Uint8Array, s: number) => family[s] === 4 ? ipv4Key(bytes, s) : -1;
  const endpointKey = (bytes: Uint8Array, port: ArrayLike<number>, s: number) =>
    family[s] === 4 ? ipv4Key(bytes, s) * 65536 + port[s] : -1;
  const v4 = ipv4Texts();
  let remote: string | null = null;
  /** local_ip or remote_ip (`address`, IPv4 ones formatted once) */
  const ip = (column: "saddr" | "daddr", s: number) =>
    family[s] === 4 ? v4(column === "saddr" ? saddr : daddr, s) : address(table, column, s);
  const remoteIp = (s: number) => remote ??= ip("daddr", s);
  // the connect() events, and their columns as of the last search
  const connects = new ConnectFinder();
  return {
    begin() {
      remote = null;
    },
    fields: [
      ...baseFields("tcp_life", table as unknown as EventTable, store),
      intField("cgroup_id", (s) => cgroup[s]),
      attributionFields(table as unknown as EventTable, store),
      field("direction", (s) => DIRECTIONS[c.direction[s]] ?? "unknown", (s) => c.direction[s]),
      field(
        "address_family",
        (s) => family[s] === 4 ? "AF_INET" : "AF_INET6",
        (s) => family[s] === 4 ? 0 : 1,
      ),
      field("local_ip", (s) => ip("saddr", s), (s) => ipKey(saddr, s)),
      intField("local_port", (s) => sport[s]),
      field("remote_ip", remoteIp, (s) => ipKey(daddr, s)),
      intField("remote_port", (s) => dport[s]),
      endpointField(
        "local",
        (s) => ip("saddr", s),
        (s) => sport[s],
        (s) => endpointKey(saddr, sport, s),
      ),
      endpointField(
        "remote",
        remoteIp,
        (s) => dport[s],
        (s) => endpointKey(daddr, dport, s),
      ),
      field("remote_name", (s) =>
        destinationName(store, remoteIp(s), {
          pid: pid[s],
          cgroupId: cgroup[s],
          tsMs: Number.isNaN(start[s]) ? ts[s] : start[s],
        })),
      timeField("start_time", (s) => Number.isNaN(start[s]) ? null : start[s]),
      microsField(
        "duration_ms",
        (s) => Number.isNaN(start[s]) ? null : Math.max(0, ts[s] - start[s]),
      ),
      intField("bytes_sent", (s) => c.bytes_sent[s]),
      intField("bytes_received", (s) => c.bytes_received[s]),
      intField("srtt_us", (s) => c.srtt[s]),
      intField("retransmits", (s) => c.retrans[s]),
      intField("segments_out", (s) => c.segs_out[s]),
      field(
        "resets_sent",
        (s) => unknown[s] & UNKNOWN_RESETS_SENT ? null : c.resets_sent[s],
        (s) => unknown[s] & UNKNOWN_RESETS_SENT ? otherKey(0) : c.resets_sent[s],
      ),
      field(
        "resets_received",
        (s) => unknown[s] & UNKNOWN_RESETS_RECEIVED ? null : c.resets_received[s],
        (s) => unknown[s] & UNKNOWN_RESETS_RECEIVED ? otherKey(0) : c.resets_received[s],
      ),
      field(
        "states",
        (s) => statesOf(table, s).map((st) => STATE_NAMES[st] ?? `STATE_${st}`),
        (s) => statesKey(c.nstates, states, s),
      ),
      intField("state_changes", (s) => c.nstates[s]),
      field("state", (s) => STATE_NAMES[c.state[s]] ?? `STATE_${c.state[s]}`, (s) => c.state[s]),
      field("error", (s) => skErr[s] === 0 ? null : resultName(-skErr[s]), (s) => skErr[s]),
      field("outcome", (s) => outcomeAt(table, s), (s) => c.outcome[s]),
      object("connect", (s) => connects.find(c, s, store), [
        field(
          "result",
          (r) => resultName(connects.cols.ret[r]),
          (r) => connects.cols.ret[r] + 2 ** 31,
        ),
        field("latency_ns", (r) => connects.cols.latency[r]),
        timeField("wall_time", (r) => connects.cols.ts[r]),
      ]),
    ],
  };
});

/** The connections open now, read with the iterator program (same record as at close). */
export function openConnections(
  obj: BpfObject,
  store: Store,
  { clock, unknownFields }: { clock: Clock; unknownFields?: ReadonlySet<string> },
) {
  const unknown = unknownBits(unknownFields);
  const at = layoutOf(obj);
  const bytes = obj.readIterator("tcp_life_open");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = Math.floor(bytes.length / at.$size);
  const table = new EventTable<Columns>("tcp_life_open", columns, Math.max(count, 1));
  for (let i = 0; i < count; i++) {
    writeRow(table, table.append(), {
      view,
      bytes,
      r: i * at.$size,
      at,
      strings: store.strings,
      attrs: attributionOf(store),
      clock,
      unknown,
    });
  }
  // the fields are TcpLifeEvent's (event_json_test holds them to it)
  const out: z.infer<typeof TcpLifeEvent>[] = [];
  for (let i = 0; i < table.length; i++) {
    out.push(toJson(table, table.slot(i), store) as z.infer<typeof TcpLifeEvent>);
  }
  return out;
}

type Cols = Record<string, ArrayLike<number>>;
const ipVersion = (cols: Cols) => (s: number) => cols.family[s];

/** Outcomes counted as failures by top-k. */
const FAILED_OUTCOMES = new Set([
  "refused",
  "timeout",
  "reset_by_peer",
  "closed_before_established",
]);

const filters: Record<string, FilterField> = {
  ...commonFilters(),
  source: ipField("the local address", { columns: ["saddr"], version: ipVersion }),
  destination: ipField("the remote address", { columns: ["daddr"], version: ipVersion }),
  port: portField("the local or remote port", { columns: ["sport", "dport"] }),
  family: codeField("the address family (ipv4 or AF_INET, ipv6 or AF_INET6)", {
    example: "ipv4",
    parse: familyParse,
    key: (cols) => (s) => cols.family[s] === 4 ? AF_INET : AF_INET6,
  }),
  direction: codeField("outbound (this host connected), inbound (it accepted) or unknown", {
    example: "outbound",
    parse: namesParse({ unknown: 0, outbound: 1, inbound: 2 }),
    key: (cols) => (s) => cols.direction[s],
  }),
  outcome: codeField(`how it ended: ${OUTCOMES.join(", ")}`, {
    example: "refused",
    parse: namesParse(Object.fromEntries(OUTCOMES.map((o, i) => [o, i]))),
    key: (cols) => (s) => cols.outcome[s],
  }),
};

const groups = {
  ...commonGroups(),
  remote: simpleGroup("the remote ip:port", (table) => (s) => {
    const t = table as unknown as EventTable<Columns>;
    return joinHostPort(address(t, "daddr", s), t.cols.dport[s]);
  }),
  remote_ip: simpleGroup(
    "the remote address",
    (table) => (s) => address(table as unknown as EventTable<Columns>, "daddr", s),
  ),
  port: simpleGroup("the remote port", (table) => {
    const col = table.cols.dport as Uint16Array;
    return (s) => col[s];
  }),
  local_port: simpleGroup("the local port", (table) => {
    const col = table.cols.sport as Uint16Array;
    return (s) => col[s];
  }),
  direction: simpleGroup("outbound, inbound or unknown", (table) => {
    const col = table.cols.direction as Uint8Array;
    return (s) => DIRECTIONS[col[s]] ?? "unknown";
  }),
  outcome: simpleGroup("how it ended", (table) => {
    const col = table.cols.outcome as Uint8Array;
    return (s) => OUTCOMES[col[s]];
  }),
};

export const tcpLife = defineProgram<Columns>({
  name: "tcp_life",
  description:
    "The life of every TCP connection, recorded when it closes: owner, direction, duration, bytes each way, RTT, retransmits, resets, states walked and how it ended; and the connections open now.",
  columns,
  eventSchema: TcpLifeEvent,
  summarySchema: TcpLifeSummary,
  optionalHooks: {
    tcp_life_send_reset: ["resets_sent"],
    tcp_life_receive_reset: ["resets_received"],
  },
  kernelFeatures: [
    {
      name: "send_reset_context",
      probe: { type: "struct trace_event_raw_tcp_send_reset" },
      present: "tcp:tcp_send_reset read with its own context (trace_event_raw_tcp_send_reset)",
      absent:
        "tcp:tcp_send_reset read with the tcp_event_sk_skb class context it has on this kernel",
    },
    {
      name: "destroy_sock_family",
      probe: { type: "struct trace_event_raw_tcp_event_sk", member: "family" },
      present: "the address family from tcp:tcp_destroy_sock",
      absent: "the address family from the socket (tcp:tcp_destroy_sock has no family field)",
    },
  ],
  filters,
  groups,
  failed(table) {
    const col = table.cols.outcome as Uint8Array;
    return (s) => FAILED_OUTCOMES.has(OUTCOMES[col[s]]);
  },
  configure(obj, self) {
    obj.setConstU32("self_port", self.port);
    obj.setConstU32("self_netns", self.netns);
  },
  batchDecoder,
  toJson,
  summarize,
  summarizeSliced,
  metrics,
  routes(app, ctx) {
    app.openapi(
      createRoute({
        method: "get",
        path: "/api/programs/tcp_life/open",
        operationId: "listOpenTcpConnections",
        tags: ["tcp_life"],
        summary: "TCP connections open now (in the server's network namespace), with live counters",
        responses: {
          200: {
            description: "open connections",
            content: { "application/json": { schema: OpenConnections } },
          },
          503: errorContent("tcp_life is not running"),
        },
      }),
      (c) => {
        const obj = ctx.manager.object("tcp_life");
        if (!obj) {
          return c.json(
            { error: "tcp_life is not running; POST /api/programs/tcp_life/start" },
            503,
          );
        }
        const connections = openConnections(obj, ctx.store, {
          clock: ctx.manager.clock,
          unknownFields: ctx.manager.unknownFields("tcp_life"),
        });
        return c.json({ count: connections.length, connections }, 200);
      },
    );
  },
});
