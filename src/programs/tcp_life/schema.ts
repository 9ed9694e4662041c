/**
 * The JSON shapes of TCP connection lives, open connections and their summary.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { AttributionFields, AttributionSummaryFields } from "../../cgroup/mod.ts";
import { EventBase, SummaryBase } from "../schema.ts";

export const OUTCOMES = [
  "closed",
  "reset_by_peer",
  "reset_sent",
  "refused",
  "timeout",
  "closed_before_established",
  "open",
] as const;

const Connect = z.object({
  result: z.string().openapi({ description: "what connect() returned: ok, EINPROGRESS, ..." }),
  latency_ns: z.number(),
  wall_time: z.string(),
}).openapi("ConnectJoin", {
  description:
    "the connect() call that opened this socket (from the connection program), if recorded",
});

export const TcpLifeEvent = EventBase.extend({
  type: z.literal("tcp_life"),
  pid: z.number().int().openapi({
    description:
      "the owner: the process that connected (outbound) or accepted (inbound); 0 if unknown",
  }),
  command: z.string().openapi({ description: "the owner's command; empty if unknown" }),
  cgroup_id: z.number().int().openapi({ description: "the owner's cgroup v2 id; 0 if unknown" }),
  ...AttributionFields,
  wall_time: z.string().openapi({
    description: "when it closed (or the snapshot was taken, for open ones)",
  }),
  direction: z.enum(["outbound", "inbound", "unknown"]).openapi({
    description:
      "outbound: this host connected; inbound: it accepted; unknown: it began before the program",
  }),
  address_family: z.enum(["AF_INET", "AF_INET6"]),
  local_ip: z.string(),
  local_port: z.number().int(),
  remote_ip: z.string(),
  remote_port: z.number().int(),
  local: z.string().openapi({ example: "127.0.0.1:43210" }),
  remote: z.string().openapi({ example: "127.0.0.1:8080" }),
  remote_name: z.string().nullable().openapi({
    description:
      "the name the owner (or a process of its cgroup) looked up and got remote_ip in answer, at most 5 minutes before the connection began (dns program); null when none was seen",
    example: "example.com",
  }),
  start_time: z.string().nullable().openapi({
    description: "first state change seen; null if before the program",
  }),
  duration_ms: z.number().nullable().openapi({ description: "from start_time to close (or now)" }),
  bytes_sent: z.number().int().openapi({
    description:
      "bytes sent and acknowledged (tcp_sock.bytes_acked): counts sequence space, so it includes 1 for the SYN of an outbound connection and 1 for an acknowledged FIN",
  }),
  bytes_received: z.number().int().openapi({
    description: "bytes received (tcp_sock.bytes_received): includes 1 for a FIN received",
  }),
  srtt_us: z.number().int().openapi({ description: "smoothed round-trip time, microseconds" }),
  retransmits: z.number().int().openapi({ description: "segments retransmitted" }),
  segments_out: z.number().int().openapi({ description: "segments sent" }),
  resets_sent: z.number().int().nullable().openapi({
    description: "resets this host sent; null when this kernel has no tcp:tcp_send_reset",
  }),
  resets_received: z.number().int().nullable().openapi({
    description: "resets received; null when this kernel has no tcp:tcp_receive_reset",
  }),
  states: z.array(z.string()).openapi({
    description: "the last states walked, oldest first (up to 8)",
    example: ["CLOSE", "SYN_SENT", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"],
  }),
  state_changes: z.number().int().openapi({ description: "how many state changes were seen" }),
  state: z.string().openapi({ description: "the state now (CLOSE when it ended)" }),
  error: z.string().nullable().openapi({
    description: "the socket's error at close (ECONNREFUSED, ETIMEDOUT, ...)",
  }),
  outcome: z.enum(OUTCOMES).openapi({ description: "how it ended" }),
  connect: Connect.nullable(),
}).openapi("TcpLifeEvent");

const Count = z.number().int().nonnegative();

const Group = z.object({
  connections: Count,
  bytes_sent: Count,
  bytes_received: Count,
  retransmits: Count,
  segments_out: Count,
  retransmit_rate: z.number().nullable().openapi({ description: "retransmits / segments_out" }),
  duration_ms: z.object({
    p50: z.number().nullable(),
    p90: z.number().nullable(),
    p99: z.number().nullable(),
  }),
  by_outcome: z.record(z.string(), Count),
});

export const TcpLifeSummary = SummaryBase.extend({
  ...Group.shape,
  by_remote: z.array(Group.extend({ remote: z.string() })).openapi({
    description: "the 20 remote endpoints with most connections",
  }),
  by_process: z.array(Group.extend({ pid: z.number().int(), command: z.string() })).openapi({
    description: "the 20 processes with most connections",
  }),
  ...AttributionSummaryFields,
}).openapi("TcpLifeSummary");

export const OpenConnections = z.object({
  count: z.number().int(),
  connections: z.array(TcpLifeEvent),
}).openapi("OpenConnections");
