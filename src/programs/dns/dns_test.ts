import assert from "node:assert/strict";
import { readAsset } from "../../assets.ts";
import { BpfObject } from "../../ffi/shim.ts";
import { LabelCap } from "../../metrics/label_cap.ts";
import { renderMetrics } from "../../metrics/exposition.ts";
import { type EventTable, Store } from "../../store/mod.ts";
import { BOOT_WALL_MS, btfOffsets, clock, withSummaryBase } from "../_testing.ts";
import { buildMessage, framed, ipv4 } from "./_testing.ts";
import { columns, destinationName, dns, DNS_COPY, dnsOptions, setDnsOptions } from "./mod.ts";
import { DnsEvent, DnsSummary } from "./schema.ts";

const A = 1, AAAA = 28;
const UDP = 17, TCP = 6;
const MS = 1_000_000n;

const FIELD_NAMES = [
  "ts_ns",
  "cookie",
  "cgroup_id",
  "pid",
  "tid",
  "uid",
  "netns",
  "len",
  "sport",
  "dport",
  "copied",
  "direction",
  "family",
  "protocol",
  "has_owner",
  "saddr",
  "daddr",
  "comm",
  "data",
] as const;

interface Raw {
  tsMs: number;
  direction: 0 | 1;
  payload: Uint8Array;
  cookie?: bigint;
  protocol?: number;
  owner?: boolean;
  len?: number;
}

function openObject(): BpfObject {
  return new BpfObject(readAsset("bpf/dns.bpf.o"), "dns");
}

/** Records laid out as a drained ring has them: [u32 size][u32 0][record, padded to 8]. */
function ring(obj: BpfObject, records: Raw[]): Uint8Array {
  const { at, size } = btfOffsets(obj, "dns_event", FIELD_NAMES);
  const stride = 8 + ((size + 7) & ~7);
  const bytes = new Uint8Array(stride * records.length).fill(0xa5);
  const view = new DataView(bytes.buffer);
  records.forEach((rec, i) => {
    const h = i * stride, r = h + 8;
    view.setUint32(h, size, true);
    view.setUint32(h + 4, 0, true);
    const client = [10, 0, 0, 2], server = [10, 0, 0, 53];
    const sent = rec.direction === 0;
    view.setBigUint64(r + at.ts_ns, BigInt(rec.tsMs) * MS, true);
    view.setBigUint64(r + at.cookie, rec.cookie ?? 0x1_0000_0007n, true);
    view.setBigUint64(r + at.cgroup_id, 4242n, true);
    view.setUint32(r + at.pid, rec.owner === false ? 0 : 777, true);
    view.setUint32(r + at.tid, rec.owner === false ? 0 : 778, true);
    view.setUint32(r + at.uid, 1000, true);
    view.setUint32(r + at.netns, rec.owner === false ? 0 : 4026531840, true);
    view.setUint32(r + at.len, rec.len ?? rec.payload.length, true);
    view.setUint16(r + at.sport, sent ? 41000 : 53, true);
    view.setUint16(r + at.dport, sent ? 53 : 41000, true);
    view.setUint16(r + at.copied, Math.min(rec.payload.length, DNS_COPY), true);
    bytes[r + at.direction] = rec.direction;
    bytes[r + at.family] = 4;
    bytes[r + at.protocol] = rec.protocol ?? UDP;
    bytes[r + at.has_owner] = rec.owner === false ? 0 : 1;
    bytes.set([...(sent ? client : server), ...new Array(12).fill(0)], r + at.saddr);
    bytes.set([...(sent ? server : client), ...new Array(12).fill(0)], r + at.daddr);
    bytes.set(new TextEncoder().encode("resolver\0"), r + at.comm);
    bytes.set(rec.payload.subarray(0, DNS_COPY), r + at.data);
  });
  return bytes;
}

function setup(obj: BpfObject) {
  const store = new Store(1000);
  const table = store.table("dns", columns) as EventTable<typeof columns>;
  const decode = dns.batchDecoder!({ obj, store, table, clock } as never);
  return { store, table, decode };
}

function events(table: EventTable<typeof columns>, store: Store) {
  const out = [];
  for (let i = 0; i < table.length; i++) {
    out.push(DnsEvent.parse(dns.toJson(table as never, table.slot(i), store)));
  }
  return out;
}

