/**
 * dns: every DNS query of every process on the host (every network namespace), from
 * `bpf/dns.bpf.c`: the name and type asked, the server, the answer's rcode and records, how long
 * it took and who asked; a query with no answer within `--dns-timeout` ends as a timeout. The
 * kernel hands over packets to and from a DNS port; they are parsed and paired here
 * (`pairing.ts`). Connection and TCP events get the name their destination was looked up by
 * ({@linkcode destinationName}).
 *
 * @module
 */

import { attributionOf, countAttribution, unitTally } from "../../cgroup/mod.ts";
import { joinHostPort } from "../../net/address.ts";
import { AF_INET, AF_INET6 } from "../../net/names.ts";
import type { MetricFamily } from "../../metrics/exposition.ts";
import type { LabelCap } from "../../metrics/label_cap.ts";
import type { BpfObject } from "../../ffi/shim.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { structLayout } from "../layout.ts";
import { recordBatches } from "../batch.ts";
import {
  type BatchDecoder,
  type DecoderContext,
  defineProgram,
  type RecordDecoder,
} from "../program.ts";
import { isoMicros } from "../query.ts";
import { rcodeName, typeName } from "./codes.ts";
import {
  answersOf,
  type Columns,
  columns,
  encodeAnswers,
  FLAG_AA,
  FLAG_INCOMPLETE,
  FLAG_OWNER,
  FLAG_TC,
  NO_RCODE,
  serverOf,
} from "./columns.ts";
import {
  type Anomaly,
  type Outcome,
  type Owner,
  type Packet,
  Pairing,
  TCP,
  writeAddress,
} from "./pairing.ts";
import { DnsEvent, DnsSummary, OUTCOMES } from "./schema.ts";
import { NOT_RECORDED, pendingQueries, stateOf } from "./state.ts";
import { failed, summarize } from "./summary.ts";
import {
  codeField,
  type FilterField,
  ipField,
  namesParse,
  numberField,
  portField,
  simpleGroup,
} from "../filter.ts";
import { commonFilters, commonGroups, familyParse, protocolParse } from "../fields.ts";
import { typeCode } from "./codes.ts";
import type { DnsAnswer } from "./wire.ts";

export { columns } from "./columns.ts";
export { destinationName } from "./state.ts";

/** Bytes of payload the kernel copies (DNS_COPY of bpf/dns.h). */
export const DNS_COPY = 512;
/** Ports the kernel can watch at most (DNS_MAX_PORTS of bpf/dns.h). */
export const DNS_MAX_PORTS = 8;

/** What `--dns-ports` and `--dns-timeout` set. */
export interface DnsOptions {
  /** Ports that are DNS ports (1 to {@linkcode DNS_MAX_PORTS} of them). */
  ports: readonly number[];
  /** How long a query waits for its answer before it is a timeout, in ms. */
  timeoutMs: number;
}

/** The defaults: port 53, 5 s (glibc's own timeout per try). */
export const DNS_DEFAULTS: DnsOptions = { ports: [53], timeoutMs: 5000 };

let options: DnsOptions = DNS_DEFAULTS;

/** Sets the ports and timeout the next start of the program uses (main calls it from flags). */
export function setDnsOptions(next: DnsOptions): void {
  if (next.ports.length < 1 || next.ports.length > DNS_MAX_PORTS) {
    throw new RangeError(`from 1 to ${DNS_MAX_PORTS} DNS ports, not ${next.ports.length}`);
  }
  options = { ports: [...next.ports], timeoutMs: next.timeoutMs };
}

/** The ports and timeout in use. */
export function dnsOptions(): DnsOptions {
  return options;
}

/** Field sizes the decoder reads from `struct dns_event`; offsets come from the BTF. */
const FIELDS = {
  ts_ns: 8,
  cookie: 8,
  cgroup_id: 8,
  pid: 4,
  tid: 4,
  uid: 4,
  netns: 4,
  len: 4,
  sport: 2,
  dport: 2,
  copied: 2,
  direction: 1,
  family: 1,
  protocol: 1,
  has_owner: 1,
  saddr: 16,
  daddr: 16,
  comm: 16,
  data: DNS_COPY,
} as const;

