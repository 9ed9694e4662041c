/**
 * For fleets and live watching: `GET /metrics` (Prometheus text format) and
 * `GET /api/events/stream` (server-sent events).
 *
 * @module
 */

import process from "node:process";
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type MetricFamily, renderMetrics } from "../metrics/exposition.ts";
import { LabelCap } from "../metrics/label_cap.ts";
import { errorContent } from "./errors.ts";
import { httpFamilies } from "./http_metrics.ts";
import { unitFamily } from "../programs/metrics.ts";
import { filterParams, unionFields, whereOf } from "./filters.ts";
import { command, pid, typeList } from "./params.ts";
import type { AppContext } from "./service.ts";
import { StreamHub } from "./stream.ts";

const STATES = ["running", "stopped", "failed"] as const;

function serverFamilies(ctx: AppContext, hub: StreamHub): MetricFamily[] {
  const statuses = ctx.manager.statuses();
  const perProgram = (
    name: string,
    help: string,
    value: (s: typeof statuses[number]) => number,
    type: "counter" | "gauge" = "counter",
  ): MetricFamily => ({
    name,
    type,
    help,
    samples: statuses.map((s) => ({ labels: { program: s.name }, value: value(s) })),
  });
  const cpu = process.cpuUsage();
  return [
    perProgram(
      "ebpf_server_program_events_total",
      "events decoded into the store",
      (s) => s.events,
    ),
    perProgram(
      "ebpf_server_program_lost_total",
      "events the kernel could not hand over (ring buffer full)",
      (s) => s.lost,
    ),
    perProgram(
      "ebpf_server_program_evicted_total",
      "events evicted from the store",
      (s) => s.evicted,
    ),
    perProgram(
      "ebpf_server_program_decode_errors_total",
      "records that could not be decoded",
      (s) => s.decode_errors,
    ),
    perProgram(
      "ebpf_server_program_up",
      "1 when the program runs",
      (s) => s.state === "running" ? 1 : 0,
      "gauge",
    ),
    {
      name: "ebpf_server_program_state",
      type: "gauge",
      help: "1 for the program's current state",
      samples: statuses.flatMap((s) =>
        STATES.map((state) => ({
          labels: { program: s.name, state },
          value: s.state === state ? 1 : 0,
        }))
      ),
    },
    {
      name: "ebpf_server_store_events",
      type: "gauge",
      help: "events held in the store",
      samples: [{ value: ctx.store.size }],
    },
    {
      name: "ebpf_server_store_capacity",
      type: "gauge",
      help: "events the store holds at most",
      samples: [{ value: ctx.store.capacity }],
    },
    {
      name: "ebpf_server_stream_clients",
      type: "gauge",
      help: "clients of /api/events/stream",
      samples: [{ value: hub.clients }],
    },
    {
      name: "ebpf_server_stream_missed_total",
      type: "counter",
      help: "events skipped for stream clients that read too slowly",
      samples: [{ value: hub.missedTotal }],
    },
    ...httpFamilies(ctx, hub),
    {
      name: "process_cpu_seconds_total",
      type: "counter",
      help: "user and system CPU time of the server",
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    {
      name: "process_resident_memory_bytes",
      type: "gauge",
      help: "resident memory of the server",
      samples: [{ value: Deno.memoryUsage().rss }],
    },
    {
      name: "process_start_time_seconds",
      type: "gauge",
      help: "start time of the server, Unix seconds",
      samples: [{ value: ctx.startedAt / 1000 }],
    },
  ];
}

export function liveRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const hub = new StreamHub(ctx, { maxClients: ctx.maxStreams });
  const caps = new Map<string, LabelCap>();
  const names = [...ctx.programs.keys()];

  app.openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      operationId: "getMetrics",
      tags: ["metrics"],
      summary: "Counters and gauges in the Prometheus text format",
      description:
        "Per program: events, lost, evicted, state; connect() calls by command, protocol and result; drops by kernel reason; TCP bytes, retransmits and outcomes; the server's CPU, memory and store. Counters never go down across program restarts. Command labels are capped (--metrics-top-commands).",
      responses: {
        200: {
          description: "metrics",
          content: { "text/plain": { schema: z.string() } },
        },
      },
    }),
    (c) => {
      ctx.manager.refresh();
      const families = serverFamilies(ctx, hub);
      for (const program of ctx.programs.values()) {
        if (!program.metrics) continue;
        let cap = caps.get(program.name);
        if (!cap) caps.set(program.name, cap = new LabelCap(ctx.metricsTopCommands ?? 20));
        families.push(...program.metrics(ctx.store, cap));
      }
      families.push(unitFamily(ctx.store, names, ctx.metricsTopCommands ?? 20));
      return c.text(renderMetrics(families), 200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
      });
    },
  );

  const fields = unionFields(ctx.programs.values());
  const StreamQuery = z.object({ type: typeList(names), pid, command, ...filterParams(fields) })
    .strict();
  app.openapi(
    createRoute({
      method: "get",
      path: "/api/events/stream",
      operationId: "streamEvents",
      tags: ["events"],
      summary: "New events as they happen (server-sent events), filtered like /api/events",
      description:
        "Each event is sent as `event: <program>` with the JSON of /api/events as data. A client that reads too slowly gets events skipped (its queue is bounded) and an `event: missed` with the running count of what it missed.",
      request: { query: StreamQuery },
      responses: {
        200: {
          description: "an endless event stream",
          content: { "text/event-stream": { schema: z.string() } },
        },
        400: errorContent("invalid parameter"),
        429: errorContent("as many stream clients as allowed (--web.max-streams) are connected"),
      },
    }),
    (c) => {
      const q = c.req.valid("query");
      const body = hub.open(
        {
          types: q.type ? q.type.split(",") : names,
          pid: q.pid,
          command: q.command,
          where: whereOf(q, fields),
        },
        c.req.raw.signal,
      );
      if (!body) {
        return c.json(
          { error: `${hub.maxClients} stream clients are connected, the most at once; try later` },
          429,
          { "retry-after": "5" },
        );
      }
      return c.body(body, 200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      });
    },
  );
}
