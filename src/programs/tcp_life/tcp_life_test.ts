import assert from "node:assert/strict";
import { readAsset } from "../../assets.ts";
import { BpfObject } from "../../ffi/shim.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import {
  BOOT_WALL_MS,
  btfOffsets,
  clock,
  drained,
  random,
  recordArea,
  withSummaryBase,
} from "../_testing.ts";
import { batchDecoderOf } from "../batch.ts";
import type { z } from "@hono/zod-openapi";
import { columns, FIELDS, outcomeOf, tcpLife } from "./mod.ts";
import type { SummaryBase } from "../schema.ts";
import type { TcpLifeEvent, TcpLifeSummary } from "./schema.ts";

const AF_INET = 2;
const AF_INET6 = 10;

// TCP states as the kernel numbers them (include/net/tcp_states.h).
const ESTABLISHED = 1;
const SYN_SENT = 2;
const SYN_RECV = 3;
const FIN_WAIT1 = 4;
const FIN_WAIT2 = 5;
const CLOSE = 7;
const CLOSE_WAIT = 8;
const LAST_ACK = 9;
const CLOSING = 11;
const BOUND_INACTIVE = 13;

const ECONNRESET = 104;
const ETIMEDOUT = 110;
const ECONNREFUSED = 111;

const OUTBOUND = 1;
const INBOUND = 2;

/** What the kernel side writes into one tcp_life_event. */
interface RawRecord {
  tsNs: bigint;
  startNs: bigint;
  bytesSent: bigint;
  bytesReceived: bigint;
  cgroupId: bigint;
  sockId: bigint;
  pid: number;
  srttUs: number;
  totalRetrans: number;
  skErr: number;
  sport: number;
  dport: number;
  family: number;
  direction: number;
  state: number;
  resetsSent: number;
  resetsReceived: number;
  nstates: number;
  hasOwner: number;
  segsOut: number;
  states: number[];
  saddr: number[];
  daddr: number[];
  comm: string;
}

/** The JSON fields the tests read. */
type TcpLifeJson = z.infer<typeof TcpLifeEvent>;

const encoder = new TextEncoder();

function openObject(): BpfObject {
  return new BpfObject(readAsset("bpf/tcp_life.bpf.o"), "tcp_life");
}

const FIELD_NAMES = [
  "ts_ns",
  "start_ns",
  "bytes_sent",
  "bytes_received",
  "cgroup_id",
  "sock_id",
  "pid",
  "srtt_us",
  "total_retrans",
  "sk_err",
  "sport",
  "dport",
  "family",
  "direction",
  "state",
  "resets_sent",
  "resets_received",
  "nstates",
  "has_owner",
  "segs_out",
  "states",
  "saddr",
  "daddr",
  "comm",
] as const;

/** The struct's offsets, read from the object's BTF independently of the decoder. */
function offsets(obj: BpfObject) {
  return btfOffsets(obj, "tcp_life_event", FIELD_NAMES);
}

/**
 * A record at a non-zero offset of a buffer that itself starts inside a larger ArrayBuffer, with
 * junk (0xa5) in every byte the record does not write, as a drained ring buffer would have.
 */
