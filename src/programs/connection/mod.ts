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
import { destinationName } from "../dns/mod.ts";
import { codeField, ipField, numberField, portField, simpleGroup } from "../filter.ts";
import {
  commonFilters,
  commonGroups,
  familyParse,
  PROTO_UNIX,
  PROTO_UNKNOWN,
  protocolParse,
} from "../fields.ts";
import {
  attributionFields,
  baseFields,
  eventJson,
  field,
  intField,
  ipv4Key,
  otherKey,
} from "../event_json.ts";
import { defineProgram } from "../program.ts";
import { ConnectionEvent, ConnectionSummary } from "./schema.ts";
import { type Columns, columns, columnWriter } from "./columns.ts";
import { destinationOf, summarize, summarizeSliced } from "./summary.ts";
import { unpackKey } from "./tally.ts";

export { columns } from "./columns.ts";

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

/**
 * A connection event's fields: `toJson` and the lists' JSON writer both come from them. The
 * destination (ip, port, path, `destination`) is worked out once per event, and kept by what
 * decides it (an IPv4 address and port, a unix path, a family).
 */
const toJson = eventJson<Columns>((table, store) => {
  // a copy of the columns' object: its properties are fast to read (the table's own object,
  // made a column at a time, is a dictionary)
  const c = { ...table.cols };
  const ts = c.ts, pid = c.pid, cgroup = c.cgroup, family = c.family, sockType = c.sock_type;
  const protocol = c.protocol, port = c.port, ret = c.ret, path = c.unix_path;
  const addr = c.addr as Uint8Array;
  /** IPv4: the address; IPv6: none; other families: their null */
  const ipKey = (s: number) =>
    family[s] === AF_INET ? ipv4Key(addr, s) : family[s] === AF_INET6 ? -1 : otherKey(0);
  /** What decides the destination: IPv4 address and port, unix path, or family (IPv6: none) */
  const destinationKey = (s: number) =>
    family[s] === AF_INET
      ? ipv4Key(addr, s) * 65536 + port[s]
      : family[s] === AF_INET6
      ? -1
      : family[s] === AF_UNIX
      ? otherKey(256 + path[s])
      : otherKey(family[s]);
  type Destination = ReturnType<typeof destinationOf>;
  const known = new Map<number, Destination>();
  let dest: Destination | null = null;
  const destination = (s: number) => {
    if (dest !== null) return dest;
    const key = destinationKey(s);
    dest = key >= 0 ? known.get(key) ?? null : null;
    if (dest === null) {
      dest = destinationOf(table, s, store);
      if (key >= 0) {
        if (known.size >= 4096) known.clear();
        known.set(key, dest);
      }
    }
    return dest;
  };
  return {
    begin() {
      dest = null;
    },
    fields: [
      ...baseFields("connection", table as unknown as EventTable, store),
      intField("tid", (s) => c.tid[s]),
      intField("uid", (s) => c.uid[s]),
      intField("cgroup_id", (s) => cgroup[s]),
      attributionFields(table as unknown as EventTable, store),
      field("address_family", (s) => familyName(family[s]), (s) => family[s]),
      field(
        "protocol",
        (s) => protocolName(family[s], protocol[s], sockType[s]),
        (s) => (family[s] * 65536 + protocol[s]) * 256 + sockType[s],
      ),
      intField("protocol_number", (s) => protocol[s]),
      field("socket_type", (s) => socketTypeName(sockType[s]), (s) => sockType[s]),
      field("destination_ip", (s) => destination(s).ip, ipKey),
      field(
        "destination_port",
        (s) => destination(s).port,
        (s) => family[s] === AF_INET || family[s] === AF_INET6 ? port[s] : otherKey(0),
      ),
      field("destination", (s) => destination(s).destination, destinationKey),
      field("destination_name", (s) =>
        destinationName(store, destination(s).ip, {
          pid: pid[s],
          cgroupId: cgroup[s],
          tsMs: ts[s],
        })),
      field(
        "unix_path",
        (s) => destination(s).path,
        (s) => family[s] === AF_UNIX ? path[s] : otherKey(0),
      ),
      field("result", (s) => resultName(ret[s]), (s) => ret[s] + 2 ** 31),
      field("ret", (s) => ret[s], (s) => ret[s] + 2 ** 31),
      field("latency_ns", (s) => c.latency[s]),
    ],
  };
});

