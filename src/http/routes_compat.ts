/**
 * The paths of the project this grew from, kept working: summaries by GET and POST, and lists.
 * They answer with the same schemas as the generated per-program routes.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { errorContent } from "./errors.ts";
import { checkDuration, MAX_DURATION } from "./params.ts";
import { eventListRoute, summaryRoute } from "./routes_programs.ts";
import { type AppContext, summarize } from "./service.ts";

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
    const tags = [name, "compatibility"];
    for (const path of [paths.summary, ...paths.summaryAliases]) {
      summaryRoute(app, ctx, program, {
        path,
        tags,
        summary: `Summary of ${name} events (same as /api/programs/${name}/summary)`,
      });
    }

    app.openapi(
      createRoute({
        method: "post",
        path: paths.summary,
        tags,
        summary: `Summary of ${name} events, filters in a JSON body`,
        request: {
          body: { content: { "application/json": { schema: SummaryBody } }, required: false },
        },
        responses: {
          200: {
            description: `${name} summary`,
            content: { "application/json": { schema: program.summarySchema } },
          },
          400: errorContent("invalid body"),
          415: errorContent("the body is not JSON"),
        },
      }),
      async (c) => c.json(await summarize(ctx, name, c.req.valid("json")), 200),
    );

    eventListRoute(app, ctx, program, {
      path: paths.list,
      tags,
      summary: `Recent ${name} events, newest first (same as /api/programs/${name}/events)`,
      listKey: paths.listKey,
    });
  }
}
