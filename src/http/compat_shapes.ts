/**
 * The answers of the paths kept from the project this grew from (a Go server also called
 * ebpf-server), in its shapes: what a script written against it reads is there, with the field
 * names and JSON types it had, and everything this project adds stays beside it.
 *
 * - events: the native event plus `address_family` as the family's number (2 for AF_INET, as the
 *   original printed it; the name moves to `address_family_name`), `return_code` (= `ret`) and
 *   `time` (= `wall_time`); a connection's `destination_ip`, `destination_port`, `protocol` and
 *   `socket_type` are always a string or number, as there ("" or 0 where the native event has
 *   null); packet drops also get `drop_reason`, `drop_reason_code` and `skb_length` /
 *   `packet_size_bytes`.
 * - lists: `total_pids`, `total_events`, `events_by_pid` (`{"<pid>": [events]}`), `query_time`
 *   and a `message`, beside this project's `count`, `limit`, `truncated` and the flat list.
 * - summaries: `count`, `pid` (0 for any), `command` ("" for any), `duration_seconds`,
 *   `duration`, `query_time` and a `message`, beside the native summary's fields.
 *
 * @module
 */

import { z } from "@hono/zod-openapi";
import { familyNumber } from "../net/names.ts";
import { ConnectionEvent, ConnectionSummary } from "../programs/connection/schema.ts";
import { PacketDropEvent, PacketDropSummary } from "../programs/packet_drop/schema.ts";
import { TimeSlice } from "./heavy.ts";

type Json = Record<string, unknown>;

/** How one program's answers look on the compatibility paths. */
export interface CompatShape {
  /** The program's name. */
  program: string;
  /** What one event is called in messages: "connection event", "packet drop". */
  noun: string;
  /** The key of a list's flat list of events (this project's, beside `events_by_pid`). */
  listKey: string;
  eventSchema: z.ZodObject;
  summarySchema: z.ZodObject;
  listSchema: z.ZodObject;
  /** A native event as the compatibility paths give it. */
  event(json: Json): Json;
  /** The original's `count` of a native summary. */
  count(summary: Json): number;
  /** A sentence on a native summary (filters and window included). */
  summaryMessage(summary: Json): string;
}

const time = z.string().openapi({
  description: "the same as wall_time (the original project's name)",
  example: "2026-11-25T03:20:46.797542Z",
});

const CompatConnectionEvent = ConnectionEvent.omit({
  address_family: true,
  destination_ip: true,
  destination_port: true,
  protocol: true,
  socket_type: true,
}).extend({
  address_family: z.number().int().openapi({
    description:
      "family of the destination sockaddr as its number (1 AF_UNIX, 2 AF_INET, 10 AF_INET6), as the original project printed it",
    example: 2,
  }),
  protocol: z.string().openapi({
    description: 'the socket\'s protocol (TCP, UDP, UNIX, ...); "" if the fd was no socket',
    example: "TCP",
  }),
  socket_type: z.string().openapi({
    description: 'the socket\'s type (STREAM, DGRAM, ...); "" if the fd was no socket',
    example: "STREAM",
  }),
  destination_ip: z.string().openapi({
    description: 'destination IPv4 or IPv6 address; "" for other families (as in the original)',
    example: "127.0.0.1",
  }),
  destination_port: z.number().int().openapi({
    description: "destination port; 0 for other families",
    example: 443,
  }),
  address_family_name: z.string().openapi({
    description: "the family's name, which /api/programs/connection/events gives as address_family",
    example: "AF_INET",
  }),
  return_code: z.number().int().openapi({
    description: "the same as ret: what connect() returned, 0 or -errno (the original's name)",
    example: -111,
  }),
  time,
}).openapi("CompatConnectionEvent");

const CompatPacketDropEvent = PacketDropEvent.extend({
  drop_reason: z.string().openapi({
    description: "the same as reason (the original project's name)",
    example: "NO_SOCKET",
  }),
  drop_reason_code: z.number().int().openapi({ description: "the same as reason_code" }),
  skb_length: z.number().int().openapi({ description: "the same as length" }),
  packet_size_bytes: z.number().int().openapi({ description: "the same as length" }),
  time,
}).openapi("CompatPacketDropEvent");