function encode(obj: BpfObject, rec: RawRecord) {
  const { at, size } = offsets(obj);
  const { bytes, view, r } = recordArea(size);
  view.setBigUint64(r + at.ts_ns, rec.tsNs, true);
  view.setBigUint64(r + at.start_ns, rec.startNs, true);
  view.setBigUint64(r + at.bytes_sent, rec.bytesSent, true);
  view.setBigUint64(r + at.bytes_received, rec.bytesReceived, true);
  view.setBigUint64(r + at.cgroup_id, rec.cgroupId, true);
  view.setBigUint64(r + at.sock_id, rec.sockId, true);
  view.setUint32(r + at.pid, rec.pid, true);
  view.setUint32(r + at.srtt_us, rec.srttUs, true);
  view.setUint32(r + at.total_retrans, rec.totalRetrans, true);
  view.setUint32(r + at.sk_err, rec.skErr, true);
  view.setUint16(r + at.sport, rec.sport, true);
  view.setUint16(r + at.dport, rec.dport, true);
  view.setUint16(r + at.family, rec.family, true);
  bytes[r + at.direction] = rec.direction;
  bytes[r + at.state] = rec.state;
  bytes[r + at.resets_sent] = rec.resetsSent;
  bytes[r + at.resets_received] = rec.resetsReceived;
  bytes[r + at.nstates] = rec.nstates;
  bytes[r + at.has_owner] = rec.hasOwner;
  view.setUint32(r + at.segs_out, rec.segsOut, true);
  // Entries past nstates stay junk: the decoder must not show them.
  bytes.set(rec.states.slice(0, 8), r + at.states);
  // The kernel zeroes the record: an IPv4 address leaves 12 zero bytes after it.
  bytes.fill(0, r + at.saddr, r + at.saddr + 16);
  bytes.set(rec.saddr, r + at.saddr);
  bytes.fill(0, r + at.daddr, r + at.daddr + 16);
  bytes.set(rec.daddr, r + at.daddr);
  const comm = encoder.encode(rec.comm);
  bytes.set(comm, r + at.comm);
  if (comm.length < 16) bytes[r + at.comm + comm.length] = 0; // junk stays after the NUL
  return { view, bytes, offset: r, size };
}

type Ctx = { obj: BpfObject; store: Store; table: EventTable<typeof columns> };

function setup(): Ctx {
  const obj = openObject();
  const store = new Store(100);
  const table = store.table("tcp_life", columns);
  return { obj, store, table };
}

/** Decodes `rec` into the store and returns the JSON of the stored row. */
function decodeOne(ctx: Ctx, rec: RawRecord): TcpLifeJson {
  const decode = batchDecoderOf(tcpLife, { ...ctx, clock } as never);
  assert.deepEqual(decode(drained(encode(ctx.obj, rec))), { events: 1, rejected: 0 });
  const slot = ctx.table.slot(ctx.table.length - 1);
  return tcpLife.toJson(
    ctx.table as unknown as EventTable,
    slot,
    ctx.store,
  ) as unknown as TcpLifeJson;
}

/** An outbound IPv4 connection that closed normally: 10.0.0.5:43210 -> 93.184.216.34:443. */
const BASE: RawRecord = {
  tsNs: 1_500_250_000n, // 1.50025 s after boot
  startNs: 1_000_000_000n, // 1 s after boot: it lived 500.25 ms
  bytesSent: 100_002n,
  bytesReceived: 5_001n,
  cgroupId: 0x1_0000_2345n, // above 32 bits
  sockId: 0xffff_8880_1234_5678n,
  pid: 4242,
  srttUs: 57,
  totalRetrans: 0,
  skErr: 0,
  sport: 43210,
  dport: 443,
  family: AF_INET,
  direction: OUTBOUND,
  state: CLOSE,
  resetsSent: 0,
  resetsReceived: 0,
  nstates: 6,
  hasOwner: 1,
  segsOut: 80,
  states: [CLOSE, SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE],
  saddr: [10, 0, 0, 5],
  daddr: [93, 184, 216, 34],
  comm: "curl",
};

/** 2001:db8::1 and ::1 as 16 bytes. */
const V6_DOC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_LOOPBACK = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

// ---- outcomeOf ----------------------------------------------------------------------------

const CLOSED_LIFE = {
  state: CLOSE,
  states: [CLOSE, SYN_SENT, ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE],
  skErr: 0,
  resetsSent: 0,
  resetsReceived: 0,
};

Deno.test("outcomeOf: a normal close of either side is closed", () => {
  assert.equal(outcomeOf(CLOSED_LIFE), "closed");
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [SYN_RECV, ESTABLISHED, CLOSE_WAIT, LAST_ACK, CLOSE] }),
    "closed",
  );
  // simultaneous close walks CLOSING
  assert.equal(
    outcomeOf({
      ...CLOSED_LIFE,
      states: [CLOSE, SYN_SENT, ESTABLISHED, FIN_WAIT1, CLOSING, CLOSE],
    }),
    "closed",
  );
  // a connection older than the program: only its last states are known
  assert.equal(outcomeOf({ ...CLOSED_LIFE, states: [ESTABLISHED, CLOSE] }), "closed");
});

