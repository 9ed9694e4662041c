import assert from "node:assert/strict";
import { variedStore } from "../programs/_event_rows_testing.ts";
import { constant, eventJson, field, intField } from "../programs/event_json.ts";
import { ProgramManager } from "../programs/manager.ts";
import { programs } from "../programs/mod.ts";
import type { Program } from "../programs/program.ts";
import { EventTable, Store } from "../store/mod.ts";
import { createApp } from "./app.ts";
import { type AppContext, listEvents, listEventsJson } from "./service.ts";

const END = Date.UTC(2026, 10, 25, 3, 4, 5, 678.5);
const decoder = new TextDecoder();

function appOf(store: Store) {
  const manager = new ProgramManager(programs.values(), store, {
    ringSize: 1 << 24,
    drainIntervalMs: 10,
    selfPid: Deno.pid,
  });
  const ctx = { programs, manager, store, docs: false, startedAt: END, now: () => END };
  return { app: createApp(ctx), ctx: ctx as AppContext };
}

Deno.test("event lists are the bytes of JSON.stringify of the events as objects", async () => {
  const store = variedStore(700, END);
  const { app, ctx } = appOf(store);
  const lists: [string, string[], Record<string, string>][] = [];
  for (const name of programs.keys()) {
    lists.push([`/api/programs/${name}/events`, [name], { limit: "10000" }]);
    lists.push([`/api/programs/${name}/events`, [name], { limit: "7" }]);
    lists.push([`/api/programs/${name}/events`, [name], { pid: "4242", limit: "50" }]);
  }
  lists.push(["/api/events", [...programs.keys()], { limit: "10000" }]);
  lists.push(["/api/events", ["connection", "tcp_life"], { limit: "33" }]);
  for (const [path, names, query] of lists) {
    const type: Record<string, string> = path === "/api/events" ? { type: names.join(",") } : {};
    const res = await app.request(`${path}?${new URLSearchParams({ ...query, ...type })}`);
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.equal(res.headers.get("content-length"), String(new TextEncoder().encode(body).length));
    const filter = {
      limit: Number(query.limit),
      pid: query.pid === undefined ? undefined : Number(query.pid),
    };
    const want = await listEvents(ctx, names, filter);
    assert.equal(body, JSON.stringify(want), `${path} ${JSON.stringify(query)}`);
    assert.ok(want.count > 0, path);
  }
});

/** A program whose events take a millisecond each to write: a list of them is made in slices. */
function slowProgram(): Program {
  const columns = { v: "u32" } as const;
  return {
    name: "slow",
    description: "slow",
    columns,
    eventSchema: undefined as never,
    summarySchema: undefined as never,
    toJson: eventJson<typeof columns>((table) => {
      const v = table.cols.v;
      return {
        fields: [
          constant("type", "slow"),
          intField("v", (s) => v[s]),
          field("busy", () => {
            const until = performance.now() + 1;
            while (performance.now() < until) { /* a slow field */ }
            return null;
          }),
        ],
      };
    }),
    summarize: () => ({}),
  } as unknown as Program;
}

Deno.test("an event evicted while a list is made is left out and not counted", async () => {
  const program = slowProgram();
  const store = new Store(200);
  const table = store.table("slow", program.columns) as unknown as EventTable;
  let appended = 0;
  const add = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = store.append(table);
      table.cols.ts[s] = END + appended;
      (table.cols as unknown as Record<string, Uint32Array>).v[s] = appended++;
    }
  };
  add(200);
  const ctx = {
    programs: new Map([["slow", program]]),
    manager: { refresh() {} },
    store,
  } as unknown as AppContext;
  // each time the list gives the event loop back (after 64 events or more), 60 new events
  // evict the 60 oldest
  const timer = setInterval(() => add(60), 1);
  try {
    const chunks = await listEventsJson(ctx, ["slow"], { limit: 150 });
    const list = JSON.parse(chunks.map((c) => decoder.decode(c)).join(""));
    assert.equal(list.limit, 150);
    assert.equal(list.truncated, true);
    assert.equal(list.count, list.events.length);
    assert.ok(list.count < 150, `${list.count} events: some were evicted meanwhile`);
    // newest first at the time of the pick: 199, 198, ..., down to the oldest still held
    const vs = list.events.map((e: { v: number }) => e.v);
    assert.deepEqual(vs, Array.from({ length: vs.length }, (_, i) => 199 - i));
  } finally {
    clearInterval(timer);
  }
});
