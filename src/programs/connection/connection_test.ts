import assert from "node:assert/strict";
import type { BpfObject } from "../../ffi/shim.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import { structLayout } from "../layout.ts";
import { BOOT_WALL_MS, clock, drained, withSummaryBase } from "../_testing.ts";
import { batchDecoderOf } from "../batch.ts";
import { encode, openObject, type RawRecord } from "./_testing.ts";
import { connection } from "./mod.ts";
import { unpackKey } from "./tally.ts";

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

const encoder = new TextEncoder();

/** Decodes `rec` into the store and returns the JSON of the stored row. */
function decodeOne(
  ctx: { obj: BpfObject; store: Store; table: EventTable<typeof connection.columns> },
  rec: RawRecord,
) {
  const decode = batchDecoderOf(connection, { ...ctx, clock });
  assert.deepEqual(decode(drained(encode(ctx.obj, rec))), { events: 1, rejected: 0 });
  const slot = ctx.table.slot(ctx.table.length - 1);
  return connection.toJson(ctx.table, slot, ctx.store);
}

function setup() {
  const obj = openObject();
  const store = new Store(100);
  const table = store.table("connection", connection.columns);
  return { obj, store, table };
}

const BASE = {
  tsNs: 123_456_000n, // .123456 s after BOOT_WALL_MS
  latencyNs: 45_678n,
  cgroupId: 0x1_0000_2345n, // above 32 bits
  pid: 4242,
  tid: 4243,
  uid: 1000,
};

function path(text: string, trailingNul = true): number[] {
  return [...encoder.encode(text), ...(trailingNul ? [0] : [])];
}

Deno.test("connection decodes an IPv4 TCP connect refused", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    ret: -111,
    family: AF_INET,
    port: 8443,
    sockType: SOCK_STREAM,
    protocol: IPPROTO_TCP,
    addr: [10, 1, 2, 3],
    comm: "curl",
  });
  assert.deepEqual(json, {
    type: "connection",
    wall_time: "2026-11-25T03:04:05.123456Z",
    timestamp_ms: BOOT_WALL_MS + 123.456,
    pid: 4242,
    command: "curl",
    tid: 4243,
    uid: 1000,
    cgroup_id: 0x1_0000_2345,
    cgroup_path: null,
    unit: null,
    container_id: null,
    container_runtime: null,
    address_family: "AF_INET",
    protocol: "TCP",
    protocol_number: 6,
    socket_type: "STREAM",
    destination_ip: "10.1.2.3",
    destination_port: 8443,
    destination: "10.1.2.3:8443",
    destination_name: null,
    unix_path: null,
    result: "ECONNREFUSED",
    ret: -111,
    latency_ns: 45_678,
  });
  assert.deepEqual(connection.eventSchema.parse(json), json);
  assert.equal(ctx.store.size, 1);
});

Deno.test("connection decodes an IPv6 UDP connect", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    tsNs: 5_000_000_000n + 1_000n, // 5.000001 s
    latencyNs: 2n ** 40n,
    ret: 0,
    family: AF_INET6,
    port: 53,
    sockType: SOCK_DGRAM,
    protocol: IPPROTO_UDP,
    addr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    comm: "systemd-resolve", // 15 bytes, the longest comm
  });
  assert.equal(json.wall_time, "2026-11-25T03:04:10.000001Z");
  assert.equal(json.command, "systemd-resolve");
  assert.equal(json.address_family, "AF_INET6");
  assert.equal(json.protocol, "UDP");
  assert.equal(json.protocol_number, 17);
  assert.equal(json.socket_type, "DGRAM");
  assert.equal(json.destination_ip, "2001:db8::1");
  assert.equal(json.destination_port, 53);
  assert.equal(json.destination, "[2001:db8::1]:53");
  assert.equal(json.unix_path, null);
  assert.equal(json.result, "ok");
  assert.equal(json.ret, 0);
  assert.equal(json.latency_ns, 2 ** 40);
  assert.equal(json.cgroup_id, 0x1_0000_2345);
  assert.deepEqual(connection.eventSchema.parse(json), json);
});