Deno.test("outcomeOf: refused by an RST in SYN_SENT or by ECONNREFUSED", () => {
  const synSent = { ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, CLOSE] };
  assert.equal(outcomeOf({ ...synSent, resetsReceived: 1 }), "refused");
  assert.equal(outcomeOf({ ...synSent, skErr: ECONNREFUSED }), "refused");
  assert.equal(outcomeOf({ ...synSent, skErr: ECONNREFUSED, resetsReceived: 1 }), "refused");
  // sock_error() may have cleared sk_err already: the RST alone says it
  assert.equal(outcomeOf({ ...synSent, skErr: 0, resetsReceived: 2 }), "refused");
});

Deno.test("outcomeOf: timeout before and after the handshake", () => {
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, CLOSE], skErr: ETIMEDOUT }),
    "timeout",
  );
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, ESTABLISHED, CLOSE], skErr: ETIMEDOUT }),
    "timeout",
  );
  // a timed-out established connection may have sent a reset on its way out
  assert.equal(
    outcomeOf({
      ...CLOSED_LIFE,
      states: [SYN_RECV, ESTABLISHED, CLOSE],
      skErr: ETIMEDOUT,
      resetsSent: 1,
    }),
    "timeout",
  );
});

Deno.test("outcomeOf: reset_by_peer from an RST received or ECONNRESET alone", () => {
  const established = { ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, ESTABLISHED, CLOSE] };
  assert.equal(outcomeOf({ ...established, resetsReceived: 1 }), "reset_by_peer");
  assert.equal(
    outcomeOf({ ...established, resetsReceived: 1, skErr: ECONNRESET }),
    "reset_by_peer",
  );
  assert.equal(outcomeOf({ ...established, skErr: ECONNRESET }), "reset_by_peer");
  // both ways: the peer's RST counts first
  assert.equal(outcomeOf({ ...established, resetsReceived: 1, resetsSent: 1 }), "reset_by_peer");
});

Deno.test("outcomeOf: reset_sent, also with the ECONNRESET that a linger-0 close sets", () => {
  const established = { ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, ESTABLISHED, CLOSE] };
  assert.equal(outcomeOf({ ...established, resetsSent: 1 }), "reset_sent");
  assert.equal(outcomeOf({ ...established, resetsSent: 1, skErr: ECONNRESET }), "reset_sent");
  assert.equal(
    outcomeOf({ ...established, states: [SYN_RECV, ESTABLISHED, CLOSE], resetsSent: 3 }),
    "reset_sent",
  );
});

Deno.test("outcomeOf: closed_before_established without an error or reset", () => {
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, CLOSE] }),
    "closed_before_established",
  );
  // a reset we sent ourselves in SYN_SENT is no refusal
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, CLOSE], resetsSent: 1 }),
    "closed_before_established",
  );
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [CLOSE, SYN_SENT, CLOSE], skErr: ECONNRESET }),
    "closed_before_established",
  );
  assert.equal(
    outcomeOf({ ...CLOSED_LIFE, states: [SYN_RECV, CLOSE] }),
    "closed_before_established",
  );
});

Deno.test("outcomeOf: anything not in CLOSE is open, whatever its counters", () => {
  for (const state of [ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, CLOSE_WAIT, LAST_ACK]) {
    assert.equal(
      outcomeOf({ ...CLOSED_LIFE, state, states: [CLOSE, SYN_SENT, ESTABLISHED] }),
      "open",
      `state ${state}`,
    );
  }
  assert.equal(
    outcomeOf({
      state: ESTABLISHED,
      states: [SYN_RECV, ESTABLISHED],
      skErr: ECONNRESET,
      resetsSent: 1,
      resetsReceived: 1,
    }),
    "open",
  );
  assert.equal(outcomeOf({ ...CLOSED_LIFE, state: ESTABLISHED, states: [] }), "open");
});

