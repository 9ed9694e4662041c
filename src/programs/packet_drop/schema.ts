/**
 * The JSON shapes of packet drops and their summary.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { AttributionFields, AttributionSummaryFields } from "../../cgroup/mod.ts";
import { EventBase, SummaryBase } from "../schema.ts";

const Owner = z.object({
  pid: z.number().int(),
  command: z.string(),
  cgroup_id: z.number().int(),
}).openapi("SocketOwner", {
  description:
    "the process that owned the packet's socket, remembered when it connected or accepted",
});

export const PacketDropEvent = EventBase.extend({
  type: z.literal("packet_drop"),
  pid: z.number().int().openapi({
    description:
      "the process the drop is attributed to: the socket's owner when known, else the task in whose context the kernel dropped it (0 for idle)",
  }),
  command: z.string().openapi({ description: "the command of that process" }),
  cgroup_id: z.number().int().openapi({
    description:
      "the cgroup v2 id of that process: the owner's, else the context task's (0 for idle)",
  }),
  ...AttributionFields,
  reason: z.string().nullable().openapi({
    description:
      "the kernel's drop reason name (enum skb_drop_reason of the running kernel); null when this kernel's skb:kfree_skb gives no reason (see /api/capabilities)",
    example: "NO_SOCKET",
  }),
  reason_code: z.number().int().nullable().openapi({
    description: "its number on this kernel; null when the kernel gives no reason",
  }),
  location: z.string().optional().openapi({
    description:
      "kernel address that dropped the packet (hex); only with --expose-kernel-addresses, since it gives away where the kernel is loaded (KASLR)",
  }),
  location_symbol: z.string().nullable().openapi({
    description:
      "the kernel address that dropped the packet as function+offset, from /proc/kallsyms (null when unreadable: needs CAP_SYSLOG)",
    example: "udp_queue_rcv_one_skb+0x3c",
  }),
  protocol: z.string().openapi({ description: "link-layer protocol (IPv4, IPv6, ARP, ...)" }),
  protocol_number: z.number().int(),
  l4_protocol: z.string().nullable().openapi({ description: "TCP, UDP, ICMP, ... for IP packets" }),
  source_ip: z.string().nullable(),
  source_port: z.number().int().nullable(),
  destination_ip: z.string().nullable(),
  destination_port: z.number().int().nullable(),
  source: z.string().nullable().openapi({ description: "ip:port or ip" }),
  destination: z.string().nullable().openapi({ description: "ip:port or ip" }),
  tcp_flags: z.string().nullable().openapi({ description: "TCP flags, e.g. SYN or ACK|RST" }),
  length: z.number().int().openapi({ description: "packet length in bytes (skb->len)" }),
  interface: z.string().nullable().openapi({ description: "device name, as the kernel has it" }),
  ifindex: z.number().int(),
  netns: z.number().int().openapi({
    description: "inode number of the network namespace (0 unknown)",
  }),
  context_pid: z.number().int().openapi({ description: "task running when the drop happened" }),
  context_command: z.string(),
  owner: Owner.nullable(),
}).openapi("PacketDropEvent");

const Count = z.number().int().nonnegative();
const Counts = z.record(z.string(), Count);

export const PacketDropSummary = SummaryBase.extend({
  total_drops: Count.openapi({
    description:
      "drops in the window: exact kernel counts without filters (pid, command or field filters), else events",
  }),
  counts_source: z.enum(["kernel", "events"]).openapi({
    description:
      "kernel: by_reason/by_location are the in-kernel counters (exact even when events were lost); events: counted from stored events (a pid, command or field filter was given)",
  }),
  events_in_window: Count.openapi({ description: "drop events stored for the window" }),
  by_reason: Counts.openapi({
    description: "drops by the kernel's reason name (`unknown` where the kernel gives none)",
  }),
  by_location: Counts.openapi({
    description:
      "drops by function+offset; `unknown` for addresses without a symbol (the raw address with --expose-kernel-addresses)",
  }),
  by_protocol: Counts.openapi({ description: "from events" }),
  by_l4_protocol: Counts.openapi({ description: "from events" }),
  by_interface: Counts.openapi({ description: "from events" }),
  by_owner: z.array(z.object({ pid: z.number().int(), command: z.string(), count: Count }))
    .openapi({ description: "drops by the process that owned the socket (from events)" }),
  unattributed: Count.openapi({ description: "events whose socket owner was unknown" }),
  ...AttributionSummaryFields,
}).openapi("PacketDropSummary");

export const DropReasonList = z.object({
  available: z.boolean().openapi({
    description: "whether the running kernel's BTF has enum skb_drop_reason",
  }),
  reasons: z.array(z.object({ code: z.number().int(), name: z.string() })).openapi({
    description: "every reason the kernel knows, by code (empty when it has none)",
  }),
  note: z.string().nullable().openapi({
    description: "why the list is empty, when it is",
  }),
}).openapi("DropReasonList");
