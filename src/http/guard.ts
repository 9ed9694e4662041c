/**
 * The middleware in front of every route:
 *
 * - security headers on every answer (`X-Content-Type-Options: nosniff`,
 *   `X-Frame-Options: deny`, a Content-Security-Policy; `/docs` gets one Swagger UI works with),
 *   plus the web config's `http_server_config.headers`;
 * - the web config's `rate_limit` (429);
 * - credentials when the web config has any: 401 with `WWW-Authenticate` when missing or wrong,
 *   403 for a `read` credential on a control route;
 * - control is never a simple request: every POST needs `Content-Type: application/json` (415;
 *   but for the read-only compatibility queries of {@linkcode GuardOptions.anyBodyType}) and a
 *   cross-site `Origin` or `Sec-Fetch-Site` is refused (403), so no web page can start or stop
 *   programs; without credentials configured, start and stop answer loopback clients only;
 * - every control action is logged with who asked.
 *
 * @module
 */

import type { Context, MiddlewareHandler } from "hono";
import { log } from "../log.ts";
import { type Access, isLoopback, type RequestEnv } from "./access.ts";
import type { Principal } from "./auth.ts";
import type { WebConfig } from "./web_config.ts";

/** The policy of JSON answers: nothing may load, frame or run from them. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/** Swagger UI: its own script, styles and images from this server; data: images; no framing. */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const CONTROL = /^\/api\/programs\/([^/]+)\/(start|stop)$/;
const JSON_TYPE = /^application\/json\s*(;.*)?$/i;

/** A token bucket over every request (the toolkit's `rate_limit`), reset with each config. */
class Bucket {
  #config: WebConfig | null = null;
  #tokens = 0;
  #at = 0;

  take(config: WebConfig | null, now: number): boolean {
    const limit = config?.rateLimit;
    if (!limit) return true;
    if (config !== this.#config) {
      this.#config = config;
      this.#tokens = limit.burst;
      this.#at = now;
    }
    this.#tokens = Math.min(limit.burst, this.#tokens + (now - this.#at) / limit.intervalMs);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

function secure(c: Context, res: Response, config: WebConfig | null): Response {
  const h = res.headers;
  try {
    h.set("x-content-type-options", "nosniff");
    h.set("x-frame-options", "deny");
    if (!h.has("content-security-policy")) {
      h.set("content-security-policy", c.req.path.startsWith("/docs") ? DOCS_CSP : API_CSP);
    }
    for (const [name, value] of Object.entries(config?.headers ?? {})) h.set(name, value);
  } catch {
    // an immutable Response: it is answered as it is
  }
  return res;
}

function env(c: Context): RequestEnv {
  // in-process callers (app.request in tests) have no connection: they count as loopback
  return (c.env as RequestEnv | undefined)?.remoteAddress !== undefined
    ? c.env as RequestEnv
    : { remoteAddress: "127.0.0.1", remotePort: 0, tls: false };
}

/** Whether a request comes from another site (by `Sec-Fetch-Site` or `Origin`); why, if so. */
function crossSite(c: Context, tls: boolean): string | null {
  const site = c.req.header("sec-fetch-site");
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return `Sec-Fetch-Site: ${site}`;
  }
  const origin = c.req.header("origin");
  if (origin !== undefined) {
    const own = `${tls ? "https" : "http"}://${c.req.header("host") ?? ""}`.toLowerCase();
    if (origin.toLowerCase() !== own) return `Origin: ${origin}`;
  }
  return null;
}

/** Who asked, for the log: `alice (basic, control)`, `token:1a2b3c4d (bearer, read)`, `anonymous`. */
function describe(who: Principal): string {
  return who.kind === "none" ? "anonymous" : `${who.name} (${who.kind}, ${who.scope})`;
}

/** What the guard lets through that the rule for every route would not. */
export interface GuardOptions {
  /**
   * Paths whose POST is a read-only query that may carry its JSON body under any content-type
   * (the compatibility routes: the original README's `curl -d` sends none). They change nothing,
   * and cross-site requests to them are refused all the same.
   */
  anyBodyType?: (path: string) => boolean;
}

/** The guard of an app over `access` (see the module's documentation). */
export function guard(access: Access, options: GuardOptions = {}): MiddlewareHandler {
  const bucket = new Bucket();
  return async (c, next) => {
    const config = access.config;
    const conn = env(c);
    const answer = (status: number, error: string, headers: Record<string, string> = {}) => {
      const res = c.json({ error }, status as 400);
      for (const [k, v] of Object.entries(headers)) res.headers.append(k, v);
      return secure(c, res, config);
    };

    if (!bucket.take(config, Date.now())) {
      return answer(429, "too many requests (rate_limit of the web config)", {
        "retry-after": "1",
      });
    }

    const control = c.req.method === "POST" ? CONTROL.exec(c.req.path) : null;
    const auth = await access.authenticator.check(config, c.req.header("authorization"));
    if (!auth.ok) {
      if (control) {
        log.warn("control refused", {
          action: control[2],
          program: control[1],
          remote: conn.remoteAddress,
          why: auth.reason,
        });
      }
      if (auth.status === 429) return answer(429, auth.reason, { "retry-after": "1" });
      const res = answer(401, `authentication required: ${auth.reason}`);
      if (config?.users.size) res.headers.append("www-authenticate", 'Basic realm="ebpf-server"');
      if (config?.tokens.size) res.headers.append("www-authenticate", 'Bearer realm="ebpf-server"');
      return res;
    }
    const who = auth.principal;

    if (c.req.method === "POST") {
      const site = crossSite(c, conn.tls);
      const refuse = (status: number, error: string) => {
        if (control) {
          log.warn("control refused", {
            action: control[2],
            program: control[1],
            remote: conn.remoteAddress,
            who: describe(who),
            why: error,
          });
        }
        return answer(status, error);
      };
      if (site) {
        return refuse(
          403,
          `cross-site requests are refused (${site}); POST from this origin or a non-browser client`,
        );
      }
      if (
        !JSON_TYPE.test(c.req.header("content-type") ?? "") &&
        !(control === null && options.anyBodyType?.(c.req.path))
      ) {
        return refuse(415, "the body must be JSON: send it with 'content-type: application/json'");
      }
      // an empty JSON body means no fields (the same as {})
      const text = await c.req.text();
      if (text.trim() === "") {
        // Hono keeps the body as a promise of its text; the validators parse that
        (c.req.bodyCache as Record<string, unknown>).text = Promise.resolve("{}");
      }
      if (control) {
        if (access.credentialsRequired) {
          if (who.scope !== "control") {
            return refuse(
              403,
              `${who.name} has the read scope; starting and stopping programs needs a control-scope credential`,
            );
          }
        } else if (!isLoopback(conn.remoteAddress)) {
          return refuse(
            403,
            "start and stop answer loopback clients only, unless a web config gives control-scope credentials",
          );
        }
        if (text.trim() !== "") {
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            return refuse(400, "malformed JSON body: send none, or {}");
          }
          if (
            typeof parsed !== "object" || parsed === null || Array.isArray(parsed) ||
            Object.keys(parsed).length > 0
          ) {
            return refuse(400, `${control[2]} takes no body fields: send none, or {}`);
          }
        }
      }
    }

    await next();
    if (control) {
      log.info("control", {
        action: control[2],
        program: control[1],
        status: c.res.status,
        remote: `${conn.remoteAddress}:${conn.remotePort}`,
        who: describe(who),
        ...(conn.clientCertificate ? { certificate: conn.clientCertificate } : {}),
      });
    }
    secure(c, c.res, config);
  };
}
