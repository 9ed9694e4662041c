/**
 * connection: every completed connect(2) on the host, from `bpf/connection.bpf.c`.
 *
 * @module
 */

import { familyName, protocolName, resultName, socketTypeName } from "../../net/names.ts";
import type { MetricFamily } from "../../metrics/exposition.ts";
import type { LabelCap } from "../../metrics/label_cap.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { destinationName } from "../dns/mod.ts";
import { defineProgram } from "../program.ts";
import { isoMicros, roundMicros } from "../query.ts";
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

function toJson(table: EventTable<Columns>, slot: number, store: Store) {
  const c = table.cols;
  const dest = destinationOf(table, slot, store);
  const sockType = c.sock_type[slot];
  const family = c.family[slot];
  return {
    type: "connection",
    wall_time: isoMicros(c.ts[slot]),
    timestamp_ms: roundMicros(c.ts[slot]),
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
    destination_name: destinationName(store, dest.ip, {
      pid: c.pid[slot],
      cgroupId: c.cgroup[slot],
      tsMs: c.ts[slot],
    }),
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
  batchDecoder: columnWriter,
  toJson,
  summarize,
  summarizeSliced,
  metrics,
});