// ---- decoder and toJson -------------------------------------------------------------------

Deno.test("tcp_life decodes an outbound IPv4 connection that closed normally", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, BASE);
  assert.deepEqual(json, {
    type: "tcp_life",
    wall_time: "2026-11-25T03:04:06.500250Z",
    timestamp_ms: BOOT_WALL_MS + 1500.25,
    pid: 4242,
    command: "curl",
    cgroup_id: 0x1_0000_2345,
    cgroup_path: null,
    unit: null,
    container_id: null,
    container_runtime: null,
    direction: "outbound",
    address_family: "AF_INET",
    local_ip: "10.0.0.5",
    local_port: 43210,
    remote_ip: "93.184.216.34",
    remote_port: 443,
    local: "10.0.0.5:43210",
    remote: "93.184.216.34:443",
    remote_name: null,
    start_time: "2026-11-25T03:04:06.000000Z",
    duration_ms: 500.25,
    bytes_sent: 100_002,
    bytes_received: 5_001,
    srtt_us: 57,
    retransmits: 0,
    segments_out: 80,
    resets_sent: 0,
    resets_received: 0,
    states: ["CLOSE", "SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"],
    state_changes: 6,
    state: "CLOSE",
    error: null,
    outcome: "closed",
    connect: null, // no connection table in this store
  });
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);
  assert.equal(ctx.store.size, 1);
});

Deno.test("tcp_life decodes an inbound IPv6 connection reset by its peer", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    tsNs: 7_000_000_001_000n, // 7000.000001 s
    startNs: 6_999_000_000_000n,
    bytesSent: 2n ** 40n, // above 32 bits
    bytesReceived: 2n ** 33n + 7n,
    family: AF_INET6,
    direction: INBOUND,
    sport: 8080,
    dport: 51000,
    saddr: V6_LOOPBACK,
    daddr: V6_DOC,
    states: [SYN_RECV, ESTABLISHED, CLOSE],
    nstates: 3,
    resetsReceived: 1,
    skErr: ECONNRESET,
    comm: "systemd-resolve", // 15 bytes, the longest comm
  });
  assert.equal(json.direction, "inbound");
  assert.equal(json.address_family, "AF_INET6");
  assert.equal(json.local_ip, "::1");
  assert.equal(json.local_port, 8080);
  assert.equal(json.remote_ip, "2001:db8::1");
  assert.equal(json.remote_port, 51000);
  assert.equal(json.local, "[::1]:8080");
  assert.equal(json.remote, "[2001:db8::1]:51000");
  assert.equal(json.wall_time, "2026-11-25T05:00:45.000001Z");
  assert.equal(json.start_time, "2026-11-25T05:00:44.000000Z");
  // Unix ms as a double resolve about 0.24 µs at this date: printed to the microsecond
  assert.equal(json.duration_ms, 1000.001);
  assert.equal(json.timestamp_ms, Date.UTC(2026, 10, 25, 5, 0, 45) + 0.001);
  assert.equal(json.bytes_sent, 2 ** 40);
  assert.equal(json.bytes_received, 2 ** 33 + 7);
  assert.deepEqual(json.states, ["SYN_RECV", "ESTABLISHED", "CLOSE"]);
  assert.equal(json.state_changes, 3);
  assert.equal(json.resets_received, 1);
  assert.equal(json.error, "ECONNRESET");
  assert.equal(json.outcome, "reset_by_peer");
  assert.equal(json.command, "systemd-resolve");
  assert.equal(json.connect, null, "inbound connections have no connect()");
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);
});

Deno.test("tcp_life decodes an IPv4-mapped IPv6 socket in its ::ffff: form", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7];
  const json = decodeOne(ctx, { ...BASE, family: AF_INET6, saddr: mapped, daddr: V6_DOC });
  assert.equal(json.address_family, "AF_INET6");
  assert.equal(json.local_ip, "::ffff:192.0.2.7");
  assert.equal(json.local, "[::ffff:192.0.2.7]:43210");
  assert.equal(json.remote, "[2001:db8::1]:443");
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);
});