/** The fields every compatibility summary adds, and the two whose JSON type it changes. */
const CompatSummaryFields = {
  count: z.number().int().nonnegative().openapi({
    description: "events in the window (the original's field: connect() calls, or drops)",
    example: 5,
  }),
  pid: z.number().int().openapi({
    description: "the pid filter; 0 when none (the original's zero value)",
    example: 1234,
  }),
  command: z.string().openapi({
    description: 'the command filter; "" when none (the original\'s zero value)',
    example: "curl",
  }),
  duration: z.number().int().openapi({
    description: "the same as duration_seconds (the name the original README used)",
    example: 60,
  }),
  query_time: z.string().openapi({
    description: "when the answer was made (RFC 3339)",
    example: "2026-11-25T03:20:46Z",
  }),
  message: z.string().openapi({
    description: "the answer in a sentence",
    example:
      "5 connect() calls by curl in the last 60 seconds: 3 succeeded, 1 in progress, 1 failed.",
  }),
};

function compatSummary(native: z.ZodObject, name: string): z.ZodObject {
  return native.omit({ pid: true, command: true }).extend(CompatSummaryFields).openapi(name);
}

/** A list of one program's events in the original's shape, the flat list under `listKey`. */
function compatList(event: z.ZodObject, listKey: string, name: string): z.ZodObject {
  const events = z.array(event);
  return z.object({
    total_pids: z.number().int().openapi({ description: "processes in the list", example: 2 }),
    total_events: z.number().int().openapi({ description: "events in the list", example: 5 }),
    events_by_pid: z.record(z.string(), events).openapi({
      description: "the listed events by process id (the original project's shape)",
    }),
    query_time: CompatSummaryFields.query_time,
    message: z.string().openapi({
      description: "the answer in a sentence",
      example: "5 connection events of 2 processes, newest first.",
    }),
    count: z.number().int().openapi({ description: "the same as total_events" }),
    limit: z.number().int(),
    truncated: z.boolean().openapi({ description: "more events matched than limit" }),
    [listKey]: events.openapi({ description: "the same events in one list, newest first" }),
  }).openapi(name);
}

