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

const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });\n`;

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
    // Said outright: the server asks for no credentials (yet). No scheme is declared that it
    // would not enforce.
    security: [],
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

export function docsRoutes(app: OpenAPIHono, options: DocsOptions): void {
  tagsOf.set(app, options.tags);
  app.get("/openapi.json", (c) => c.json(documentOf(app)));
  if (!options.docs) return;
  const dir = getAbsoluteFSPath();
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  app.get("/docs", (c) => c.html(PAGE));
  app.get("/docs/", (c) => c.html(PAGE));
  app.get("/docs/init.js", (c) => c.body(INIT, 200, { "content-type": "text/javascript" }));
  app.get("/docs/:file", (c) => {
    const file = c.req.param("file");
    const type = ASSETS[file];
    if (!type) return c.json({ error: `no docs file '${file}'` }, 404);
    let bytes = cache.get(file);
    if (!bytes) {
      bytes = Deno.readFileSync(`${dir}/${file}`);
      cache.set(file, bytes);
    }
    return c.body(bytes, 200, { "content-type": type, "cache-control": "max-age=3600" });
  });
}