/** Latency histogram bucket bounds, seconds. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];
/** Keys of the `dns` tally below 0: histogram buckets are -1 - i, then the sum and count. */
const SUM_KEY = -100, COUNT_KEY = -101;
function configure(obj: BpfObject): void {
  const ports = new Uint16Array(DNS_MAX_PORTS);
  ports.set(options.ports);
  obj.setConst("dns_ports", new Uint8Array(ports.buffer));
  obj.setConstU32("dns_nports", options.ports.length);
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 4294967296;
}

function minTtl(answers: readonly DnsAnswer[]): number {
  let ttl = NaN;
  for (const a of answers) if (!(a.ttl >= ttl)) ttl = a.ttl;
  return ttl;
}

/**
 * Packets in, queries out: the events a batch stored are the queries that ended in it (a query
 * and its answer are two records, a timeout ends with none).
 */
function batchDecoder(ctx: DecoderContext<Columns>): BatchDecoder {
  const decode = recordBatches(decoder(ctx));
  return (source) => {
    const before = ctx.table.appended;
    const result = decode(source);
    return { ...result, events: ctx.table.appended - before };
  };
}

function decoder({ obj, store, table, clock }: DecoderContext<Columns>): RecordDecoder {
  const at = structLayout(obj, "dns_event", FIELDS);
  const strings = store.strings;
  const state = stateOf(store);
  const attrs = attributionOf(store);
  const units = unitTally(store, "dns");
  const tally = store.tally("dns");
  const nameTally = store.tally("dns_names");
  const notRecordedLog = store.counters(NOT_RECORDED);
  const wallMs = (ns: number) => ns / 1e6 + clock.offsetMs;
  const nowNs = () => (Date.now() - clock.offsetMs) * 1e6;
  let lastCountMs = -Infinity;
  const count = (kind: Anomaly, n: number, tsNs: number) => {
    lastCountMs = Math.max(lastCountMs, wallMs(tsNs)); // the log's time never goes back
    notRecordedLog.add(lastCountMs, kind, n);
  };
  const bump = (map: Map<number, number>, key: number, n = 1) =>
    map.set(key, (map.get(key) ?? 0) + n);

  const write = (o: Outcome) => {
    const q = o.query;
    const s = store.append(table as unknown as EventTable);
    const c = table.cols;
    const answer = o.answer;
    const server = o.answeredBy ?? { addr: q.server, port: q.serverPort };
    const outcome = OUTCOMES.indexOf(o.outcome);
    const qname = strings.intern(q.name);
    c.ts[s] = wallMs(o.tsNs);
    c.pid[s] = q.owner.pid;
    c.comm[s] = q.owner.comm;
    c.tid[s] = q.owner.tid;
    c.uid[s] = q.owner.uid;
    c.cgroup[s] = q.owner.cgroupId;
    c.attr[s] = attrs.idOf(q.owner.cgroupId);
    countAttribution(units, c.attr[s]);
    c.netns[s] = q.owner.netns;
    c.qts[s] = wallMs(q.tsNs);
    c.latency[s] = answer ? o.tsNs - q.tsNs : NaN;
    c.ttl[s] = answer ? minTtl(answer.answers) : NaN;
    c.id[s] = q.id;
    c.qtype[s] = q.type;
    c.rcode[s] = answer ? answer.rcode : NO_RCODE;
    c.ancount[s] = answer ? answer.ancount : 0;
    c.server_port[s] = server.port;
    c.client_port[s] = q.clientPort;
    c.outcome[s] = outcome;
    c.transport[s] = q.transport;
    c.family[s] = q.family;
    c.flags[s] = (answer?.truncated ? FLAG_TC : 0) | (answer?.authoritative ? FLAG_AA : 0) |
      (answer && !answer.answersComplete ? FLAG_INCOMPLETE : 0) |
      (q.owner.known ? FLAG_OWNER : 0);
    c.attempts[s] = Math.min(q.attempts, 255);
    writeAddress(server.addr, c.server as Uint8Array, s * 16);
    c.qname[s] = qname;
    c.answers[s] = answer && answer.answers.length
      ? strings.intern(encodeAnswers(answer.answers))
      : 0;

    bump(tally, outcome * 65536 + c.rcode[s]);
    bump(nameTally, qname * 4 + outcome);
    if (answer) {
      const seconds = c.latency[s] / 1e9;
      const bucket = LATENCY_BUCKETS.findIndex((le) => seconds <= le);
      bump(tally, bucket < 0 ? -1 - LATENCY_BUCKETS.length : -1 - bucket);
      bump(tally, SUM_KEY, seconds);
      bump(tally, COUNT_KEY);
      if (answer.rcode === 0) {
        for (const a of answer.answers) {
          if (a.type === "A" || a.type === "AAAA") {
            state.names.add(a.data, qname, q.owner.pid, q.owner.cgroupId, c.ts[s]);
          }
        }
      }
    }
  };

  state.pairing?.abandon(nowNs());
  const pairing = new Pairing({ timeoutMs: options.timeoutMs, emit: write, count });
  state.pairing = pairing;

  // one packet and one owner for every record: the pairing copies what it keeps
  const owner: Owner = { known: false, pid: 0, tid: 0, uid: 0, cgroupId: 0, netns: 0, comm: 0 };
  const packet: Packet = {
    tsNs: 0,
    socket: 0,
    direction: 0,
    transport: 0,
    family: 4,
    saddrAt: 0,
    daddrAt: 0,
    sport: 0,
    dport: 0,
    owner,
    bytes: new Uint8Array(0),
    start: 0,
    copied: 0,
    len: 0,
  };
  const decode: RecordDecoder = (view, bytes, r, size) => {
    if (size < at.$size) throw new RangeError(`dns record of ${size} bytes, expected ${at.$size}`);
    const copied = view.getUint16(r + at.copied, true);
    if (copied > DNS_COPY) throw new RangeError(`dns record with ${copied} bytes copied`);
    const direction = bytes[r + at.direction];
    packet.tsNs = u64(view, r + at.ts_ns);
    packet.socket = u64(view, r + at.cookie);
    packet.direction = direction;
    packet.transport = bytes[r + at.protocol];
    packet.family = bytes[r + at.family] === 4 ? 4 : 6;
    packet.saddrAt = r + at.saddr;
    packet.daddrAt = r + at.daddr;
    packet.sport = view.getUint16(r + at.sport, true);
    packet.dport = view.getUint16(r + at.dport, true);
    packet.bytes = bytes;
    packet.start = r + at.data;
    packet.copied = copied;
    packet.len = view.getUint32(r + at.len, true);
    if (direction === 0) { // a query's sender is kept with it; an answer's is not used
      owner.known = bytes[r + at.has_owner] !== 0;
      owner.pid = view.getUint32(r + at.pid, true);
      owner.tid = view.getUint32(r + at.tid, true);
      owner.uid = view.getUint32(r + at.uid, true);
      owner.cgroupId = u64(view, r + at.cgroup_id);
      owner.netns = view.getUint32(r + at.netns, true);
      owner.comm = owner.known ? strings.internBytes(bytes, r + at.comm, 16) : 0;
    }
    pairing.packet(packet);
  };
  decode.flush = () => pairing.expire(nowNs());
  return decode;
}

