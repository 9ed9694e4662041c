/**
 * `/openapi.json` from the declared routes, and `/docs`: Swagger UI served from the
 * `swagger-ui-dist` package's own files (embedded in the executable; no CDN, works offline).
 *
 * @module
 */

import type { OpenAPIHono } from "@hono/zod-openapi";
// the package's main module would load and run the whole Swagger UI bundle in the server
import getAbsoluteFSPath from "swagger-ui-dist/absolute-path.js";

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

/** The OpenAPI document of `app`. */
export function openApiDocument(app: OpenAPIHono) {
  return app.getOpenAPIDocument({
    openapi: "3.0.3",
    info: {
      title: "ebpf-server",
      version: "0.1.0",
      description:
        "What the host's processes do on the network, recorded by eBPF programs in the kernel.",
    },
  });
}

export function docsRoutes(app: OpenAPIHono, options: { docs: boolean }): void {
  let document: unknown;
  app.get("/openapi.json", (c) => c.json(document ??= openApiDocument(app)));
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