const q = (id: number, name: string, type = A) => buildMessage({ id, question: { name, type } });

Deno.test("dns decoder: records from the object's layout become one event per query", () => {
  using obj = openObject();
  const { store, table, decode } = setup(obj);
  const result = decode(ring(obj, [
    { tsMs: 1000, direction: 0, payload: q(1, "name.test", A) },
    { tsMs: 1000, direction: 0, payload: q(2, "name.test", AAAA) },
    {
      tsMs: 1002,
      direction: 1,
      payload: buildMessage({
        id: 1,
        response: true,
        authoritative: true,
        compress: true,
        question: { name: "name.test", type: A },
        answers: [{ name: "name.test", type: A, ttl: 60, data: ipv4("10.0.0.5") }],
      }),
    },
    {
      tsMs: 1003,
      direction: 1,
      payload: buildMessage({ id: 2, response: true, question: { name: "name.test", type: AAAA } }),
    },
  ]));
  assert.deepEqual(result, { events: 2, rejected: 0 }, "4 records, 2 queries");
  assert.equal(table.length, 2);
  const [a, aaaa] = events(table, store);
  assert.equal(a.type, "dns");
  assert.equal(a.wall_time, new Date(BOOT_WALL_MS + 1002).toISOString().replace("Z", "000Z"));
  assert.equal(a.query_time, new Date(BOOT_WALL_MS + 1000).toISOString().replace("Z", "000Z"));
  assert.equal(a.pid, 777);
  assert.equal(a.tid, 778);
  assert.equal(a.command, "resolver");
  assert.equal(a.uid, 1000);
  assert.equal(a.cgroup_id, 4242);
  assert.equal(a.netns, 4026531840);
  assert.equal(a.owner_known, true);
  assert.equal(a.query_name, "name.test");
  assert.equal(a.query_type, "A");
  assert.equal(a.transport, "udp");
  assert.equal(a.server, "10.0.0.53:53");
  assert.equal(a.client_port, 41000);
  assert.equal(a.id, 1);
  assert.equal(a.rcode, "NOERROR");
  assert.equal(a.outcome, "answered");
  assert.deepEqual(a.answers, [{ name: "name.test", type: "A", data: "10.0.0.5" }]);
  assert.equal(a.answer_count, 1);
  assert.equal(a.ttl, 60);
  assert.equal(a.latency_ns, 2_000_000);
  assert.equal(a.authoritative, true);
  assert.equal(a.attempts, 1);
  assert.equal(aaaa.query_type, "AAAA");
  assert.deepEqual(aaaa.answers, []);
  assert.equal(aaaa.ttl, null);

  // the join: a connect by the same process to the answered address, shortly after
  const tsMs = BOOT_WALL_MS + 1010;
  assert.equal(destinationName(store, "10.0.0.5", { pid: 777, cgroupId: 1, tsMs }), "name.test");
  assert.equal(destinationName(store, "10.0.0.5", { pid: 778, cgroupId: 1, tsMs }), null);
  assert.equal(destinationName(store, "10.0.0.6", { pid: 777, cgroupId: 1, tsMs }), null);
  assert.equal(destinationName(new Store(10), "10.0.0.5", { pid: 777, cgroupId: 1, tsMs }), null);
});

Deno.test("dns decoder: a query without an answer is a timeout once a drain passes its deadline", () => {
  using obj = openObject();
  const saved = dnsOptions();
  setDnsOptions({ ports: [53], timeoutMs: 200 });
  try {
    const { store, table, decode } = setup(obj);
    // boot time so that the query was sent 300 ms ago, wall clock
    const sentMs = Date.now() - BOOT_WALL_MS - 300;
    decode(ring(obj, [{ tsMs: sentMs, direction: 0, payload: q(5, "slow.test"), owner: false }]));
    assert.equal(table.length, 1, "flushed at the end of the drain");
    const [e] = events(table, store);
    assert.equal(e.outcome, "timeout");
    assert.equal(e.rcode, null);
    assert.equal(e.latency_ns, null);
    assert.equal(e.answer_count, null);
    assert.equal(e.owner_known, false);
    assert.equal(e.pid, 0);
    assert.equal(e.command, "");
    assert.equal(e.timestamp_ms - (BOOT_WALL_MS + sentMs), 200);
  } finally {
    setDnsOptions(saved);
  }
});