function toJson(table: EventTable<Columns>, s: number, store: Store) {
  const c = table.cols;
  const answered = c.rcode[s] !== NO_RCODE;
  const server = serverOf(table, s);
  const flags = c.flags[s];
  return {
    type: "dns" as const,
    wall_time: isoMicros(c.ts[s]),
    timestamp_ms: c.ts[s],
    pid: c.pid[s],
    command: store.strings.get(c.comm[s]),
    tid: c.tid[s],
    uid: c.uid[s],
    cgroup_id: c.cgroup[s],
    ...attributionOf(store).json(c.attr[s]),
    netns: c.netns[s],
    owner_known: (flags & FLAG_OWNER) !== 0,
    query_time: isoMicros(c.qts[s]),
    query_name: store.strings.get(c.qname[s]),
    query_type: typeName(c.qtype[s]),
    query_type_code: c.qtype[s],
    transport: c.transport[s] === TCP ? "tcp" as const : "udp" as const,
    server: joinHostPort(server.ip, server.port),
    server_ip: server.ip,
    server_port: server.port,
    client_port: c.client_port[s],
    id: c.id[s],
    rcode: answered ? rcodeName(c.rcode[s]) : null,
    rcode_code: answered ? c.rcode[s] : null,
    outcome: OUTCOMES[c.outcome[s]],
    answers: answersOf(table, s, store),
    answer_count: answered ? c.ancount[s] : null,
    answers_complete: (flags & FLAG_INCOMPLETE) === 0,
    ttl: Number.isNaN(c.ttl[s]) ? null : c.ttl[s],
    latency_ns: Number.isNaN(c.latency[s]) ? null : c.latency[s],
    truncated: (flags & FLAG_TC) !== 0,
    authoritative: (flags & FLAG_AA) !== 0,
    attempts: c.attempts[s],
  };
}