Deno.test("connection decodes an AF_UNIX path", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    ret: -2,
    family: AF_UNIX,
    port: 0,
    sockType: SOCK_STREAM,
    protocol: 0,
    comm: "psql",
    unixPath: path("/run/postgresql/.s.PGSQL.5432"),
  });
  assert.equal(json.address_family, "AF_UNIX");
  assert.equal(json.protocol, "UNIX");
  assert.equal(json.socket_type, "STREAM");
  assert.equal(json.destination_ip, null);
  assert.equal(json.destination_port, null);
  assert.equal(json.unix_path, "/run/postgresql/.s.PGSQL.5432");
  assert.equal(json.destination, "/run/postgresql/.s.PGSQL.5432");
  assert.equal(json.result, "ENOENT");
  assert.deepEqual(connection.eventSchema.parse(json), json);
});

Deno.test("connection decodes an abstract unix socket as @name", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    ret: 0,
    family: AF_UNIX,
    port: 0,
    sockType: SOCK_DGRAM,
    protocol: 0,
    comm: "dbus-daemon",
    unixPath: [0, ...path("/tmp/dbus-XYZ", false)],
  });
  assert.equal(json.unix_path, "@/tmp/dbus-XYZ");
  assert.equal(json.destination, "@/tmp/dbus-XYZ");
  assert.equal(json.socket_type, "DGRAM");
  assert.equal(json.protocol, "UNIX");
  assert.deepEqual(connection.eventSchema.parse(json), json);
});

Deno.test("connection keeps a socketless connect with null protocol and type", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const json = decodeOne(ctx, {
    ...BASE,
    ret: -88,
    family: AF_INET,
    port: 80,
    sockType: 0,
    protocol: 0,
    addr: [192, 0, 2, 1],
    comm: "nc",
  });
  assert.equal(json.protocol, null);
  assert.equal(json.socket_type, null);
  assert.equal(json.result, "ENOTSOCK");
  assert.deepEqual(connection.eventSchema.parse(json), json);
});

Deno.test("connection rejects a short record without storing a row", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const decode = batchDecoderOf(connection, { ...ctx, clock });
  const { bytes, offset, size } = encode(ctx.obj, {
    ...BASE,
    ret: 0,
    family: AF_INET,
    port: 1,
    sockType: SOCK_STREAM,
    protocol: IPPROTO_TCP,
    comm: "x",
  });
  const result = decode(drained({ bytes, offset, size: size - 1 }));
  assert.equal(result.events, 0);
  assert.equal(result.rejected, 1);
  assert.match(result.error ?? "", /shorter than/);
  assert.equal(ctx.table.length, 0);
  assert.equal(ctx.store.size, 0);
});

Deno.test("connection stores a mixed batch row for row, interning and counting its runs", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const ip = { ...BASE, family: AF_INET, port: 53, sockType: SOCK_DGRAM, protocol: IPPROTO_UDP };
  // bursts, interleaved commands, a result changing mid-burst, a unix connect inside a burst
  // and a short record (rejected, counted)
  const recs: RawRecord[] = [
    ...Array.from(
      { length: 5 },
      (_, i) => ({ ...ip, pid: 1, ret: 0, comm: "dig", tsNs: BigInt(i) }),
    ),
    { ...ip, pid: 2, ret: -111, comm: "curl", tsNs: 5n },
    { ...ip, pid: 1, ret: 0, comm: "dig", tsNs: 6n },
    { ...ip, pid: 2, ret: -111, comm: "curl", tsNs: 7n },
    {
      ...BASE,
      pid: 3,
      ret: 0,
      family: AF_UNIX,
      port: 0,
      sockType: SOCK_STREAM,
      protocol: 0,
      comm: "curl",
      unixPath: path("/run/a.sock"),
      tsNs: 8n,
    },
    { ...ip, pid: 2, ret: -111, comm: "curl", tsNs: 9n },
    { ...ip, pid: 2, ret: 0, comm: "curl", tsNs: 10n },
  ];
  const encoded = recs.map((r) => encode(ctx.obj, r));
  const short = { ...encoded[0], size: encoded[0].size - 8 };
  const decode = batchDecoderOf(connection, { ...ctx, clock });
  const result = decode(drained(...encoded.slice(0, 3), short, ...encoded.slice(3)));
  assert.equal(result.events, recs.length);
  assert.equal(result.rejected, 1);
  assert.equal(ctx.table.length, recs.length);
  for (let i = 0; i < recs.length; i++) {
    const json = connection.toJson(ctx.table, ctx.table.slot(i), ctx.store);
    assert.equal(json.pid, recs[i].pid, `row ${i}`);
    assert.equal(json.command, recs[i].comm, `row ${i}`);
    assert.equal(json.ret, recs[i].ret, `row ${i}`);
    assert.equal(json.unix_path, recs[i].family === AF_UNIX ? "/run/a.sock" : null, `row ${i}`);
    assert.equal(json.timestamp_ms, BOOT_WALL_MS + i / 1e6, `row ${i}`);
  }
  // the counts kept at ingest, as /metrics shows them
  const counts = new Map<string, number>();
  for (const [key, n] of ctx.store.tally("connection")) {
    const { comm, protocol, result } = unpackKey(key);
    counts.set(`${ctx.store.strings.get(comm)} ${protocol} ${result}`, n);
  }
  assert.deepEqual(
    Object.fromEntries(counts),
    {
      "dig UDP ok": 6,
      "curl UDP ECONNREFUSED": 3,
      "curl UNIX ok": 1,
      "curl UDP ok": 1,
    },
  );
  // a second batch adds to the counts, with the command ids of the first
  decode(drained(encoded[0]));
  assert.equal(ctx.store.strings.size, 4); // "", dig, curl, /run/a.sock
  assert.equal([...ctx.store.tally("connection").values()].reduce((a, b) => a + b), 12);
});

