/**
 * The middleware every app runs before its routes, in order: the guard (headers, rate limit,
 * credentials, control policy, control log), query parameters on routes that take none (400),
 * and the gate of heavy queries.
 *
 * @module
 */

import type { OpenAPIHono } from "@hono/zod-openapi";
import { Access } from "./access.ts";
import { guard } from "./guard.ts";
import { Gate, heavyQueries } from "./heavy.ts";
import { COMPAT_QUERY_POSTS } from "./routes_compat.ts";
import type { AppContext } from "./service.ts";
import { strictQuery } from "./strict_query.ts";

/**
 * Installs the middleware on `app` and returns the context the routes get: `options` with an
 * {@linkcode Access} (none given: no web config, control from loopback only) and a heavy-query
 * gate.
 */
export function protect(app: OpenAPIHono, options: AppContext): AppContext {
  const ctx: AppContext = {
    ...options,
    access: options.access ?? new Access(null, { hostname: "127.0.0.1", port: 0 }),
    heavy: options.heavy ?? new Gate(),
  };
  app.use("*", guard(ctx.access!, { anyBodyType: (path) => COMPAT_QUERY_POSTS.has(path) }));
  app.use("*", strictQuery(app));
  app.use("*", heavyQueries(ctx.heavy!));
  return ctx;
}
