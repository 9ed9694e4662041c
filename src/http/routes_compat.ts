/**
 * The paths of the project this grew from, kept working with its answers (see
 * `compat_shapes.ts`): summaries and lists by GET and POST, and `GET /` describing the service.
 * All are under the `compatibility` tag; `/api/programs/...` has the native shapes.
 *
 * As in the original, a POST body is read as JSON whatever its content-type (its README posts
 * with `curl -d '{...}'`, which says `application/x-www-form-urlencoded`), a pid of 0 and an empty
 * command mean "any", and `duration` and `duration_seconds` are both the window in seconds.
 *
 * @module
 */

import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, Next } from "hono";
import { VERSION } from "../version.ts";
import { COMPAT_SHAPES, compatListOf, type CompatShape, compatSummaryOf } from "./compat_shapes.ts";
import { documentOf } from "./docs.ts";
import { errorContent } from "./errors.ts";
import { filterParams, whereOf } from "./filters.ts";
import {
  anyCommand,
  anyPid,
  checkDuration,
  checkWindow,
  duration,
  durationSeconds,
  limit,
  MAX_DURATION,
  MAX_LIMIT,
  rfc3339,
  since,
  until,
} from "./params.ts";
import { type AppContext, jsonChunks, jsonSliced, listEvents, summarize } from "./service.ts";

/** The tag of every compatibility path. */
export const COMPAT_TAG = "compatibility";

interface CompatPaths {
  program: string;
  /** GET and POST; the first is the original's path, the others aliases of it */
  summaries: string[];
  /** GET and POST */
  list: string;
}

const COMPAT: CompatPaths[] = [
  {
    program: "connection",
    summaries: ["/api/connection-summary", "/api/connections/summary"],
    list: "/api/list-connections",
  },
  {
    program: "packet_drop",
    summaries: ["/api/packet-drop-summary"],
    list: "/api/list-packet-drops",
  },
];

/** The compatibility POSTs: read-only queries whose body is JSON whatever its content-type. */
export const COMPAT_QUERY_POSTS: ReadonlySet<string> = new Set(
  COMPAT.flatMap((p) => [...p.summaries, p.list]),
);

const JSON_TYPE = /^application\/([a-z.-]+\+)?json/i;

/**
 * Has a POST body that is not labelled JSON (curl -d says x-www-form-urlencoded; some clients say
 * nothing) read as JSON, as the original server did. The guard let it through (it is one of
 * {@linkcode COMPAT_QUERY_POSTS}) and has read the body already: an empty one reads as `{}`.
 */
async function bodyAsJson(c: Context, next: Next): Promise<void> {
  if (c.req.method === "POST" && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
    const text = await c.req.text();
    const headers = new Headers(c.req.raw.headers);
    headers.set("content-type", "application/json");
    c.req.raw = new Request(c.req.url, { method: "POST", headers, body: text.trim() || "{}" });
  }
  await next();
}

const SummaryQuery = z.object({
  pid: anyPid,
  command: anyCommand,
  duration,
  duration_seconds: durationSeconds,
}).strict().superRefine(checkDuration);

const ListQuery = z.object({ pid: anyPid, command: anyCommand, since, until, limit })
  .strict()
  .superRefine(checkWindow);

const bodyPid = z.number().int().min(0).max(4294967295).optional().openapi({
  description: "only events of this process id; 0 means any",
  example: 1234,
});
const bodyCommand = z.string().max(64).optional().openapi({
  description: "only events of this command; empty means any",
  example: "curl",
});
const bodySeconds = (description: string) =>
  z.number().int().min(1).max(MAX_DURATION).optional().openapi({ description, example: 60 });

const SummaryBody = z.object({
  pid: bodyPid,
  command: bodyCommand,
  duration: bodySeconds(
    "window in seconds, ending now (default 60), as the original README wrote it",
  ),
  duration_seconds: bodySeconds("the same, as the original code read it"),
}).strict().superRefine(checkDuration).openapi("CompatSummaryRequest");

const ListBody = z.object({
  pid: bodyPid,
  command: bodyCommand,
  since: rfc3339("only events at or after this time (RFC 3339)").optional(),
  until: rfc3339("only events at or before this time (RFC 3339)").optional(),
  limit: z.number().int().min(1).max(MAX_LIMIT).optional().openapi({
    description: `how many events at most (default 100, at most ${MAX_LIMIT}), newest first`,
  }),
}).strict().superRefine(checkWindow).openapi("CompatListRequest");

/** 0 and "" are the original's "any". */
function filters<T extends { pid?: number; command?: string }>(q: T): T {
  return { ...q, pid: q.pid || undefined, command: q.command || undefined };
}