Deno.test("tcp_life: a connection older than the program has null start and unknown direction", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    startNs: 0n,
    direction: 0,
    states: [ESTABLISHED, CLOSE],
    nstates: 2,
    hasOwner: 0, // pid, cgroup and comm hold junk: they must not show
    pid: 999,
    comm: "junk",
  });
  assert.equal(json.start_time, null);
  assert.equal(json.duration_ms, null);
  assert.equal(json.direction, "unknown");
  assert.equal(json.pid, 0);
  assert.equal(json.command, "");
  assert.equal(json.cgroup_id, 0);
  assert.deepEqual(json.states, ["ESTABLISHED", "CLOSE"]);
  assert.equal(json.outcome, "closed");
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);
});

Deno.test("tcp_life names states, keeps the last 8 of many and numbers unknown ones", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    states: [ESTABLISHED, FIN_WAIT1, CLOSING, 20, BOUND_INACTIVE, 0, LAST_ACK, CLOSE],
    nstates: 200,
  });
  assert.deepEqual(json.states, [
    "ESTABLISHED",
    "FIN_WAIT1",
    "CLOSING",
    "STATE_20",
    "BOUND_INACTIVE",
    "UNKNOWN",
    "LAST_ACK",
    "CLOSE",
  ]);
  assert.equal(json.state_changes, 200);
  assert.equal(json.state, "CLOSE");

  // fewer than 8: the junk after them is not shown
  const few = decodeOne(ctx, { ...BASE, states: [CLOSE, SYN_SENT], nstates: 2 });
  assert.deepEqual(few.states, ["CLOSE", "SYN_SENT"]);
  const none = decodeOne(ctx, { ...BASE, states: [], nstates: 0, startNs: 0n });
  assert.deepEqual(none.states, []);
  assert.equal(none.state_changes, 0);
  for (const j of [json, few, none]) assert.deepEqual(tcpLife.eventSchema.parse(j), j);
});

Deno.test("tcp_life: outcomes and error names of refused, timed out and reset records", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const cases: [Partial<RawRecord>, string, string | null][] = [
    [
      { states: [CLOSE, SYN_SENT, CLOSE], nstates: 3, skErr: ECONNREFUSED, resetsReceived: 1 },
      "refused",
      "ECONNREFUSED",
    ],
    [{ states: [CLOSE, SYN_SENT, CLOSE], nstates: 3, skErr: ETIMEDOUT }, "timeout", "ETIMEDOUT"],
    [
      {
        states: [CLOSE, SYN_SENT, ESTABLISHED, CLOSE],
        nstates: 4,
        skErr: ECONNRESET,
        resetsSent: 1,
      },
      "reset_sent",
      "ECONNRESET",
    ],
    [{ states: [CLOSE, SYN_SENT, CLOSE], nstates: 3 }, "closed_before_established", null],
    [{ skErr: 999 }, "closed", "E999"],
  ];
  for (const [rec, outcome, error] of cases) {
    const json = decodeOne(ctx, { ...BASE, ...rec });
    assert.equal(json.outcome, outcome, JSON.stringify(rec));
    assert.equal(json.error, error, JSON.stringify(rec));
    assert.deepEqual(tcpLife.eventSchema.parse(json), json);
  }
});

Deno.test("tcp_life: a record not in CLOSE (the open snapshot's) is open", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    state: ESTABLISHED,
    states: [CLOSE, SYN_SENT, ESTABLISHED],
    nstates: 3,
  });
  assert.equal(json.state, "ESTABLISHED");
  assert.equal(json.outcome, "open");
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);
});

Deno.test("tcp_life rejects a short record without storing a row", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const decode = batchDecoderOf(tcpLife, { ...ctx, clock } as never);
  const record = encode(ctx.obj, BASE);
  const result = decode(drained({ ...record, size: record.size - 1 }));
  assert.equal(result.events, 0);
  assert.equal(result.rejected, 1);
  assert.match(result.error ?? "", /tcp_life_event records shorter than/);
  assert.equal(ctx.table.length, 0);
  assert.equal(ctx.store.size, 0);
});

