/**
 * Query parameters on routes that take none are a 400, like unknown parameters on the routes
 * that take some (their zod schemas are strict): `POST /api/programs/x/stop?pid=abc` must not
 * stop the program as if the parameter meant something. Which routes take which parameters is
 * read from the app's own OpenAPI document, so it cannot drift from the routes.
 *
 * @module
 */

import type { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { openApiDocument } from "./docs.ts";

interface Operation {
  method: string;
  pattern: RegExp;
  /** Whether it declares any query parameter. */
  takesQuery: boolean;
}

function operations(app: OpenAPIHono): Operation[] {
  const doc = openApiDocument(app) as unknown as {
    paths?: Record<string, Record<string, { parameters?: { in: string }[] }>>;
  };
  const out: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths ?? {})) {
    const pattern = new RegExp(
      "^" + path.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(
        "[^/]+",
      ) + "$",
    );
    for (const [method, op] of Object.entries(methods)) {
      out.push({
        method: method.toUpperCase(),
        pattern,
        takesQuery: (op.parameters ?? []).some((p) => p.in === "query"),
      });
    }
  }
  // concrete paths before templates (`/api/programs/tcp_life/open` before `{name}`)
  const template = (o: Operation) => o.pattern.source.includes("[^/]+");
  return [...out.filter((o) => !template(o)), ...out.filter(template)];
}

/** The middleware: a 400 naming the first parameter of a query string a route does not take. */
export function strictQuery(app: OpenAPIHono): MiddlewareHandler {
  let ops: Operation[] | null = null;
  return async (c, next) => {
    const url = c.req.url;
    const q = url.indexOf("?");
    if (q >= 0 && q < url.length - 1) {
      ops ??= operations(app);
      const method = c.req.method === "HEAD" ? "GET" : c.req.method;
      const path = c.req.path;
      const op = ops.find((o) => o.method === method && o.pattern.test(path));
      const undocumented = op === undefined &&
        (path === "/openapi.json" || path === "/docs" || path.startsWith("/docs/"));
      if ((op && !op.takesQuery) || undocumented) {
        const name = new URLSearchParams(url.slice(q + 1)).keys().next().value ?? "";
        const message = `unknown query parameter '${name}': ${method} ${path} takes none`;
        return c.json({ error: message, issues: [{ field: name, message }] }, 400);
      }
    }
    await next();
  };
}
