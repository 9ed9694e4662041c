/**
 * The JSON shapes of connection events and summaries, defined once: they validate, document the
 * OpenAPI entries and type the code.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { AttributionFields, AttributionSummaryFields } from "../../cgroup/mod.ts";
import { EventBase, SummaryBase } from "../schema.ts";

export const ConnectionEvent = EventBase.extend({
  type: z.literal("connection"),
  tid: z.number().int().openapi({ description: "thread id that called connect()" }),
  uid: z.number().int().openapi({ description: "user id of the caller" }),
  cgroup_id: z.number().int().openapi({ description: "cgroup v2 id of the caller" }),
  ...AttributionFields,
  address_family: z.string().openapi({
    description: "family of the destination sockaddr",
    example: "AF_INET",
  }),
  protocol: z.string().nullable().openapi({
    description:
      "the socket's protocol as the kernel has it (TCP, UDP, UNIX, ...); null if the fd was no socket",
    example: "TCP",
  }),
  protocol_number: z.number().int().openapi({ description: "raw protocol number of the socket" }),
  socket_type: z.string().nullable().openapi({
    description:
      "the socket's type as the kernel has it (STREAM, DGRAM, ...); null if the fd was no socket",
    example: "STREAM",
  }),
  destination_ip: z.string().nullable().openapi({
    description: "destination IPv4 or IPv6 address; null for other families",
    example: "127.0.0.1",
  }),
  destination_port: z.number().int().nullable().openapi({
    description: "destination port; null for other families",
    example: 443,
  }),
  destination: z.string().openapi({
    description: "ip:port, [ipv6]:port, the unix path (@name for abstract sockets), or the family",
    example: "127.0.0.1:443",
  }),
  destination_name: z.string().nullable().openapi({
    description:
      "the name this process (or one of its cgroup) looked up and got destination_ip in answer, at most 5 minutes before (dns program); null when none was seen",
    example: "example.com",
  }),
  unix_path: z.string().nullable().openapi({
    description: "AF_UNIX socket path (@name for an abstract socket); null for other families",
  }),
  result: z.string().openapi({
    description:
      "`ok`, or the errno name of a failure (ECONNREFUSED, EINPROGRESS for non-blocking sockets, ...)",
    example: "ECONNREFUSED",
  }),
  ret: z.number().int().openapi({ description: "raw return value of connect(): 0 or -errno" }),
  latency_ns: z.number().openapi({ description: "time spent inside connect(), in nanoseconds" }),
}).openapi("ConnectionEvent");

const Count = z.number().int().nonnegative();

export const ConnectionSummary = SummaryBase.extend({
  total_attempts: Count.openapi({ description: "connect() calls in the window" }),
  successful: Count.openapi({ description: "calls that returned 0" }),
  in_progress: Count.openapi({ description: "non-blocking calls that returned EINPROGRESS" }),
  failed: Count.openapi({ description: "calls that returned another error" }),
  by_result: z.record(z.string(), Count).openapi({ description: "counts by result" }),
  by_protocol: z.record(z.string(), Count).openapi({ description: "counts by protocol" }),
  by_command: z.record(z.string(), Count).openapi({ description: "counts by command" }),
  ...AttributionSummaryFields,
  top_destinations: z.array(z.object({
    destination: z.string(),
    count: Count,
    failed: Count,
  })).openapi({ description: "the 20 most frequent destinations" }),
  latency_ns: z.object({
    p50: z.number().nullable(),
    p90: z.number().nullable(),
    p99: z.number().nullable(),
    max: z.number().nullable(),
  }).openapi({ description: "connect() latency percentiles" }),
}).openapi("ConnectionSummary");
