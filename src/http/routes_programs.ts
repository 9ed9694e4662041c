/**
 * Routes generated from the program list: `GET /api/programs/<name>/events` and
 * `GET /api/programs/<name>/summary`, each documented with that program's own schemas.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { errorContent } from "./errors.ts";
import { EventsQuery, SummaryQuery } from "./params.ts";
import { type AppContext, listEvents, summarize } from "./service.ts";

export function programRoutes(app: OpenAPIHono, ctx: AppContext): void {
  for (const program of ctx.programs.values()) {
    const name = program.name;
    app.openapi(
      createRoute({
        method: "get",
        path: `/api/programs/${name}/events`,
        tags: [name],
        summary: `Recent ${name} events, newest first`,
        description: program.description,
        request: { query: EventsQuery },
        responses: {
          200: {
            description: `${name} events`,
            content: {
              "application/json": {
                schema: z.object({
                  count: z.number().int(),
                  limit: z.number().int(),
                  truncated: z.boolean(),
                  events: z.array(program.eventSchema),
                }),
              },
            },
          },
          400: errorContent("invalid parameter"),
        },
      }),
      (c) => c.json(listEvents(ctx, [name], c.req.valid("query")), 200),
    );

    app.openapi(
      createRoute({
        method: "get",
        path: `/api/programs/${name}/summary`,
        tags: [name],
        summary: `Summary of ${name} events over a window ending now`,
        request: { query: SummaryQuery },
        responses: {
          200: {
            description: `${name} summary`,
            content: { "application/json": { schema: program.summarySchema } },
          },
          400: errorContent("invalid parameter"),
        },
      }),
      (c) => c.json(summarize(ctx, name, c.req.valid("query")), 200),
    );

    program.routes?.(app, ctx);
  }
}