function metrics(store: Store, cap: LabelCap): MetricFamily[] {
  const tally = store.tally("dns");
  const queries = [];
  const buckets = [];
  let cumulative = 0;
  for (const [key, value] of tally) {
    if (key < 0) continue;
    const rcode = key & 0xffff;
    queries.push({
      labels: {
        outcome: OUTCOMES[key >> 16],
        rcode: rcode === NO_RCODE ? "none" : rcodeName(rcode),
      },
      value,
    });
  }
  for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
    cumulative += tally.get(-1 - i) ?? 0;
    buckets.push({
      suffix: "_bucket",
      labels: { le: i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : "+Inf" },
      value: cumulative,
    });
  }
  const { own, other } = cap.split(store.tally("dns_names"), (key) => Math.floor(key / 4));
  const byName = new Map<string, { labels: Record<string, string>; value: number }>();
  const add = (name: string, key: number, value: number) => {
    const outcome = OUTCOMES[key & 3];
    const id = `${name}\0${outcome}`;
    const entry = byName.get(id);
    if (entry) entry.value += value;
    else byName.set(id, { labels: { name, outcome }, value });
  };
  for (const [key, value] of own) add(store.strings.get(Math.floor(key / 4)), key, value);
  for (const [key, value] of other) add("other", key, value);
  const notRecordedTotals = store.counters(NOT_RECORDED).totals();
  return [
    {
      name: "ebpf_server_dns_queries_total",
      type: "counter",
      help:
        "DNS queries that ended, by outcome (answered, error, timeout) and rcode (none: no answer)",
      samples: queries,
    },
    {
      name: "ebpf_server_dns_query_duration_seconds",
      type: "histogram",
      help: "time from a DNS query's first send to its answer (queries with an answer)",
      samples: [
        ...buckets,
        { suffix: "_sum", value: tally.get(SUM_KEY) ?? 0 },
        { suffix: "_count", value: tally.get(COUNT_KEY) ?? 0 },
      ],
    },
    {
      name: "ebpf_server_dns_name_queries_total",
      type: "counter",
      help:
        `DNS queries by name (the ${cap.max} names asked most when chosen get a label; the rest are "other") and outcome`,
      samples: [...byName.values()],
    },
    {
      name: "ebpf_server_dns_not_recorded_total",
      type: "counter",
      help:
        "DNS packets or queries that did not become an event, by why (malformed, unmatched_answers, answers_cut, tcp_unparsed, pending_overflow, abandoned)",
      samples: ([
        "malformed",
        "unmatched_answers",
        "answers_cut",
        "tcp_unparsed",
        "pending_overflow",
        "abandoned",
      ] as const)
        .map((kind) => ({ labels: { kind }, value: notRecordedTotals.get(kind) ?? 0 })),
    },
    {
      name: "ebpf_server_dns_pending_queries",
      type: "gauge",
      help: "DNS queries waiting for an answer",
      samples: [{ value: pendingQueries(store) }],
    },
  ];
}

type Cols = Record<string, ArrayLike<number>>;

/** `rcode=`: response code names (NOERROR, NXDOMAIN, SERVFAIL, RCODE12) and `none` (timeouts). */
function parseRcode(text: string): { label: string; codes: number[] } {
  if (text.toLowerCase() === "none") return { label: "none", codes: [NO_RCODE] };
  const upper = text.toUpperCase();
  for (let code = 0; code < 4096; code++) {
    if (rcodeName(code) === upper) return { label: upper, codes: [code] };
  }
  throw new TypeError(
    `'${text}' is no DNS response code (NOERROR, NXDOMAIN, SERVFAIL, ...) nor none`,
  );
}

/** `query_type=`: record type names (A, AAAA, TYPE65). */
function parseType(text: string): { label: string; codes: number[] } {
  const code = typeCode(text.toUpperCase());
  if (code === undefined) throw new TypeError(`'${text}' is no DNS record type (A, AAAA, MX, ...)`);
  return { label: typeName(code), codes: [code] };
}