/** `1 packet drop`, `2 packet drops`. */
export function counted(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

/** `by curl (pid 1234)`, `by pid 1234`, `by curl`, or "" without filters. */
function byWhom(s: Json, verb = "by"): string {
  const pid = s.pid as number | null, command = s.command as string | null;
  if (pid !== null && command !== null) return ` ${verb} ${command} (pid ${pid})`;
  if (pid !== null) return ` ${verb} pid ${pid}`;
  if (command !== null) return ` ${verb} ${command}`;
  return "";
}

/** What a summary's reader should know about how far to trust it, as sentences. */
function caveats(s: Json): string {
  const notes: string[] = [];
  const because = (s.window_incomplete_because ?? []) as string[];
  if (because.includes("not_running")) {
    notes.push(
      " The program did not watch the whole window (it started later, or was stopped): counts are low.",
    );
  }
  if (because.includes("evicted")) {
    notes.push(" Events of the window were already evicted from the store: counts are low.");
  }
  const lost = s.events_lost as number;
  if (lost > 0) {
    const were = lost === 1 ? "was" : "were";
    notes.push(` ${counted(lost, "event")} of the window ${were} lost in the kernel (ring full).`);
  }
  return notes.join("");
}

function window(s: Json): string {
  return `in the last ${counted(s.duration_seconds as number, "second")}`;
}

const connection: CompatShape = {
  program: "connection",
  noun: "connection event",
  listKey: "connections",
  eventSchema: CompatConnectionEvent,
  summarySchema: compatSummary(ConnectionSummary, "CompatConnectionSummary"),
  listSchema: compatList(CompatConnectionEvent, "connections", "CompatConnectionList"),
  event(json) {
    const name = json.address_family as string;
    return {
      ...json,
      address_family: familyNumber(name),
      protocol: json.protocol ?? "",
      socket_type: json.socket_type ?? "",
      destination_ip: json.destination_ip ?? "",
      destination_port: json.destination_port ?? 0,
      address_family_name: name,
      return_code: json.ret,
      time: json.wall_time,
    };
  },
  count: (s) => s.total_attempts as number,
  summaryMessage(s) {
    const n = s.total_attempts as number;
    const parts = n === 0
      ? ""
      : `: ${s.successful} succeeded, ${s.in_progress} in progress, ${s.failed} failed`;
    return `${counted(n, "connect() call")}${byWhom(s)} ${window(s)}${parts}.${caveats(s)}`;
  },
};

const packetDrop: CompatShape = {
  program: "packet_drop",
  noun: "packet drop",
  listKey: "packet_drops",
  eventSchema: CompatPacketDropEvent,
  summarySchema: compatSummary(PacketDropSummary, "CompatPacketDropSummary"),
  listSchema: compatList(CompatPacketDropEvent, "packet_drops", "CompatPacketDropList"),
  event(json) {
    return {
      ...json,
      drop_reason: json.reason,
      drop_reason_code: json.reason_code,
      skb_length: json.length,
      packet_size_bytes: json.length,
      time: json.wall_time,
    };
  },
  count: (s) => s.total_drops as number,
  summaryMessage(s) {
    const n = s.total_drops as number;
    const [reason, times] = Object.entries(s.by_reason as Record<string, number>)[0] ?? [];
    const most = reason === undefined ? "" : `, most often ${reason} (${times})`;
    const source = s.counts_source === "kernel"
      ? ", counted by the kernel"
      : ", counted from the stored events";
    return `${counted(n, "packet drop")}${byWhom(s, "of")} ${window(s)}${most}${
      n === 0 ? "" : source
    }.${caveats(s)}`;
  },
};

/** The programs with compatibility paths, by name. */
export const COMPAT_SHAPES: ReadonlyMap<string, CompatShape> = new Map(
  [connection, packetDrop].map((s) => [s.program, s]),
);

/** Whole seconds as Go prints a duration: `45s`, `2m5s`, `1h0m3s` (the original's `uptime`). */
export function goDuration(seconds: number): string {
  const t = Math.max(0, Math.floor(seconds));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}

/** RFC 3339 to the second, as the original's `query_time` (Go's time.RFC3339). */
export function queryTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");
}

/** A native summary as the compatibility paths give it, made at `now` (Unix ms). */
export function compatSummaryOf(
  shape: CompatShape,
  summary: Json,
  { now }: { now: number },
): Json {
  return {
    count: shape.count(summary),
    ...summary,
    pid: summary.pid ?? 0,
    command: summary.command ?? "",
    duration: summary.duration_seconds,
    query_time: queryTime(now),
    message: shape.summaryMessage(summary),
  };
}

/** A native listing (`listEvents`) in the compatibility shape, made at `now` (Unix ms). */
export async function compatListOf(
  shape: CompatShape,
  list: { count: number; limit: number; truncated: boolean; events: Json[] },
  { now, slice = new TimeSlice() }: { now: number; slice?: TimeSlice },
): Promise<Json> {
  // in slices: 10,000 events take tens of milliseconds to reshape
  const events: Json[] = new Array(list.events.length);
  const byPid: Record<string, Json[]> = {};
  for (let i = 0; i < events.length; i++) {
    const e = events[i] = shape.event(list.events[i]);
    (byPid[String(e.pid)] ??= []).push(e);
    if (slice.due()) await slice.next();
  }
  const pids = Object.keys(byPid).length;
  let message = events.length === 0
    ? `No ${shape.noun}s matched.`
    : `${counted(events.length, shape.noun)} of ${
      counted(pids, "process", "processes")
    }, newest first.`;
  if (list.truncated) {
    message += ` More matched than limit=${list.limit}: raise limit or narrow the filters.`;
  }
  return {
    total_pids: pids,
    total_events: events.length,
    events_by_pid: byPid,
    query_time: queryTime(now),
    message,
    count: list.count,
    limit: list.limit,
    truncated: list.truncated,
    [shape.listKey]: events,
  };
}