Deno.test("connection decodes a batch longer than one call's rows and runs", () => {
  const ctx = { ...setup(), store: new Store(50_000) };
  const table = ctx.store.table("connection", connection.columns);
  using _obj = ctx.obj;
  const ip = { ...BASE, family: AF_INET, port: 53, sockType: SOCK_DGRAM, protocol: IPPROTO_UDP };
  const a = encode(ctx.obj, { ...ip, pid: 1, ret: 0, comm: "a" });
  const b = encode(ctx.obj, { ...ip, pid: 2, ret: -111, comm: "b" });
  // 40000 records, every one a run of its own: several calls of the shim's writer
  const n = 40_000;
  const records = Array.from({ length: n }, (_, i) => i % 2 ? b : a);
  const decode = batchDecoderOf(connection, { ...ctx, table, clock });
  assert.deepEqual(decode(drained(...records)), { events: n, rejected: 0 });
  assert.equal(table.length, n);
  for (const i of [0, 1, 4095, 4096, 4097, 16383, 16384, 16385, n - 2, n - 1]) {
    const json = connection.toJson(table, table.slot(i), ctx.store);
    assert.equal(json.command, i % 2 ? "b" : "a", `row ${i}`);
    assert.equal(json.pid, i % 2 ? 2 : 1, `row ${i}`);
  }
  assert.deepEqual([...ctx.store.tally("connection").values()], [n / 2, n / 2]);
});

Deno.test("structLayout reads offsets from BTF and throws a TypeError on a wrong size", () => {
  using obj = openObject();
  const at = structLayout(obj, "connection_event", { ts_ns: 8, pid: 4, addr: 16, comm: 16 });
  assert.equal(at.$size, obj.structSize("connection_event"));
  assert.equal(at.ts_ns, obj.member("connection_event", "ts_ns").offset);
  assert.equal(at.pid, obj.member("connection_event", "pid").offset);
  assert.equal(at.addr, obj.member("connection_event", "addr").offset);
  assert.equal(at.comm, obj.member("connection_event", "comm").offset);
  assert.ok(at.pid + 4 <= at.$size);
  assert.throws(
    () => structLayout(obj, "connection_event", { pid: 8 }),
    (err: unknown) =>
      err instanceof TypeError && err.message.includes("connection_event.pid") &&
      err.message.includes("4 bytes"),
  );
  assert.throws(() => structLayout(obj, "connection_event", { nosuch: 4 }));
  assert.throws(() => structLayout(obj, "no_such_struct", {}));
});

