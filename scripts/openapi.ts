/**
 * Prints the server's OpenAPI document (what `GET /openapi.json` answers) without starting the
 * server or loading BPF: `deno task openapi > openapi.json`, e.g. to generate a client offline.
 * `tests/openapi_lint_test.ts` lints the same document with `redocly lint`.
 *
 * @module
 */

import { createApp } from "../src/http/app.ts";
import { documentOf } from "../src/http/docs.ts";
import { ProgramManager } from "../src/programs/manager.ts";
import { programs } from "../src/programs/mod.ts";
import { Store } from "../src/store/mod.ts";

/** The document of an app over every program (nothing is loaded; the routes are the same). */
export function serverDocument(): ReturnType<typeof documentOf> {
  const store = new Store(1);
  const manager = new ProgramManager(programs.values(), store, {
    ringSize: 1 << 16,
    drainIntervalMs: 1000,
    selfPid: Deno.pid,
  });
  return documentOf(createApp({ programs, manager, store, docs: true, startedAt: Date.now() }));
}

if (import.meta.main) {
  console.log(JSON.stringify(serverDocument(), null, 2));
}