/** `name=`: a query name, or `*.suffix` for the names under it. */
const nameField: FilterField<string> = {
  description: "the name asked (example.com), or *.example.com for every name under it",
  example: "example.com",
  parse(text) {
    const name = text.toLowerCase().replace(/\.$/, "");
    if (name.length === 0 || name.length > 253 || /[\s,]/.test(name)) {
      throw new TypeError(`'${text}' is no DNS name`);
    }
    return { label: name, value: name };
  },
  compile(table, store, names) {
    const col = table.cols.qname as Uint32Array;
    const exact = new Set<number>();
    const suffixes: string[] = [];
    for (const n of names) {
      if (n.startsWith("*.")) suffixes.push(n.slice(1));
      else {
        const id = store.strings.find(n);
        if (id >= 0) exact.add(id);
      }
    }
    if (suffixes.length === 0) return (s) => exact.has(col[s]);
    const seen = new Map<number, boolean>();
    return (s) => {
      const id = col[s];
      if (exact.has(id)) return true;
      let hit = seen.get(id);
      if (hit === undefined) {
        const name = store.strings.get(id).toLowerCase();
        seen.set(id, hit = suffixes.some((x) => name.endsWith(x)));
      }
      return hit;
    };
  },
};

const filters: Record<string, FilterField> = {
  ...commonFilters(),
  uid: numberField("the sender's uid", { column: "uid", max: 4294967295 }),
  destination: ipField("the DNS server's address", {
    columns: ["server"],
    version: (cols: Cols) => (s: number) => cols.family[s],
  }),
  port: portField("the server's or the client's port", { columns: ["server_port", "client_port"] }),
  family: codeField("the server's address family (ipv4 or AF_INET, ipv6 or AF_INET6)", {
    example: "ipv6",
    parse: familyParse,
    key: (cols) => (s) => cols.family[s] === 4 ? AF_INET : AF_INET6,
  }),
  protocol: codeField("the transport (UDP or TCP)", {
    example: "TCP",
    parse: protocolParse,
    key: (cols) => (s) => cols.transport[s],
  }),
  rcode: codeField(
    "the answer's response code (NOERROR, NXDOMAIN, SERVFAIL, ...), none for timeouts",
    {
      example: "NXDOMAIN",
      parse: parseRcode,
      key: (cols) => (s) => cols.rcode[s],
    },
  ),
  outcome: codeField(`how the query ended: ${OUTCOMES.join(", ")}`, {
    example: "timeout",
    parse: namesParse(Object.fromEntries(OUTCOMES.map((o, i) => [o, i]))),
    key: (cols) => (s) => cols.outcome[s],
  }),
  query_type: codeField("the record type asked (A, AAAA, MX, ...)", {
    example: "AAAA",
    parse: parseType,
    key: (cols) => (s) => cols.qtype[s],
  }),
  name: nameField as FilterField,
};

const groups = {
  ...commonGroups(),
  name: simpleGroup("the name asked", (table, store) => {
    const col = table.cols.qname as Uint32Array;
    return (s) => store.strings.get(col[s]);
  }),
  server: simpleGroup("the server ip:port", (table) => (s) => {
    const { ip, port } = serverOf(table as unknown as EventTable<Columns>, s);
    return joinHostPort(ip, port);
  }),
  rcode: simpleGroup("the response code (null: no answer)", (table) => {
    const col = table.cols.rcode as Uint16Array;
    return (s) => col[s] === NO_RCODE ? null : rcodeName(col[s]);
  }),
  outcome: simpleGroup("answered, error or timeout", (table) => {
    const col = table.cols.outcome as Uint8Array;
    return (s) => OUTCOMES[col[s]];
  }),
  query_type: simpleGroup("the record type asked", (table) => {
    const col = table.cols.qtype as Uint16Array;
    return (s) => typeName(col[s]);
  }),
};

export const dns = defineProgram<Columns>({
  name: "dns",
  // a record is a message copy (about 600 bytes): 4 MiB holds about 7000, a quarter of them
  // wakes the drain; a host's lookups are far fewer than its connects
  ringSize: 4 * 1024 * 1024,
  description:
    "Every DNS query of every process on the host, in every network namespace (cgroup_skb on the cgroup v2 root): name and type, server, rcode and answers, latency, timeouts, and who asked.",
  columns,
  eventSchema: DnsEvent,
  summarySchema: DnsSummary,
  filters,
  groups,
  failed: (table) => (s) => failed(table.cols, s),
  configure,
  batchDecoder,
  toJson,
  summarize,
  metrics,
});
