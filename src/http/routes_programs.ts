/**
 * Routes generated from the program list: `GET /api/programs/<name>/events`,
 * `GET /api/programs/<name>/summary` and `GET /api/programs/<name>/top`, each documented with
 * that program's own schemas and filter parameters, plus whatever extra routes a program
 * declares.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Program } from "../programs/program.ts";
import { SummaryBase } from "../programs/schema.ts";
import { errorContent } from "./errors.ts";
import { FilterEcho, filterParams, whereOf } from "./filters.ts";
import {
  checkDuration,
  checkWindow,
  command,
  duration,
  durationSeconds,
  limit,
  pid,
  since,
  until,
} from "./params.ts";
import { type AppContext, jsonChunks, listEventsJson, summarize, topOf } from "./service.ts";

/** Groups in a top answer at most. */
const MAX_TOP = 1000;
/** Fields a top answer groups by at most. */
const MAX_BY = 4;

function eventsQuery(program: Program) {
  return z.object({ pid, command, since, until, limit, ...filterParams(program.filters) })
    .strict()
    .superRefine(checkWindow);
}

function summaryQuery(program: Program) {
  return z.object({
    pid,
    command,
    duration,
    duration_seconds: durationSeconds,
    ...filterParams(program.filters),
  }).strict().superRefine(checkDuration);
}

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
      request: { query: eventsQuery(program) },
      responses: {
        200: {
          description: `${program.name} events`,
          content: {
            "application/json": {
              schema: z.object({
                count: z.number().int(),
                limit: z.number().int(),
                truncated: z.boolean().openapi({ description: "more events matched than limit" }),
                filter: FilterEcho,
                [listKey]: z.array(program.eventSchema),
              }),
            },
          },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const chunks = await listEventsJson(
        ctx,
        [program.name],
        { ...q, where: whereOf(q, program.filters) },
        listKey,
      );
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
      request: { query: summaryQuery(program) },
      responses: {
        200: {
          description: `${program.name} summary`,
          content: { "application/json": { schema: program.summarySchema } },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(
        await summarize(ctx, program.name, { ...q, where: whereOf(q, program.filters) }),
        200,
      );
    },
  );
}

/** `GET path`: the largest groups of a program's events over a window ending now. */
export function topRoute(
  app: OpenAPIHono,
  ctx: AppContext,
  program: Program,
  options: RouteOptions,
): void {
  const names = Object.keys(program.groups ?? {});
  const by = z.string()
    .transform((text, c) => {
      const fields = text.split(",").map((f) => f.trim());
      const bad = fields.filter((f) => !names.includes(f));
      if (bad.length || fields.length > MAX_BY || new Set(fields).size !== fields.length) {
        c.addIssue({
          code: "custom",
          message: bad.length
            ? `'${
              bad[0]
            }' is not a field of ${program.name} to group by; give up to ${MAX_BY} of: ${
              names.join(", ")
            }`
            : `give up to ${MAX_BY} different fields of: ${names.join(", ")}`,
        });
        return z.NEVER;
      }
      return fields;
    })
    .openapi({
      type: "string",
      description:
        `what to group by, comma-separated (up to ${MAX_BY}; groups are their combinations): ${
          names.join(", ")
        }`,
      example: names.includes("destination") ? "destination,unit" : names[0],
      param: { name: "by", in: "query" },
    });
  const topLimit = z.string()
    .regex(/^[0-9]+$/, `must be a whole number from 1 to ${MAX_TOP}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_TOP, `must be a whole number from 1 to ${MAX_TOP}`)
    .optional()
    .openapi({
      type: "integer",
      description: `how many groups at most (default 10, at most ${MAX_TOP}), largest first`,
      param: { name: "limit", in: "query" },
    });
  const Query = z.object({
    by,
    duration,
    limit: topLimit,
    pid,
    command,
    ...filterParams(program.filters),
  }).strict();
  const Group = z.object({
    count: z.number().int().openapi({ description: "events in the group" }),
    ...(program.failed
      ? {
        failed: z.number().int().openapi({
          description:
            "of them, failures (connect errors; refused, timed out or reset connections; NXDOMAIN, error or timed-out queries)",
        }),
      }
      : {}),
  }).catchall(
    z.union([z.string().nullable(), z.number().nullable()]).openapi({
      description: "the value of a `by` field: a string, a number, or null",
      anyOf: [{ type: "string", nullable: true }, { type: "number", nullable: true }],
    }),
  ).openapi({
    description: "one group: the value of each `by` field, its count (and failures)",
  });
  app.openapi(
    createRoute({
      method: "get",
      ...options,
      description:
        "Counts of the events in the window grouped by one or more fields, largest first: exact (every event of the window that matches the filters is counted). The filters are those of the events route.",
      request: { query: Query },
      responses: {
        200: {
          description: `the largest groups of ${program.name} events`,
          content: {
            "application/json": {
              schema: z.object({
                program: z.string(),
                by: z.array(z.string()),
                since: z.string(),
                until: z.string(),
                duration_seconds: z.number(),
                filter: FilterEcho,
                window_complete: SummaryBase.shape.window_complete,
                window_incomplete_because: SummaryBase.shape.window_incomplete_because,
                total: z.number().int().openapi({ description: "events that matched" }),
                groups: z.array(Group),
                other_groups: z.number().int().openapi({ description: "groups past limit" }),
                other_count: z.number().int().openapi({ description: "their events" }),
              }).openapi(`${pascal(program.name)}Top`),
            },
          },
        },
        400: errorContent("invalid parameter"),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(
        await topOf(ctx, program.name, { ...q, where: whereOf(q, program.filters) }),
        200,
      );
    },
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
    if (program.groups) {
      topRoute(app, ctx, program, {
        path: `/api/programs/${name}/top`,
        operationId: `get${pascal(name)}Top`,
        tags: [name],
        summary: `The largest groups of ${name} events (by destination, unit, ...) over a window`,
      });
    }
    program.routes?.(app, ctx);
  }
}