Deno.test("tcp_life: 1000 records in one batch (the column writer's chunks of 256 and a part) give the rows one at a time gives", () => {
  const rnd = random(14);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  const records: RawRecord[] = Array.from({ length: 1000 }, (_, i) => {
    const v6 = rnd() < 0.3;
    return {
      ...BASE,
      tsNs: BigInt(2_000_000_000 + i * 1000),
      startNs: rnd() < 0.1 ? 0n : BigInt(1_000_000_000 + i),
      bytesSent: BigInt(Math.floor(rnd() * 2 ** 40)),
      bytesReceived: BigInt(i),
      cgroupId: BigInt(1 + Math.floor(rnd() * 4)),
      sockId: 0xffff_8880_0000_0000n + BigInt(i),
      pid: 1000 + Math.floor(rnd() * 5),
      srttUs: i,
      totalRetrans: i % 7,
      skErr: pick([0, ECONNRESET, ETIMEDOUT, ECONNREFUSED]),
      sport: 1024 + i,
      dport: pick([80, 443, 5432]),
      family: v6 ? AF_INET6 : AF_INET,
      direction: pick([OUTBOUND, INBOUND, 0]),
      resetsReceived: rnd() < 0.2 ? 1 : 0,
      // runs of a command: the same for a while, then another; no owner now and then
      hasOwner: rnd() < 0.1 ? 0 : 1,
      comm: ["curl", "psql", "nginx"][Math.floor(i / 37) % 3],
      saddr: v6 ? V6_DOC : [10, 0, (i >> 8) & 255, i & 255],
      daddr: v6 ? V6_LOOPBACK : [127, 0, 0, 1],
    };
  });
  const batch = { obj: openObject(), store: new Store(2000) } as Ctx;
  using _obj = batch.obj;
  batch.table = batch.store.table("tcp_life", columns);
  const decode = batchDecoderOf(tcpLife, { ...batch, clock } as never);
  const encoded = records.map((rec) => encode(batch.obj, rec));
  assert.deepEqual(decode(drained(...encoded)), { events: 1000, rejected: 0 });
  const single = { obj: batch.obj, store: new Store(2000) } as Ctx;
  single.table = single.store.table("tcp_life", columns);
  for (let i = 0; i < records.length; i++) {
    const one = decodeOne(single, records[i]);
    const s = batch.table.slot(i);
    const row = tcpLife.toJson(batch.table as unknown as EventTable, s, batch.store);
    assert.deepEqual(row, one, `record ${i}`);
    // and what the record held, not only the same answer twice
    const rec = records[i];
    assert.equal(one.pid, rec.hasOwner ? rec.pid : 0, `record ${i} pid`);
    assert.equal(one.command, rec.hasOwner ? rec.comm : "", `record ${i} command`);
    assert.equal(one.local_port, rec.sport, `record ${i} port`);
    assert.equal(one.bytes_sent, Number(rec.bytesSent), `record ${i} bytes`);
    assert.equal(one.srtt_us, rec.srttUs, `record ${i} srtt`);
  }
});

Deno.test("tcp_life: the decoder's field sizes match the BTF of tcp_life_event", () => {
  using obj = openObject();
  const sizes: Record<string, number> = FIELDS;

  const size = obj.structSize("tcp_life_event");
  const spans: [number, number][] = [];
  for (const [name, bytes] of Object.entries(sizes)) {
    const m = obj.member("tcp_life_event", name);
    assert.equal(m.size, bytes, `tcp_life_event.${name} size`);
    assert.ok(m.offset + m.size <= size, `${name} inside the struct`);
    if (bytes <= 8) assert.equal(m.offset % bytes, 0, `${name} naturally aligned`);
    spans.push([m.offset, m.offset + m.size]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i][0] >= spans[i - 1][1], "no overlap");
});

