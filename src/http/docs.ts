/**
 * `/openapi.json` from the declared routes, and `/docs`: Swagger UI served from the
 * `swagger-ui-dist` package's own files (embedded in the executable; no CDN, works offline).
 *
 * @module
 */

import type { OpenAPIHono } from "@hono/zod-openapi";
// the package's main module would load and run the whole Swagger UI bundle in the server
import getAbsoluteFSPath from "swagger-ui-dist/absolute-path.js";
import { VERSION } from "../version.ts";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "favicon-32x32.png": "image/png",
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ebpf-server API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// no validator badge: it would send the document's URL to validator.swagger.io (and the CSP of
// /docs lets the page load nothing from elsewhere)
const INIT =
  `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null });\n`;

/** A tag of the document: operations are grouped by it. */
export interface Tag {
  name: string;
  description: string;
}

/** What {@linkcode docsRoutes} takes. */
export interface DocsOptions {
  /** Serve /docs (Swagger UI). */
  docs: boolean;
  /** Every tag the routes use, described. */
  tags: Tag[];
}

const tagsOf = new WeakMap<OpenAPIHono, Tag[]>();

/** The OpenAPI document of `app`. */
export function openApiDocument(app: OpenAPIHono) {
  return app.getOpenAPIDocument({
    openapi: "3.0.3",
    info: {
      title: "ebpf-server",
      version: VERSION,
      description:
        "What the host's processes do on the network, recorded by eBPF programs in the kernel.",
    },
    // The API is served where this document is.
    servers: [{ url: "/" }],
    // No credential without a web config ({}), else either scheme the web config enables.
    security: SECURITY,
    tags: tagsOf.get(app) ?? [],
  });
}

const documents = new WeakMap<OpenAPIHono, ReturnType<typeof openApiDocument>>();

/** The OpenAPI document of `app`, made once (the routes are all declared before it is asked). */
export function documentOf(app: OpenAPIHono): ReturnType<typeof openApiDocument> {
  let document = documents.get(app);
  if (!document) documents.set(app, document = openApiDocument(app));
  return document;
}

/**
 * The credentials of `--web.config.file` (README, "Security"): each scheme is enforced only when
 * the web config has users (basic) or tokens (bearer); without one no credential is asked.
 */
const SECURITY_SCHEMES = {
  basicAuth: {
    type: "http",
    scheme: "basic",
    description:
      "a user of the web config's basic_auth_users (bcrypt hashes); scope read, or control when basic_auth_scopes says so. Enforced only when the web config has users.",
  },
  bearerAuth: {
    type: "http",
    scheme: "bearer",
    description:
      "a token whose SHA-256 is in the web config's bearer_tokens, with its scope: read, or control (starting and stopping programs; control implies read). Enforced only when the web config has tokens.",
  },
} as const;

/** Any of: no credential (no web config, or one with TLS only), basic, bearer. */
const SECURITY: Record<string, string[]>[] = [{}, { basicAuth: [] }, { bearerAuth: [] }];

export function docsRoutes(app: OpenAPIHono, options: DocsOptions): void {
  tagsOf.set(app, options.tags);
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  app.get("/openapi.json", (c) => c.json(documentOf(app)));
  if (!options.docs) return;
  const dir = getAbsoluteFSPath();
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  app.get("/docs", (c) => c.html(PAGE));
  app.get("/docs/", (c) => c.html(PAGE));
  app.get("/docs/init.js", (c) => c.body(INIT, 200, { "content-type": "text/javascript" }));
  app.get("/docs/:file", (c) => {
    const file = c.req.param("file");
    // own keys only: `/docs/constructor` must not find Object.prototype.constructor
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!type) return c.json({ error: `no docs file '${file}'` }, 404);
    let bytes = cache.get(file);
    if (!bytes) {
      bytes = Deno.readFileSync(`${dir}/${file}`);
      cache.set(file, bytes);
    }
    return c.body(bytes, 200, { "content-type": type, "cache-control": "max-age=3600" });
  });
}
