/**
 * Queries on a store of 1M connection events (50 µs apart, so a 60 s window holds all of them):
 * the connection summary and the filtered list, computed directly and through the Hono app in
 * process (routing, validation, JSON), without the network. Run: `deno bench --allow-all bench/`.
 * The summary's per-block aggregates are computed by the first call and cached: the timed calls
 * are warm, but for the "cold" one, which starts each time from an empty cache.
 *
 * @module
 */

import { createApp } from "../src/http/app.ts";
import { BlockCache } from "../src/programs/blocks.ts";
import { connection } from "../src/programs/connection/mod.ts";
import { type Part, summarizeWith } from "../src/programs/connection/summary.ts";
import { ProgramManager } from "../src/programs/manager.ts";
import { programs } from "../src/programs/mod.ts";
import { newestRows } from "../src/programs/query.ts";
import type { EventTable } from "../src/store/mod.ts";
import { filledStore } from "./_fixture.ts";

const EVENTS = 1_000_000;
const now = Date.now();
const { obj, store, table } = filledStore(EVENTS, now);
const window = { since: now - 60_000, until: now };
// the manager never loads anything here: it only gives the app its tables and counters
const manager = new ProgramManager(programs.values(), store, {
  ringSize: 1 << 24,
  drainIntervalMs: 10,
  selfPid: Deno.pid,
});
const app = createApp({ programs, manager, store, docs: false, startedAt: now, now: () => now });

Deno.bench("connection.summarize, 60 s window over 1M events", { group: "summary" }, () => {
  const s = connection.summarize(table, window, store);
  if (s.total_attempts !== EVENTS) throw new Error(`saw ${s.total_attempts} events`);
});

Deno.bench("connection.summarize, cold: every block computed (a new cache)", {
  group: "summary",
}, () => {
  summarizeWith(table as Parameters<typeof summarizeWith>[0], window, {
    store,
    cache: new BlockCache<Part>(),
  });
});

// a window that starts and ends inside blocks: up to two blocks' worth of rows scanned
const midBlock = { since: now - 37_123.4567, until: now - 1_234.5678 };
Deno.bench("connection.summarize, window starting and ending mid-block", {
  group: "summary",
}, () => {
  connection.summarize(table, midBlock, store);
});

Deno.bench("connection.summarize, pid filter (1 in 50)", { group: "summary" }, () => {
  connection.summarize(table, { ...window, pid: 1007 }, store);
});

Deno.bench("GET /api/programs/connection/summary?duration=60 (in process)", {
  group: "summary",
}, async () => {
  const res = await app.request("/api/programs/connection/summary?duration=60");
  await res.arrayBuffer();
});

Deno.bench("newestRows pid filter, limit 100", { group: "list" }, () => {
  newestRows(table as unknown as EventTable, store, { pid: 1007 }, 101);
});

Deno.bench("GET /api/events?type=connection&pid=1007&limit=100 (in process)", {
  group: "list",
}, async () => {
  const res = await app.request("/api/events?type=connection&pid=1007&limit=100");
  await res.arrayBuffer();
});

globalThis.addEventListener("unload", () => obj.close());