Deno.test("tcp_life joins an outbound record with its connect() event by socket and pid", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const connectionColumns = {
    ret: "i32",
    latency: "f64",
    sock_lo: "u32",
    sock_hi: "u32",
  } as const;
  const conns = ctx.store.table("connection", connectionColumns);
  const sockLo = Number(BASE.sockId & 0xffff_ffffn);
  const sockHi = Number(BASE.sockId >> 32n);
  const startMs = BOOT_WALL_MS + 1000;
  // [ts, pid, sock_lo, ret]: another socket, another pid, then the match
  const rows: [number, number, number, number][] = [
    [startMs + 0.01, BASE.pid, sockLo + 8, -115],
    [startMs + 0.02, BASE.pid + 1, sockLo, -115],
    [startMs + 0.03, BASE.pid, sockLo, -115],
  ];
  for (const [ts, pid, lo, ret] of rows) {
    const s = ctx.store.append(conns as unknown as EventTable);
    conns.cols.ts[s] = ts;
    conns.cols.pid[s] = pid;
    conns.cols.sock_lo[s] = lo;
    conns.cols.sock_hi[s] = sockHi;
    conns.cols.ret[s] = ret;
    conns.cols.latency[s] = 1234;
  }
  const json = decodeOne(ctx, BASE);
  assert.deepEqual(json.connect, {
    result: "EINPROGRESS",
    latency_ns: 1234,
    wall_time: "2026-11-25T03:04:06.000030Z",
  });
  assert.deepEqual(tcpLife.eventSchema.parse(json), json);

  // inbound connections and unknown starts are never joined
  assert.equal(decodeOne(ctx, { ...BASE, direction: INBOUND }).connect, null);
  assert.equal(decodeOne(ctx, { ...BASE, startNs: 0n }).connect, null);
  // another socket: no join
  assert.equal(decodeOne(ctx, { ...BASE, sockId: BASE.sockId + 16n }).connect, null);
});

// ---- summarize ----------------------------------------------------------------------------

/** What summarize adds to the fields every summary has. */
type Summary = Omit<z.infer<typeof TcpLifeSummary>, keyof z.infer<typeof SummaryBase>>;