Deno.test("connection.summarize counts results, destinations and latency", () => {
  const ctx = setup();
  using _obj = ctx.obj;
  const tcp = { family: AF_INET, sockType: SOCK_STREAM, protocol: IPPROTO_TCP };
  const rows: Partial<RawRecord>[] = [
    { pid: 100, comm: "curl", ret: -111, port: 8443, addr: [10, 1, 2, 3], latencyNs: 1000n },
    { pid: 100, comm: "curl", ret: -111, port: 8443, addr: [10, 1, 2, 3], latencyNs: 2000n },
    { pid: 100, comm: "curl", ret: 0, port: 8443, addr: [10, 1, 2, 3], latencyNs: 3000n },
    { pid: 200, comm: "nginx", ret: -115, port: 80, addr: [10, 9, 9, 9], latencyNs: 4000n },
    {
      pid: 300,
      comm: "dig",
      ret: 0,
      port: 53,
      addr: [1, 1, 1, 1],
      latencyNs: 5000n,
      family: AF_INET,
      sockType: SOCK_DGRAM,
      protocol: IPPROTO_UDP,
    },
  ];
  rows.forEach((row, i) =>
    decodeOne(ctx, { ...BASE, ...tcp, tsNs: BigInt(i + 1) * 1_000_000n, ...row } as RawRecord)
  );
  assert.equal(ctx.table.length, 5);
  const window = { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 1000 };

  const all = connection.summarize(ctx.table, window, ctx.store);
  assert.equal(all.total_attempts, 5);
  assert.equal(all.successful, 2);
  assert.equal(all.failed, 2);
  assert.equal(all.in_progress, 1);
  assert.deepEqual(all.by_result, { ok: 2, ECONNREFUSED: 2, EINPROGRESS: 1 });
  assert.deepEqual(all.by_protocol, { TCP: 4, UDP: 1 });
  assert.deepEqual(all.by_command, { curl: 3, nginx: 1, dig: 1 });
  assert.deepEqual((all.top_destinations as unknown[])[0], {
    destination: "10.1.2.3:8443",
    count: 3,
    failed: 2,
  });
  const byDestination = [...(all.top_destinations as { destination: string }[])]
    .sort((a, b) => a.destination.localeCompare(b.destination));
  assert.deepEqual(byDestination, [
    { destination: "1.1.1.1:53", count: 1, failed: 0 },
    { destination: "10.1.2.3:8443", count: 3, failed: 2 },
    { destination: "10.9.9.9:80", count: 1, failed: 0 },
  ]);
  assert.deepEqual(all.latency_ns, { p50: 3000, p90: 5000, p99: 5000, max: 5000 });

  const byPid = connection.summarize(ctx.table, { ...window, pid: 100 }, ctx.store);
  assert.equal(byPid.total_attempts, 3);
  assert.equal(byPid.successful, 1);
  assert.equal(byPid.failed, 2);
  assert.equal(byPid.in_progress, 0);
  assert.deepEqual(byPid.by_result, { ECONNREFUSED: 2, ok: 1 });
  assert.deepEqual(byPid.latency_ns, { p50: 2000, p90: 3000, p99: 3000, max: 3000 });

  const byCommand = connection.summarize(ctx.table, { ...window, command: "nginx" }, ctx.store);
  assert.equal(byCommand.total_attempts, 1);
  assert.equal(byCommand.in_progress, 1);
  assert.deepEqual(byCommand.top_destinations, [
    { destination: "10.9.9.9:80", count: 1, failed: 0 },
  ]);

  const both = connection.summarize(
    ctx.table,
    { ...window, pid: 100, command: "nginx" },
    ctx.store,
  );
  assert.equal(both.total_attempts, 0);
  assert.deepEqual(both.latency_ns, { p50: null, p90: null, p99: null, max: null });

  const unknown = connection.summarize(ctx.table, { ...window, command: "nosuch" }, ctx.store);
  assert.equal(unknown.total_attempts, 0);
  assert.deepEqual(unknown.by_result, {});

  // the window: only the first two rows (ts +1 ms and +2 ms)
  const early = connection.summarize(
    ctx.table,
    { since: BOOT_WALL_MS, until: BOOT_WALL_MS + 2 },
    ctx.store,
  );
  assert.equal(early.total_attempts, 2);
  assert.deepEqual(early.by_result, { ECONNREFUSED: 2 });

  const summary = withSummaryBase("connection", all);
  connection.summarySchema.parse(summary);
});
