/**
 * Health, program control and the event listing across programs.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { SecurityStatus } from "./access.ts";
import { errorContent } from "./errors.ts";
import { checkWindow, command, limit, pid, since, typeList, until } from "./params.ts";
import { type AppContext, jsonChunks, listEventsJson } from "./service.ts";

const ProgramStatus = z.object({
  name: z.string(),
  description: z.string(),
  state: z.enum(["running", "stopped", "failed"]),
  error: z.string().nullable().openapi({ description: "why it failed, or null" }),
  events: z.number().int().openapi({ description: "events decoded since the server started" }),
  lost: z.number().int().openapi({
    description:
      "events the kernel could not hand over (ring buffer full) since the server started",
  }),
  evicted: z.number().int().openapi({ description: "events evicted from the store" }),
  stored: z.number().int().openapi({ description: "events held in the store now" }),
  decode_errors: z.number().int().openapi({ description: "records that could not be decoded" }),
  started_at: z.string().nullable().openapi({ description: "when it was last started" }),
}).openapi("ProgramStatus");

const Health = z.object({
  status: z.enum(["ok", "degraded"]).openapi({
    description: "degraded when a program is not running",
  }),
  uptime_seconds: z.number(),
  programs: z.array(ProgramStatus),
  store: z.object({
    capacity: z.number().int(),
    size: z.number().int(),
    evicted: z.number().int(),
  }),
  security: SecurityStatus,
}).openapi("Health");

const ProgramName = z.object({
  name: z.string().openapi({ param: { name: "name", in: "path" }, example: "connection" }),
});

export function coreRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const { manager, store, programs } = ctx;

  app.openapi(
    createRoute({
      method: "get",
      path: "/health",
      summary: "Server and program health",
      responses: {
        200: { description: "health", content: { "application/json": { schema: Health } } },
      },
    }),
    (c) => {
      manager.drain(); // counts as of now, not as of the last drain
      const list = manager.statuses();
      return c.json({
        status: list.every((p) => p.state === "running") ? "ok" as const : "degraded" as const,
        uptime_seconds: (Date.now() - ctx.startedAt) / 1000,
        programs: list,
        store: { capacity: store.capacity, size: store.size, evicted: store.evicted() },
        security: ctx.access!.status(),
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/programs",
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
  const EventsQuery = z.object({
    type: typeList(names),
    pid,
    command,
    since,
    until,
    limit,
  }).strict().superRefine(checkWindow);

  const AnyEvent = z.union(
    [...programs.values()].map((p) => p.eventSchema) as unknown as [z.ZodType, z.ZodType],
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/api/events",
      summary: "Recent events of every program, newest first",
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
      return jsonChunks(await listEventsJson(ctx, types, q));
    },
  );
}