Deno.test("tcp_life.summarize counts connections, bytes, outcomes, remotes and processes", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const ms = 1_000_000n;
  const web = { daddr: [93, 184, 216, 34], dport: 443 };
  const db = { family: AF_INET6, saddr: V6_LOOPBACK, daddr: V6_LOOPBACK, dport: 5432 };
  const rows: Partial<RawRecord>[] = [
    // curl (pid 100): two closed and one reset_by_peer to the web server
    { pid: 100, ...web, bytesSent: 1000n, bytesReceived: 200n, segsOut: 10, totalRetrans: 1 },
    { pid: 100, ...web, bytesSent: 3000n, bytesReceived: 400n, segsOut: 30, totalRetrans: 0 },
    {
      pid: 100,
      ...web,
      bytesSent: 500n,
      bytesReceived: 0n,
      segsOut: 10,
      totalRetrans: 4,
      states: [CLOSE, SYN_SENT, ESTABLISHED, CLOSE],
      nstates: 4,
      resetsReceived: 1,
      skErr: ECONNRESET,
    },
    // psql (pid 200): one refused to the database, no bytes, no segments of data
    {
      pid: 200,
      comm: "psql",
      ...db,
      bytesSent: 0n,
      bytesReceived: 0n,
      segsOut: 0,
      totalRetrans: 0,
      states: [CLOSE, SYN_SENT, CLOSE],
      nstates: 3,
      skErr: ECONNREFUSED,
      resetsReceived: 1,
    },
    // a connection older than the program: no owner, no start (no duration)
    {
      hasOwner: 0,
      startNs: 0n,
      direction: 0,
      ...web,
      bytesSent: 7n,
      bytesReceived: 9n,
      segsOut: 0,
      totalRetrans: 0,
      states: [ESTABLISHED, CLOSE],
      nstates: 2,
    },
  ];
  // row i closes at (i+1)*100 ms and lived (i+1)*10 ms
  rows.forEach((row, i) => {
    const end = BigInt(i + 1) * 100n * ms;
    decodeOne(ctx, { ...BASE, tsNs: end, startNs: end - BigInt(i + 1) * 10n * ms, ...row });
  });
  assert.equal(ctx.table.length, 5);
  const window = { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 1000 };
  const table = ctx.table as unknown as EventTable;

  const all = tcpLife.summarize(table, window, ctx.store) as unknown as Summary;
  assert.equal(all.connections, 5);
  assert.equal(all.bytes_sent, 1000 + 3000 + 500 + 0 + 7);
  assert.equal(all.bytes_received, 200 + 400 + 0 + 0 + 9);
  assert.equal(all.retransmits, 5);
  assert.equal(all.segments_out, 50);
  assert.equal(all.retransmit_rate, 5 / 50);
  assert.deepEqual(all.by_outcome, { closed: 3, reset_by_peer: 1, refused: 1 });
  assert.deepEqual(all.duration_ms, { p50: 20, p90: 40, p99: 40 }, "the unknown start is left out");

  const byRemote = new Map(all.by_remote.map((g) => [g.remote, g]));
  assert.equal(all.by_remote.length, 2);
  assert.equal(all.by_remote[0].remote, "93.184.216.34:443", "most connections first");
  const w = byRemote.get("93.184.216.34:443")!;
  assert.equal(w.connections, 4);
  assert.equal(w.bytes_sent, 4507);
  assert.deepEqual(w.by_outcome, { closed: 3, reset_by_peer: 1 });
  const d = byRemote.get("[::1]:5432")!;
  assert.equal(d.connections, 1);
  assert.equal(d.retransmit_rate, null, "no segments: no rate");
  assert.deepEqual(d.by_outcome, { refused: 1 });

  const byProcess = new Map(all.by_process.map((g) => [`${g.pid} ${g.command}`, g]));
  assert.equal(all.by_process.length, 3);
  assert.deepEqual(all.by_process[0].pid, 100);
  const curl = byProcess.get("100 curl")!;
  assert.equal(curl.connections, 3);
  assert.equal(curl.bytes_sent, 4500);
  assert.equal(curl.bytes_received, 600);
  assert.equal(curl.retransmits, 5);
  assert.equal(curl.segments_out, 50);
  assert.equal(curl.retransmit_rate, 0.1);
  assert.deepEqual(curl.duration_ms, { p50: 20, p90: 30, p99: 30 });
  assert.deepEqual(curl.by_outcome, { closed: 2, reset_by_peer: 1 });
  assert.equal(byProcess.get("200 psql")!.connections, 1);
  const unowned = byProcess.get("0 ")!;
  assert.equal(unowned.connections, 1);
  assert.deepEqual(unowned.duration_ms, { p50: null, p90: null, p99: null });

  const psql = tcpLife.summarize(table, { ...window, pid: 200 }, ctx.store) as unknown as Summary;
  assert.equal(psql.connections, 1);
  assert.deepEqual(psql.by_outcome, { refused: 1 });
  assert.equal(psql.retransmit_rate, null);
  assert.deepEqual(psql.by_process.map((p) => [p.pid, p.command]), [[200, "psql"]]);

  const none = tcpLife.summarize(
    table,
    { ...window, command: "nosuch" },
    ctx.store,
  ) as unknown as Summary;
  assert.equal(none.connections, 0);
  assert.deepEqual(none.by_outcome, {});
  assert.deepEqual(none.by_remote, []);
  assert.deepEqual(none.duration_ms, { p50: null, p90: null, p99: null });

  // the window: rows closing at +100 ms and +200 ms only
  const early = tcpLife.summarize(
    table,
    { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 200 },
    ctx.store,
  ) as unknown as Summary;
  assert.equal(early.connections, 2);
  assert.equal(early.bytes_sent, 4000);

  tcpLife.summarySchema.parse(withSummaryBase("tcp_life", all));
});
