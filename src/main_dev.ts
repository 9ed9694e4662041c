/**
 * The entry point of `make build-dev`: the same server with debug logging by default.
 *
 * @module
 */

import { main } from "./main.ts";

Deno.exit(await main(Deno.args, { defaultLogLevel: "debug" }));