Deno.test("dns decoder: TCP, counts of what is not recorded, summary and metrics", () => {
  using obj = openObject();
  const { store, table, decode } = setup(obj);
  const answer = (id: number, name: string, rcode: number) =>
    buildMessage({ id, response: true, rcode, question: { name, type: A } });
  decode(ring(obj, [
    { tsMs: 10, direction: 0, protocol: TCP, payload: framed(q(9, "tcp.test")) },
    { tsMs: 11, direction: 1, protocol: TCP, payload: framed(answer(9, "tcp.test", 0)) },
    { tsMs: 12, direction: 0, payload: q(10, "nope.test") },
    { tsMs: 13, direction: 1, payload: answer(10, "nope.test", 3) },
    { tsMs: 14, direction: 0, payload: q(11, "bad.test") },
    { tsMs: 15, direction: 1, payload: answer(11, "bad.test", 2) },
    { tsMs: 16, direction: 1, payload: answer(99, "stray.test", 0) },
    { tsMs: 17, direction: 0, payload: Uint8Array.from([1, 2, 3]) },
  ]));
  const list = events(table, store);
  assert.deepEqual(list.map((e) => [e.query_name, e.transport, e.rcode, e.outcome]), [
    ["tcp.test", "tcp", "NOERROR", "answered"],
    ["nope.test", "udp", "NXDOMAIN", "answered"],
    ["bad.test", "udp", "SERVFAIL", "error"],
  ]);

  const part = dns.summarize(table as never, { since: 0, until: Infinity }, store);
  const summary = DnsSummary.parse(withSummaryBase("dns", part));
  assert.equal(summary.queries, 3);
  assert.deepEqual(summary.by_outcome, { answered: 2, error: 1 });
  assert.deepEqual(summary.by_rcode, { NOERROR: 1, NXDOMAIN: 1, SERVFAIL: 1 });
  assert.deepEqual(summary.by_transport, { udp: 2, tcp: 1 });
  assert.deepEqual(summary.top_failing_names.map((n) => n.name).sort(), ["bad.test", "nope.test"]);
  assert.deepEqual(summary.other_names, { names: 0, queries: 0 });
  assert.equal(summary.not_recorded.unmatched_answers, 1);
  assert.equal(summary.not_recorded.malformed, 1);
  assert.equal(summary.latency_ns.max, 1_000_000);
  assert.deepEqual(summary.by_process.map((p) => [p.pid, p.command, p.queries, p.failures]), [
    [777, "resolver", 3, 2],
  ]);
  assert.equal(summary.pending, 0);

  const text = renderMetrics(dns.metrics!(store, new LabelCap(1)));
  assert.match(text, /^ebpf_server_dns_queries_total\{outcome="error",rcode="SERVFAIL"\} 1$/m);
  assert.match(text, /^ebpf_server_dns_queries_total\{outcome="answered",rcode="NXDOMAIN"\} 1$/m);
  assert.match(text, /^ebpf_server_dns_query_duration_seconds_bucket\{le="0.001"\} 3$/m);
  assert.match(text, /^ebpf_server_dns_query_duration_seconds_bucket\{le="\+Inf"\} 3$/m);
  assert.match(text, /^ebpf_server_dns_query_duration_seconds_count 3$/m);
  assert.match(text, /^ebpf_server_dns_not_recorded_total\{kind="unmatched_answers"\} 1$/m);
  // one name gets a label (the cap is 1), the other two are "other"
  const named = [
    ...text.matchAll(
      /^ebpf_server_dns_name_queries_total\{name="([^"]+)",outcome="(\w+)"\} (\d+)$/gm,
    ),
  ]
    .map((m) => [m[1], m[2], Number(m[3])]);
  assert.equal(named.filter(([name]) => name !== "other").length, 1);
  assert.equal(named.reduce((n, [, , v]) => n + (v as number), 0), 3);
});

Deno.test("dns decoder: a record of the wrong size is rejected, not misread", () => {
  using obj = openObject();
  const { table, decode } = setup(obj);
  const bytes = ring(obj, [{ tsMs: 1, direction: 0, payload: q(1, "a.test") }]);
  new DataView(bytes.buffer).setUint32(0, 100, true);
  const result = decode(bytes.subarray(0, 8 + 104));
  assert.equal(result.rejected, 1);
  assert.equal(table.length, 0);
});
