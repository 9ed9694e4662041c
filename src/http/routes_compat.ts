/**
 * The paths of the project this grew from, kept working: summaries by GET and POST, and lists.
 * They answer with the same schemas as the generated per-program routes.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { errorContent } from "./errors.ts";
import { checkDuration, EventsQuery, MAX_DURATION, SummaryQuery } from "./params.ts";
import { type AppContext, listEvents, summarize } from "./service.ts";

interface CompatPaths {
  program: string;
  /** GET and POST */
  summary: string;
  /** GET only */
  summaryAliases: string[];
  list: string;
  /** the key of the list in the answer */
  listKey: string;
}

const COMPAT: CompatPaths[] = [
  {
    program: "connection",
    summary: "/api/connection-summary",
    summaryAliases: ["/api/connections/summary"],
    list: "/api/list-connections",
    listKey: "connections",
  },
  {
    program: "packet_drop",
    summary: "/api/packet-drop-summary",
    summaryAliases: [],
    list: "/api/list-packet-drops",
    listKey: "packet_drops",
  },
];

const SummaryBody = z.object({
  pid: z.number().int().min(0).max(4294967295).optional(),
  command: z.string().min(1).max(64).optional(),
  duration: z.number().int().min(1).max(MAX_DURATION).optional(),
  duration_seconds: z.number().int().min(1).max(MAX_DURATION).optional(),
}).strict().superRefine(checkDuration).openapi("SummaryRequest");

export function compatRoutes(app: OpenAPIHono, ctx: AppContext): void {
  for (const paths of COMPAT) {
    const program = ctx.programs.get(paths.program);
    if (!program) continue;
    const name = program.name;
    const ok = {
      description: `${name} summary`,
      content: { "application/json": { schema: program.summarySchema } },
    };

    for (const path of [paths.summary, ...paths.summaryAliases]) {
      app.openapi(
        createRoute({
          method: "get",
          path,
          tags: [name, "compatibility"],
          summary: `Summary of ${name} events (same as /api/programs/${name}/summary)`,
          request: { query: SummaryQuery },
          responses: { 200: ok, 400: errorContent("invalid parameter") },
        }),
        (c) => c.json(summarize(ctx, name, c.req.valid("query")), 200),
      );
    }

    app.openapi(
      createRoute({
        method: "post",
        path: paths.summary,
        tags: [name, "compatibility"],
        summary: `Summary of ${name} events, filters in a JSON body`,
        request: {
          body: { content: { "application/json": { schema: SummaryBody } }, required: false },
        },
        responses: {
          200: ok,
          400: errorContent("invalid body"),
          415: errorContent("the body is not JSON"),
        },
      }),
      (c) => c.json(summarize(ctx, name, c.req.valid("json")), 200),
    );

    app.openapi(
      createRoute({
        method: "get",
        path: paths.list,
        tags: [name, "compatibility"],
        summary: `Recent ${name} events, newest first (same as /api/programs/${name}/events)`,
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
                  [paths.listKey]: z.array(program.eventSchema),
                }),
              },
            },
          },
          400: errorContent("invalid parameter"),
        },
      }),
      (c) => {
        const { events, ...rest } = listEvents(ctx, [name], c.req.valid("query"));
        return c.json({ ...rest, [paths.listKey]: events }, 200);
      },
    );
  }
}
