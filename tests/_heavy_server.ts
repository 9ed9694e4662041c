/**
 * The HTTP server of src/main.ts (the same app, guard and listener) over a store of a million
 * synthetic connection events (bench/_fixture.ts), with no BPF loaded: what the heavy-query test
 * runs without root. Prints `listening <port>` once it listens; SIGTERM ends it.
 *
 * Run: `deno run --allow-all tests/_heavy_server.ts [events]`.
 *
 * @module
 */

import { filledStore } from "../bench/_fixture.ts";
import { Access } from "../src/http/access.ts";
import { createApp } from "../src/http/app.ts";
import { ProgramManager } from "../src/programs/manager.ts";
import { programs } from "../src/programs/mod.ts";
import { listen, type Server } from "../src/server/listen.ts";

const events = Number(Deno.args[0] ?? 1_000_000);
const { store } = filledStore(events, Date.now());
// the manager never loads anything here: it gives the app its tables and counters
const manager = new ProgramManager(programs.values(), store, {
  ringSize: 1 << 24,
  drainIntervalMs: 10,
  selfPid: Deno.pid,
});
const access = new Access(null, { hostname: "127.0.0.1", port: 0 });
let server: Server | null = null;
const app = createApp({
  programs,
  manager,
  store,
  docs: false,
  startedAt: Date.now(),
  access,
  httpCounters: () => server!.counters,
});
server = listen((request, env) => app.fetch(request, env), {
  hostname: "127.0.0.1",
  port: 0,
  access,
  maxConnections: 64,
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
console.log(`listening ${server.port}`);
