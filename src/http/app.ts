/**
 * The Hono app: every route declared with @hono/zod-openapi, every input validated, every error
 * a JSON body. Tested in process with `app.request(...)`.
 *
 * @module
 */

import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { log } from "../log.ts";
import { docsRoutes } from "./docs.ts";
import { validationHook } from "./errors.ts";
import { protect } from "./protect.ts";
import { capabilitiesRoutes } from "./routes_capabilities.ts";
import { COMPAT_TAG, compatRoutes } from "./routes_compat.ts";
import { coreRoutes } from "./routes_core.ts";
import { liveRoutes } from "./routes_live.ts";
import { programRoutes } from "./routes_programs.ts";
import type { AppContext } from "./service.ts";

export type { AppContext } from "./service.ts";

/** Builds the app over a manager and store. */
export function createApp(options: AppContext): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const ctx = protect(app, options);
  coreRoutes(app, ctx);
  capabilitiesRoutes(app, ctx);
  programRoutes(app, ctx);
  compatRoutes(app, ctx);
  liveRoutes(app, ctx);
  docsRoutes(app, {
    docs: ctx.docs,
    tags: [
      { name: "server", description: "Health, and each program's state: start and stop them" },
      { name: "events", description: "Events of every program, listed or streamed" },
      ...[...ctx.programs.values()].map((p) => ({ name: p.name, description: p.description })),
      { name: "metrics", description: "Prometheus metrics" },
      {
        name: COMPAT_TAG,
        description:
          "The paths of the project this grew from, answering in its shapes (with this project's fields beside them)",
      },
    ],
  });
  app.notFound((c) =>
    c.json({ error: `no route ${c.req.method} ${c.req.path}; see /openapi.json` }, 404)
  );
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      const status = err.status;
      const message = status === 415
        ? "the body must be JSON: send it with 'content-type: application/json'"
        : status === 400 && /malformed json/i.test(err.message)
        ? 'malformed JSON body: send a JSON object such as {"pid": 1234}'
        : err.message;
      return c.json({ error: message }, status);
    }
    if (err instanceof SyntaxError) {
      return c.json({ error: `malformed JSON body: ${err.message}` }, 400);
    }
    log.error("request failed", { path: c.req.path, error: String(err) });
    return c.json({ error: "internal error; see the server log" }, 500);
  });
  return app;
}