/** `compatGetListConnections` from GET /api/list-connections. */
function operationId(method: "get" | "post", path: string): string {
  const words = path.replace(/^\/api\//, "").split(/[-/_]/).filter(Boolean);
  const pascal = words.map((w) => w[0].toUpperCase() + w.slice(1)).join("");
  return `compat${method === "get" ? "Get" : "Post"}${pascal || "ServiceInfo"}`;
}

const POST_NOTE =
  "The body is read as JSON whatever its content-type, as the original server did, so `curl -d '{...}'` works (a read-only query: cross-site requests are refused all the same). An empty body means no filters.";

function summaryRoutes(app: OpenAPIHono, ctx: AppContext, shape: CompatShape, paths: string[]) {
  const name = shape.program;
  const answer = {
    description: `${name} summary, in the original's shape and with this project's fields`,
    content: { "application/json": { schema: shape.summarySchema } },
  };
  const fields = ctx.programs.get(name)?.filters;
  const respond = async (c: Context, query: z.infer<typeof SummaryQuery>) => {
    const now = (ctx.now ?? Date.now)();
    const native = await summarize(ctx, name, {
      ...filters(query),
      where: whereOf(query, fields),
    });
    return c.json(compatSummaryOf(shape, native, { now }), 200);
  };
  const Query = SummaryQuery.safeExtend({ ...filterParams(fields) });
  for (const [i, path] of paths.entries()) {
    const alias = i === 0 ? "" : ` (an alias of ${paths[0]})`;
    app.openapi(
      createRoute({
        method: "get",
        path,
        operationId: operationId("get", path),
        tags: [COMPAT_TAG],
        summary:
          `Summary of ${name} events, the original's count beside /api/programs/${name}/summary's fields${alias}`,
        description: `Takes the filters of /api/programs/${name}/summary too.`,
        request: { query: Query },
        responses: { 200: answer, 400: errorContent("invalid parameter") },
      }),
      (c) => respond(c, c.req.valid("query")),
    );
    app.use(path, bodyAsJson);
    app.openapi(
      createRoute({
        method: "post",
        path,
        operationId: operationId("post", path),
        tags: [COMPAT_TAG],
        summary: `Summary of ${name} events, filters in a JSON body${alias}`,
        description: POST_NOTE,
        request: {
          body: { content: { "application/json": { schema: SummaryBody } }, required: false },
        },
        responses: { 200: answer, 400: errorContent("invalid body") },
      }),
      (c) => respond(c, c.req.valid("json")),
    );
  }
}

function listRoutes(app: OpenAPIHono, ctx: AppContext, shape: CompatShape, path: string) {
  const name = shape.program;
  const answer = {
    description: `${name} events by pid (the original's shape) and in one list`,
    content: { "application/json": { schema: shape.listSchema } },
  };
  const fields = ctx.programs.get(name)?.filters;
  const respond = async (_c: Context, query: z.infer<typeof ListQuery>) => {
    const now = (ctx.now ?? Date.now)();
    const list = await listEvents(ctx, [name], {
      ...filters(query),
      where: whereOf(query, fields),
    });
    // 10,000 events are listed twice (by pid and flat): in slices, as the native lists are
    return jsonChunks(await jsonSliced(await compatListOf(shape, list, { now })));
  };
  const Query = ListQuery.safeExtend({ ...filterParams(fields) });
  app.openapi(
    createRoute({
      method: "get",
      path,
      operationId: operationId("get", path),
      tags: [COMPAT_TAG],
      summary: `Recent ${name} events by process id, newest first`,
      description: `Takes the filters of /api/programs/${name}/events too.`,
      request: { query: Query },
      responses: { 200: answer, 400: errorContent("invalid parameter") },
    }),
    (c) => respond(c, c.req.valid("query")),
  );
  app.use(path, bodyAsJson);
  app.openapi(
    createRoute({
      method: "post",
      path,
      operationId: operationId("post", path),
      tags: [COMPAT_TAG],
      summary: `Recent ${name} events by process id, filters in a JSON body`,
      description: POST_NOTE,
      request: {
        body: { content: { "application/json": { schema: ListBody } }, required: false },
      },
      responses: { 200: answer, 400: errorContent("invalid body") },
    }),
    (c) => respond(c, c.req.valid("json")),
  );
}

const ServiceInfo = z.object({
  service: z.string().openapi({ example: "ebpf-server" }),
  version: z.string().openapi({ example: VERSION }),
  description: z.string(),
  endpoints: z.record(z.string(), z.string()).openapi({
    description: 'every route, "METHOD path": what it answers',
    example: { "GET /health": "Server and program health" },
  }),
  documentation: z.object({
    api: z.string().nullable().openapi({ description: "Swagger UI; null with --no-docs" }),
    openapi_json: z.string().openapi({ description: "the OpenAPI document" }),
  }),
}).openapi("ServiceInfo");

export function compatRoutes(app: OpenAPIHono, ctx: AppContext): void {
  for (const paths of COMPAT) {
    const shape = COMPAT_SHAPES.get(paths.program);
    if (!shape || !ctx.programs.has(paths.program)) continue;
    summaryRoutes(app, ctx, shape, paths.summaries);
    listRoutes(app, ctx, shape, paths.list);
  }

  let endpoints: Record<string, string> | undefined;
  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: operationId("get", "/"),
      tags: [COMPAT_TAG],
      summary: "What this service is and every route it has (as the original's root answered)",
      responses: {
        200: { description: "service", content: { "application/json": { schema: ServiceInfo } } },
      },
    }),
    (c) => {
      endpoints ??= endpointsOf(app);
      return c.json({
        service: "ebpf-server",
        version: VERSION,
        description:
          "What this host's processes do on the network, recorded by eBPF programs in the kernel.",
        endpoints,
        documentation: { api: ctx.docs ? "/docs/" : null, openapi_json: "/openapi.json" },
      }, 200);
    },
  );
}

function endpointsOf(app: OpenAPIHono): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, item] of Object.entries(documentOf(app).paths ?? {})) {
    for (const method of ["get", "post", "put", "patch", "delete"] as const) {
      const op = item[method];
      if (op) out[`${method.toUpperCase()} ${path}`] = op.summary ?? "";
    }
  }
  return out;
}
