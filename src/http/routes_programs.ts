/**
 * Routes generated from the program list: `GET /api/programs/<name>/events` and
 * `GET /api/programs/<name>/summary`, each documented with that program's own schemas, plus
 * whatever extra routes a program declares.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Program } from "../programs/program.ts";
import { errorContent } from "./errors.ts";
import { EventsQuery, SummaryQuery } from "./params.ts";
import { type AppContext, jsonChunks, listEventsJson, summarize } from "./service.ts";

interface RouteOptions {
  path: string;
  operationId: string;
  tags: string[];
  summary: string;
}

/** `TcpLife` from `tcp_life`, for operation ids. */
function pascal(name: string): string {
  return name.split("_").map((w) => w[0].toUpperCase() + w.slice(1)).join("");
}

/** `GET path`: a program's recent events, the list under `listKey`. */
export function eventListRoute(
  app: OpenAPIHono,
  ctx: AppContext,
  program: Program,
  options: RouteOptions & { listKey: string },
): void {
  const { path, operationId, tags, summary, listKey } = options;
  app.openapi(
    createRoute({
      method: "get",
      path,
      operationId,
      tags,
      summary,
      description: program.description,
      request: { query: EventsQuery },
      responses: {
        200: {
          description: `${program.name} events`,
          content: {
            "application/json": {
              schema: z.object({
                count: z.number().int(),
                limit: z.number().int(),
                truncated: z.boolean().openapi({ description: "more events matched than limit" }),
                [listKey]: z.array(program.eventSchema),
              }),
            },
          },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => {
      const chunks = await listEventsJson(ctx, [program.name], c.req.valid("query"), listKey);
      return jsonChunks(chunks);
    },
  );
}

/** `GET path`: a program's summary over a window ending now. */
export function summaryRoute(
  app: OpenAPIHono,
  ctx: AppContext,
  program: Program,
  options: RouteOptions,
): void {
  app.openapi(
    createRoute({
      method: "get",
      ...options,
      request: { query: SummaryQuery },
      responses: {
        200: {
          description: `${program.name} summary`,
          content: { "application/json": { schema: program.summarySchema } },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => c.json(await summarize(ctx, program.name, c.req.valid("query")), 200),
  );
}

export function programRoutes(app: OpenAPIHono, ctx: AppContext): void {
  for (const program of ctx.programs.values()) {
    const name = program.name;
    eventListRoute(app, ctx, program, {
      path: `/api/programs/${name}/events`,
      operationId: `list${pascal(name)}Events`,
      tags: [name],
      summary: `Recent ${name} events, newest first`,
      listKey: "events",
    });
    summaryRoute(app, ctx, program, {
      path: `/api/programs/${name}/summary`,
      operationId: `get${pascal(name)}Summary`,
      tags: [name],
      summary: `Summary of ${name} events over a window ending now`,
    });
    program.routes?.(app, ctx);
  }
}
