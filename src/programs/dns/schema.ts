/**
 * The JSON shapes of DNS queries and their summary.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { AttributionFields, AttributionSummaryFields } from "../../cgroup/mod.ts";
import { EventBase, SummaryBase } from "../schema.ts";

/** How a query ended. */
export const OUTCOMES = ["answered", "error", "timeout"] as const;

const Answer = z.object({
  name: z.string().openapi({ description: "the record's owner name", example: "example.com" }),
  type: z.string().openapi({ description: "its type: A, AAAA, CNAME, ...", example: "A" }),
  data: z.string().openapi({
    description:
      "its data: an address (A, AAAA), a name (CNAME, PTR, NS), `preference name` (MX), quoted strings (TXT), or `\\# length hex` for other types",
    example: "93.184.215.14",
  }),
}).openapi("DnsAnswer");

export const DnsEvent = EventBase.extend({
  type: z.literal("dns"),
  wall_time: z.string().openapi({
    description:
      "when the query ended: its answer arrived, or its timeout passed (RFC 3339, microseconds, UTC)",
  }),
  pid: z.number().int().openapi({
    description:
      "the process that sent the query (the socket's owner, remembered when it connected or sent to a DNS port); 0 when unknown (see owner_known)",
  }),
  command: z.string().openapi({ description: "its command; empty when unknown" }),
  tid: z.number().int().openapi({ description: "the thread that connected or sent; 0 unknown" }),
  uid: z.number().int().openapi({
    description: "the sender's uid, else the socket's (its creator's)",
  }),
  cgroup_id: z.number().int().openapi({
    description: "the sender's cgroup v2 id, else the socket's",
  }),
  ...AttributionFields,
  netns: z.number().int().openapi({
    description: "inode number of the sender's network namespace; 0 when unknown",
  }),
  owner_known: z.boolean().openapi({
    description:
      "whether the sender is known: false for a socket that connected before the program started (pid 0; uid and cgroup_id are the socket's)",
  }),
  query_time: z.string().openapi({ description: "when the query was first sent (RFC 3339)" }),
  query_name: z.string().openapi({
    description: "the name asked, lowercase, without the trailing dot",
    example: "example.com",
  }),
  query_type: z.string().openapi({ description: "A, AAAA, PTR, MX, ... by name", example: "A" }),
  query_type_code: z.number().int(),
  transport: z.enum(["udp", "tcp"]),
  server: z.string().openapi({
    description: "ip:port that answered, else the one the query went to",
    example: "127.0.0.53:53",
  }),
  server_ip: z.string(),
  server_port: z.number().int(),
  client_port: z.number().int().openapi({ description: "the sending socket's local port" }),
  id: z.number().int().openapi({ description: "the message id" }),
  rcode: z.string().nullable().openapi({
    description: "NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ... by name; null when no answer came",
    example: "NXDOMAIN",
  }),
  rcode_code: z.number().int().nullable(),
  outcome: z.enum(OUTCOMES).openapi({
    description:
      "answered (NOERROR or NXDOMAIN), error (another rcode), or timeout (no answer within --dns-timeout)",
  }),
  answers: z.array(Answer).openapi({
    description: "the answer section, at most 16 records (see answer_count, answers_complete)",
  }),
  answer_count: z.number().int().nullable().openapi({
    description: "records in the answer section as the header says; null when no answer came",
  }),
  answers_complete: z.boolean().openapi({
    description:
      "false when answers were left out: past the first 512 bytes the kernel copies, or past 16",
  }),
  ttl: z.number().int().nullable().openapi({
    description: "the smallest TTL of the answers (seconds); null without answers",
  }),
  latency_ns: z.number().nullable().openapi({
    description: "from the first send of the query to its answer; null on timeout",
  }),
  truncated: z.boolean().openapi({
    description: "the answer had the TC bit: the server cut it (clients retry over TCP)",
  }),
  authoritative: z.boolean().openapi({ description: "the answer had the AA bit" }),
  attempts: z.number().int().openapi({
    description: "how often the query was sent before it ended (more than 1: retried)",
  }),
}).openapi("DnsEvent");

const Count = z.number().int().nonnegative();
const Counts = z.record(z.string(), Count);
const Latency = z.object({
  p50: z.number().nullable(),
  p90: z.number().nullable(),
  p99: z.number().nullable(),
  max: z.number().nullable(),
}).openapi({ description: "latency of the queries that got an answer, in nanoseconds" });

const NameCount = z.object({
  name: z.string(),
  queries: Count,
  failures: Count.openapi({ description: "NXDOMAIN, error rcodes and timeouts" }),
});

export const DnsSummary = SummaryBase.extend({
  queries: Count.openapi({ description: "queries that ended in the window" }),
  by_outcome: Counts.openapi({ description: "answered, error, timeout" }),
  by_rcode: Counts.openapi({ description: "by response code name (queries with an answer)" }),
  by_type: Counts.openapi({ description: "by query type name" }),
  by_transport: Counts,
  latency_ns: Latency,
  top_names: z.array(NameCount).openapi({
    description: "the 20 names asked most, with their failures",
  }),
  other_names: z.object({ names: Count, queries: Count }).openapi({
    description: "the names (and their queries) beyond top_names",
  }),
  top_failing_names: z.array(NameCount).openapi({
    description: "the 20 names with the most failures (NXDOMAIN, error, timeout)",
  }),
  other_failing_names: z.object({ names: Count, failures: Count }).openapi({
    description: "the failing names (and their failures) beyond top_failing_names",
  }),
  by_server: z.array(z.object({ server: z.string(), queries: Count, failures: Count }))
    .openapi({ description: "the 20 busiest servers" }),
  ...AttributionSummaryFields,
  by_process: z.array(z.object({
    pid: z.number().int(),
    command: z.string(),
    queries: Count,
    failures: Count,
    latency_p50_ns: z.number().nullable(),
  })).openapi({ description: "the 20 processes that asked most (pid 0: unknown owner)" }),
  other_processes: z.object({ processes: Count, queries: Count }),
  not_recorded: z.object({
    malformed: Count.openapi({
      description: "packets to or from a DNS port that held no readable DNS query or answer",
    }),
    unmatched_answers: Count.openapi({
      description:
        "answers whose query was not seen: sent before the program started, answered after its timeout, or duplicated",
    }),
    answers_cut: Count.openapi({
      description:
        "answer records left out because the message was longer than the 512 bytes copied",
    }),
    tcp_unparsed: Count.openapi({
      description: "TCP segments to or from a DNS port whose data was no whole message",
    }),
    pending_overflow: Count.openapi({
      description: "queries dropped unanswered because 65536 were already waiting",
    }),
    abandoned: Count.openapi({
      description: "queries that were waiting when the program stopped",
    }),
  }).openapi({
    description:
      "counted in the window, without pid or command filters (these have no owner), never silent",
  }),
  pending: Count.openapi({ description: "queries waiting for an answer now" }),
}).openapi("DnsSummary");
