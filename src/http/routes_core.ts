/**
 * Health, program control and the event listing across programs.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { kernelInfo } from "../kernel/release.ts";
import { VERSION } from "../version.ts";
import { goDuration } from "./compat_shapes.ts";
import { SecurityStatus } from "./access.ts";
import { errorContent } from "./errors.ts";
import { KernelInfo } from "./routes_capabilities.ts";
import { FilterEcho, filterParams, unionFields, whereOf } from "./filters.ts";
import { checkWindow, command, limit, pid, since, typeList, until } from "./params.ts";
import { type AppContext, jsonChunks, listEventsJson } from "./service.ts";

const ProgramStatus = z.object({
  name: z.string(),
  description: z.string(),
  state: z.enum(["running", "stopped", "failed"]),
  error: z.string().nullable().openapi({
    description:
      "why it failed (the lines of libbpf's and the verifier's log that say why), or null",
  }),
  error_log: z.string().nullable().openapi({
    description: "the end of libbpf's log of the failed start (8 KiB at most), or null",
  }),
  events: z.number().int().openapi({ description: "events decoded since the server started" }),
  lost: z.number().int().openapi({
    description:
      "events the kernel could not hand over (ring buffer full) since the server started",
  }),
  ring_size_bytes: z.number().int().openapi({
    description:
      "bytes of its ring buffer in the kernel (each program's default, or --ring-size): events that find it full are lost",
  }),
  evicted: z.number().int().openapi({ description: "events evicted from the store" }),
  stored: z.number().int().openapi({ description: "events held in the store now" }),
  decode_errors: z.number().int().openapi({ description: "records that could not be decoded" }),
  started_at: z.string().nullable().openapi({ description: "when it was last started" }),
  stopped_at: z.string().nullable().openapi({
    description: "when it last stopped running (stopped, or failed while it ran), or null",
  }),
  stopped_periods: z.array(z.object({
    from: z.string(),
    until: z.string().nullable().openapi({ description: "null while it is still stopped" }),
  })).openapi({
    description:
      "the times it did not run since it first started, oldest first (the last 64); a summary window that overlaps one is window_complete: false",
  }),
}).openapi("ProgramStatus");

const Health = z.object({
  status: z.enum(["healthy", "degraded"]).openapi({
    description:
      "healthy when every program runs (this was `ok` before; `healthy` is the original project's word), degraded when one does not",
  }),
  component: z.string().openapi({ description: "what answers", example: "ebpf-server" }),
  service: z.string().openapi({ description: "the same (an older name)", example: "ebpf-server" }),
  version: z.string().openapi({ description: "the server's version", example: VERSION }),
  uptime: z.string().openapi({
    description: "time since start, as Go prints a duration (the original's field)",
    example: "1h2m5s",
  }),
  uptime_seconds: z.number(),
  programs: z.array(ProgramStatus),
  store: z.object({
    capacity: z.number().int(),
    size: z.number().int(),
    evicted: z.number().int(),
  }),
  kernel: KernelInfo.extend({
    unknown_fields: z.record(z.string(), z.array(z.string())).openapi({
      description:
        "per program, the event fields this kernel cannot give (null in events); see /api/capabilities",
    }),
    hooks_left_out: z.array(z.string()).openapi({
      description: "optional hooks (program/hook) this kernel lacks or refused",
    }),
  }),
  security: SecurityStatus,
}).openapi("Health");

const ProgramName = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, example: "connection" }),
});

export function coreRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const { manager, store, programs } = ctx;
  const kernel = kernelInfo();

  app.openapi(
    createRoute({
      method: "get",
      path: "/health",
      operationId: "getHealth",
      tags: ["server"],
      summary: "Server and program health",
      responses: {
        200: { description: "health", content: { "application/json": { schema: Health } } },
      },
    }),
    (c) => {
      manager.drain(); // counts as of now, not as of the last drain
      const list = manager.statuses();
      const uptime = (Date.now() - ctx.startedAt) / 1000;
      return c.json({
        status: list.every((p) => p.state === "running") ? "healthy" as const : "degraded" as const,
        component: "ebpf-server",
        service: "ebpf-server",
        version: VERSION,
        uptime: goDuration(uptime),
        uptime_seconds: uptime,
        programs: list,
        store: { capacity: store.capacity, size: store.size, evicted: store.evicted() },
        kernel: { ...kernel, ...manager.kernelShort() },
        security: ctx.access!.status(),
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/programs",
      operationId: "listPrograms",
      tags: ["server"],
      summary: "Every monitoring program with its state and counters",
      responses: {
        200: {
          description: "programs",
          content: {
            "application/json": { schema: z.object({ programs: z.array(ProgramStatus) }) },
          },
        },
      },
    }),
    (c) => {
      manager.drain();
      return c.json({ programs: manager.statuses() }, 200);
    },
  );

  for (const action of ["start", "stop"] as const) {
    app.openapi(
      createRoute({
        method: "post",
        path: `/api/programs/{name}/${action}`,
        operationId: `${action}Program`,
        tags: ["server"],
        summary: action === "start"
          ? "Load and attach a program (no-op when running)"
          : "Detach and unload a program (no-op when stopped); its stored events stay",
        request: { params: ProgramName },
        responses: {
          200: {
            description: "its status now",
            content: { "application/json": { schema: ProgramStatus } },
          },
          404: errorContent("no such program"),
          500: errorContent("the kernel refused it; the error has libbpf's message"),
        },
      }),
      (c) => {
        const { name } = c.req.valid("param");
        if (!manager.has(name)) {
          return c.json({ error: `no program named '${name}'; see GET /api/programs` }, 404);
        }
        try {
          return c.json(action === "start" ? manager.start(name) : manager.stop(name), 200);
        } catch (err) {
          return c.json({ error: err instanceof Error ? err.message : String(err) }, 500);
        }
      },
    );
  }

  const names = [...programs.keys()];
  const fields = unionFields(programs.values());
  const EventsQuery = z.object({
    type: typeList(names),
    pid,
    command,
    since,
    until,
    limit,
    ...filterParams(fields),
  }).strict().superRefine(checkWindow);

  const AnyEvent = z.union(
    [...programs.values()].map((p) => p.eventSchema) as unknown as [z.ZodType, z.ZodType],
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/events",
      operationId: "listEvents",
      tags: ["events"],
      summary: "Recent events of every program, newest first",
      description:
        "The field filters are those of the programs' own event routes; a program whose events lack a field given here (packet_drop has no uid) contributes none.",
      request: { query: EventsQuery },
      responses: {
        200: {
          description: "events",
          content: {
            "application/json": {
              schema: z.object({
                count: z.number().int(),
                limit: z.number().int(),
                truncated: z.boolean().openapi({ description: "more events matched than limit" }),
                filter: FilterEcho,
                events: z.array(AnyEvent),
              }).openapi("EventList"),
            },
          },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const types = q.type ? q.type.split(",") : names;
      return jsonChunks(await listEventsJson(ctx, types, { ...q, where: whereOf(q, fields) }));
    },
  );
}