const EINPROGRESS = -115;

/** `result=` values: `ok` and errno names (ECONNREFUSED, EINPROGRESS, E42); codes are `-ret`. */
function parseResult(text: string): { label: string; codes: number[] } {
  if (text.toLowerCase() === "ok") return { label: "ok", codes: [0] };
  const upper = text.toUpperCase();
  const number = /^E([0-9]{1,4})$/.exec(upper);
  if (number && Number(number[1]) < 4096) {
    const errno = Number(number[1]);
    return { label: resultName(-errno), codes: [errno] };
  }
  for (let errno = 1; errno < 4096; errno++) {
    if (resultName(-errno) === upper) return { label: upper, codes: [errno] };
  }
  throw new TypeError(`'${text}' is not ok nor an errno name (ECONNREFUSED, EINPROGRESS, E113)`);
}

/** A row's protocol as the codes of `protocolParse`. */
function protocolKey(cols: Record<string, ArrayLike<number>>) {
  const family = cols.family, type = cols.sock_type, protocol = cols.protocol;
  return (s: number) =>
    type[s] === 0
      ? PROTO_UNKNOWN
      : family[s] === AF_UNIX
      ? PROTO_UNIX
      : family[s] === AF_INET || family[s] === AF_INET6
      ? protocol[s]
      : PROTO_UNKNOWN;
}

const ipVersion = (cols: Record<string, ArrayLike<number>>) => {
  const family = cols.family;
  return (s: number) => family[s] === AF_INET ? 4 : family[s] === AF_INET6 ? 6 : 0;
};

export const connection = defineProgram<Columns>({
  name: "connection",
  description:
    "Every completed connect() on the host: caller, destination, the socket's real type and protocol, result and latency.",
  columns,
  eventSchema: ConnectionEvent,
  summarySchema: ConnectionSummary,
  batchDecoder: columnWriter,
  filters: {
    ...commonFilters(),
    uid: numberField("the caller's uid", { column: "uid", max: 4294967295 }),
    destination: ipField("the destination address", {
      columns: ["addr"],
      version: ipVersion,
    }),
    port: portField("the destination port", {
      columns: ["port"],
      valid: (cols) => {
        const v = ipVersion(cols);
        return (s) => v(s) !== 0;
      },
    }),
    protocol: codeField("the socket's protocol (TCP, UDP, UNIX, ICMP, ...)", {
      example: "TCP",
      parse: protocolParse,
      key: protocolKey,
    }),
    family: codeField("the destination's address family (AF_INET or ipv4, AF_INET6, AF_UNIX)", {
      example: "ipv4",
      parse: familyParse,
      key: (cols) => (s) => cols.family[s],
    }),
    result: codeField(
      "what connect() returned: ok, or an errno name (ECONNREFUSED, EINPROGRESS, ...)",
      { example: "ECONNREFUSED", parse: parseResult, key: (cols) => (s) => -cols.ret[s] },
    ),
  },
  groups: {
    ...commonGroups(),
    destination: simpleGroup(
      "ip:port, unix path or family",
      (table, store) => (s) => destinationOf(table as never, s, store).destination,
    ),
    destination_ip: simpleGroup(
      "the destination address",
      (table, store) => (s) => destinationOf(table as never, s, store).ip,
    ),
    port: simpleGroup(
      "the destination port",
      (table, store) => (s) => destinationOf(table as never, s, store).port,
    ),
    result: simpleGroup("ok or the errno name", (table) => {
      const ret = table.cols.ret as Int32Array;
      return (s) => resultName(ret[s]);
    }),
    protocol: simpleGroup("the socket's protocol", (table) => {
      const c = table.cols as Record<string, ArrayLike<number>>;
      return (s) => protocolName(c.family[s], c.protocol[s], c.sock_type[s]);
    }),
    uid: simpleGroup("the caller's uid", (table) => {
      const uid = table.cols.uid as Uint32Array;
      return (s) => uid[s];
    }),
  },
  failed(table) {
    const ret = table.cols.ret as Int32Array;
    return (s) => ret[s] !== 0 && ret[s] !== EINPROGRESS;
  },
  toJson,
  summarize,
  summarizeSliced,
  metrics,
});
