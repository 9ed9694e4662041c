import assert from "node:assert/strict";
import { encode, openObject } from "../programs/connection/_testing.ts";
import { connection } from "../programs/connection/mod.ts";
import { ProgramManager } from "../programs/manager.ts";
import { programs } from "../programs/mod.ts";
import { drained, fixedClock } from "../programs/_testing.ts";
import { batchDecoderOf } from "../programs/batch.ts";
import { isoMicros } from "../programs/query.ts";
import { Store } from "../store/mod.ts";
import { createApp } from "./app.ts";
import { COMPAT_SHAPES } from "./compat_shapes.ts";
import type { z } from "@hono/zod-openapi";
import { VERSION } from "../version.ts";

const COMPAT_CONNECTION = COMPAT_SHAPES.get("connection")!;

/** The fixed "now" of the app; events happen shortly before it. */
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
/** Boot time 0 is this wall time: a boot stamp of t ns is RECENT + t/1e6 ms. */
const RECENT = NOW - 30_000;
const OLD = NOW - 120_000;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;

interface Connect {
  /** ms after RECENT (negative for older events) */
  at: number;
  pid: number;
  comm: string;
  ret: number;
  family: number;
  sockType: number;
  protocol: number;
  port?: number;
  addr?: number[];
  unixPath?: string;
}

/** Events in time order, as the kernel would hand them over. */
const CONNECTS: Connect[] = [
  {
    at: OLD - RECENT,
    pid: 400,
    comm: "ssh",
    ret: 0,
    family: AF_INET,
    sockType: 1,
    protocol: 6,
    port: 22,
    addr: [10, 0, 0, 1],
  },
  {
    at: 1,
    pid: 100,
    comm: "curl",
    ret: -111,
    family: AF_INET,
    sockType: 1,
    protocol: 6,
    port: 8443,
    addr: [10, 1, 2, 3],
  },
  {
    at: 2,
    pid: 100,
    comm: "curl",
    ret: 0,
    family: AF_INET,
    sockType: 1,
    protocol: 6,
    port: 8443,
    addr: [10, 1, 2, 3],
  },
  {
    at: 3,
    pid: 200,
    comm: "nginx",
    ret: -115,
    family: AF_INET,
    sockType: 1,
    protocol: 6,
    port: 80,
    addr: [10, 9, 9, 9],
  },
  {
    at: 4,
    pid: 300,
    comm: "dig",
    ret: 0,
    family: AF_INET6,
    sockType: 2,
    protocol: 17,
    port: 53,
    addr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
  },
  {
    at: 5,
    pid: 100,
    comm: "curl",
    ret: 0,
    family: AF_UNIX,
    sockType: 1,
    protocol: 0,
    unixPath: "/run/app.sock",
  },
];

/** Puts CONNECTS into `store` through the real decoder, with synthetic records. */
function fill(store: Store): void {
  using obj = openObject();
  const table = store.table("connection", connection.columns);
  const clock = fixedClock(RECENT);
  const decode = batchDecoderOf(connection, { obj, store, table, clock });
  const encoder = new TextEncoder();
  for (const e of CONNECTS) {
    const record = encode(obj, {
      tsNs: BigInt(e.at) * 1_000_000n + 10n ** 12n, // keep boot time positive
      latencyNs: 1000n * BigInt(e.pid),
      cgroupId: 77n,
      pid: e.pid,
      tid: e.pid,
      uid: 0,
      ret: e.ret,
      family: e.family,
      port: e.port ?? 0,
      sockType: e.sockType,
      protocol: e.protocol,
      addr: e.addr,
      comm: e.comm,
      unixPath: e.unixPath === undefined ? undefined : [...encoder.encode(e.unixPath), 0],
    });
    assert.equal(decode(drained(record)).events, 1);
  }
}

/** The wall time of an event of CONNECTS (the boot offset cancels out: see fill). */
function tsOf(e: Connect): number {
  return RECENT + 1_000_000 + e.at;
}

function setup(options: { docs?: boolean; events?: boolean } = {}) {
  const store = new Store(1000);
  const manager = new ProgramManager(programs.values(), store, {
    ringSize: 1 << 16,
    drainIntervalMs: 10,
    selfPid: Deno.pid,
  });
  if (options.events ?? true) fill(store);
  const app = createApp({
    programs,
    manager,
    store,
    docs: options.docs ?? true,
    startedAt: Date.now(),
    now: () => NOW + 1_000_000,
  });
  return { app, store, manager };
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function get(app: ReturnType<typeof setup>["app"], path: string, init?: RequestInit) {
  const res = await app.request(path, init);
  const type = res.headers.get("content-type") ?? "";
  assert.match(type, /application\/json/, `${path}: content-type ${type}`);
  return { status: res.status, body: await res.json() as Json };
}

async function ok(app: ReturnType<typeof setup>["app"], path: string, init?: RequestInit) {
  const { status, body } = await get(app, path, init);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  return body;
}

/** Asserts a JSON error whose `error` names `field`. */
async function bad(
  app: ReturnType<typeof setup>["app"],
  path: string,
  field: string,
  init?: RequestInit,
  status = 400,
) {
  const res = await get(app, path, init);
  assert.equal(res.status, status, `${path}: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.error, "string");
  assert.ok(
    res.body.error.includes(field),
    `${path}: error '${res.body.error}' should name ${field}`,
  );
  return res.body;
}

function post(body: unknown, type = "application/json"): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

Deno.test("GET /health shows the server, programs and store", async () => {
  const { app } = setup();
  const body = await ok(app, "/health");
  assert.equal(body.status, "degraded"); // nothing is started in this test
  assert.equal(body.component, "ebpf-server");
  assert.equal(body.service, "ebpf-server");
  assert.equal(body.version, VERSION);
  assert.match(body.uptime, /^(\d+h)?(\d+m)?\d+s$/);
  assert.equal(typeof body.uptime_seconds, "number");
  assert.ok(body.uptime_seconds >= 0);
  assert.deepEqual(body.store, { capacity: 1000, size: CONNECTS.length, evicted: 0 });
  assert.deepEqual(body.programs.map((p: Json) => p.name), [...programs.keys()]);
  const conn = body.programs.find((p: Json) => p.name === "connection");
  assert.deepEqual(conn, {
    name: "connection",
    description: connection.description,
    state: "stopped",
    error: null,
    error_log: null,
    events: 0,
    lost: 0,
    ring_size_bytes: 1 << 16, // setup()'s --ring-size
    evicted: 0,
    stored: CONNECTS.length,
    decode_errors: 0,
    started_at: null,
    stopped_at: null,
    stopped_periods: [],
  });
  // nothing started: no hook was left out, and only features probed at a start are counted
  assert.equal(body.kernel.release, Deno.osRelease());
  assert.deepEqual(body.kernel.hooks_left_out, []);
});

Deno.test("GET /api/programs lists every program", async () => {
  const { app } = setup();
  const body = await ok(app, "/api/programs");
  assert.deepEqual(body.programs.map((p: Json) => p.name), [...programs.keys()]);
  for (const p of body.programs) assert.equal(p.state, "stopped");
});

Deno.test("GET /api/events lists events newest first", async () => {
  const { app } = setup();
  const body = await ok(app, "/api/events");
  assert.equal(body.count, CONNECTS.length);
  assert.equal(body.limit, 100);
  assert.equal(body.truncated, false);
  const times = body.events.map((e: Json) => e.timestamp_ms);
  assert.deepEqual(times, CONNECTS.map(tsOf).reverse());
  assert.deepEqual(
    body.events.map((e: Json) => e.destination),
    ["/run/app.sock", "[2001:db8::1]:53", "10.9.9.9:80", "10.1.2.3:8443", "10.1.2.3:8443"]
      .concat(["10.0.0.1:22"]),
  );
  for (const event of body.events) {
    assert.equal(event.type, "connection");
    connection.eventSchema.parse(event);
  }
});

Deno.test("GET /api/events filters by type, pid, command, limit, since and until", async () => {
  const { app } = setup();
  const pids = async (query: string) =>
    (await ok(app, `/api/events?${query}`)).events.map((e: Json) => e.pid);

  assert.deepEqual(await pids("type=connection"), [100, 300, 200, 100, 100, 400]);
  assert.deepEqual(await pids("pid=100"), [100, 100, 100]);
  assert.deepEqual(await pids("command=nginx"), [200]);
  assert.deepEqual(await pids("command=nosuch"), []);
  assert.deepEqual(await pids("pid=100&command=nginx"), []);
  assert.deepEqual(await pids("pid=100&command=curl&limit=2"), [100, 100]);

  const limited = await ok(app, "/api/events?limit=2");
  assert.equal(limited.count, 2);
  assert.equal(limited.limit, 2);
  assert.equal(limited.truncated, true);
  assert.deepEqual(limited.events.map((e: Json) => e.pid), [100, 300]);

  const exact = await ok(app, "/api/events?pid=100&limit=3");
  assert.equal(exact.count, 3);
  assert.equal(exact.truncated, false);

  const at = (i: number) => encodeURIComponent(new Date(tsOf(CONNECTS[i])).toISOString());
  assert.deepEqual(await pids(`since=${at(3)}`), [100, 300, 200]);
  assert.deepEqual(await pids(`until=${at(2)}`), [100, 100, 400]);
  assert.deepEqual(await pids(`since=${at(1)}&until=${at(2)}`), [100, 100]);
  assert.deepEqual(await pids(`since=${at(2)}&until=${at(2)}`), [100]);
});

Deno.test("GET /api/programs/connection/events and /api/list-connections", async () => {
  const { app } = setup();
  const events = await ok(app, "/api/programs/connection/events?pid=100&limit=1");
  assert.equal(events.count, 1);
  assert.equal(events.truncated, true);
  assert.equal(events.events[0].unix_path, "/run/app.sock");
  assert.equal(events.events[0].protocol, "UNIX");

  const list = await ok(app, "/api/list-connections?command=curl");
  assert.equal(list.count, 3);
  assert.equal(list.truncated, false);
  assert.equal(list.events, undefined);
  assert.deepEqual(
    list.connections.map((e: Json) => e.result),
    ["ok", "ok", "ECONNREFUSED"],
  );
  for (const e of list.connections) assertDocumented(COMPAT_CONNECTION.eventSchema, e, "event");
});

Deno.test("GET /api/programs/connection/summary over the default window", async () => {
  const { app } = setup();
  const body = await ok(app, "/api/programs/connection/summary");
  assert.equal(body.program, "connection");
  assert.equal(body.duration_seconds, 60);
  assert.equal(body.until, isoMicros(NOW + 1_000_000));
  assert.equal(body.since, isoMicros(NOW + 1_000_000 - 60_000));
  assert.equal(body.pid, null);
  assert.equal(body.command, null);
  // The programs never ran in this test (no BPF): the window is not one they watched.
  assert.equal(body.window_complete, false);
  assert.deepEqual(body.window_incomplete_because, ["not_running"]);
  assert.equal(body.events_lost, 0);
  // the ssh event is two minutes old: outside the window
  assert.equal(body.total_attempts, 5);
  assert.equal(body.successful, 3);
  assert.equal(body.failed, 1);
  assert.equal(body.in_progress, 1);
  assert.deepEqual(body.by_result, { ok: 3, ECONNREFUSED: 1, EINPROGRESS: 1 });
  assert.deepEqual(body.by_command, { curl: 3, nginx: 1, dig: 1 });
  assert.deepEqual(body.top_destinations[0], {
    destination: "10.1.2.3:8443",
    count: 2,
    failed: 1,
  });
});

/** Asserts `body` is valid for `schema` and has exactly the fields it documents. */
function assertDocumented(schema: z.ZodType, body: Json, what: string): void {
  const result = schema.safeParse(body);
  assert.ok(result.success, `${what}: ${result.error?.message}`);
  const documented = Object.keys((schema as z.ZodObject).shape).sort();
  assert.deepEqual(Object.keys(body).sort(), documented, `${what}: fields differ from the schema`);
}

Deno.test("summary answers have exactly the documented fields", async () => {
  const { app } = setup();
  const native = "/api/programs/connection/summary";
  assertDocumented(connection.summarySchema, await ok(app, native), `GET ${native}`);
  for (const path of ["/api/connection-summary", "/api/connections/summary"]) {
    const schema = COMPAT_CONNECTION.summarySchema;
    assertDocumented(schema, await ok(app, path), `GET ${path}`);
    assertDocumented(schema, await ok(app, path, post({ pid: 100 })), `POST ${path}`);
  }
});

Deno.test("events have exactly the documented fields", async () => {
  const { app } = setup();
  const { events } = await ok(app, "/api/events");
  assert.equal(events.length, CONNECTS.length);
  for (const event of events) assertDocumented(connection.eventSchema, event, "event");
});

Deno.test("GET summaries filter by pid, command and duration", async () => {
  const { app } = setup();
  for (const path of ["/api/programs/connection/summary", "/api/connection-summary"]) {
    const byPid = await ok(app, `${path}?pid=100`);
    assert.equal(byPid.pid, 100);
    assert.equal(byPid.total_attempts, 3);

    const byCommand = await ok(app, `${path}?command=nginx`);
    assert.equal(byCommand.command, "nginx");
    assert.equal(byCommand.total_attempts, 1);
    assert.equal(byCommand.in_progress, 1);

    const long = await ok(app, `${path}?duration=300`);
    assert.equal(long.duration_seconds, 300);
    assert.equal(long.total_attempts, 6);

    const longToo = await ok(app, `${path}?duration_seconds=300`);
    assert.equal(longToo.duration_seconds, 300);
    assert.equal(longToo.total_attempts, 6);

    const both = await ok(app, `${path}?duration=300&duration_seconds=300&pid=400`);
    assert.equal(both.total_attempts, 1);
  }
});

Deno.test("GET /api/connections/summary is the same summary", async () => {
  const { app } = setup();
  const a = await ok(app, "/api/connections/summary?pid=100&duration=120");
  const b = await ok(app, "/api/connection-summary?pid=100&duration=120");
  const c = await ok(app, "/api/programs/connection/summary?pid=100&duration=120");
  assert.deepEqual(a, b);
  // the compatibility answer is the native one with the original's fields added, and "" where
  // the native one says null (no command filter)
  const { count, duration, query_time, message, ...rest } = a;
  assert.equal(rest.command, "");
  assert.deepEqual({ ...rest, command: null }, c);
  assert.equal(count, 3);
  assert.equal(duration, 120);
  assert.equal(typeof query_time, "string");
  assert.equal(typeof message, "string");
  assert.equal(a.total_attempts, 3);
});

Deno.test("POST /api/connection-summary takes its filters from a JSON body", async () => {
  const { app } = setup();
  const body = await ok(app, "/api/connection-summary", post({ pid: 100, duration: 300 }));
  assert.equal(body.pid, 100);
  assert.equal(body.duration_seconds, 300);
  assert.equal(body.total_attempts, 3);

  const all = await ok(app, "/api/connection-summary", post({ duration_seconds: 300 }));
  assert.equal(all.total_attempts, 6);
  assert.equal(all.duration_seconds, 300);

  const byCommand = await ok(app, "/api/connection-summary", post({ command: "ssh" }));
  assert.equal(byCommand.total_attempts, 0); // ssh is outside the default 60 s window
  assert.equal(byCommand.command, "ssh");

  const empty = await ok(app, "/api/connection-summary", post({}));
  assert.equal(empty.total_attempts, 5);
  const none = await ok(app, "/api/connection-summary", post(""));
  assert.equal(none.total_attempts, 5);
});

Deno.test("bad query parameters are a 400 naming the field", async () => {
  const { app } = setup();
  await bad(app, "/api/events?pid=abc", "'pid'");
  await bad(app, "/api/events?pid=-1", "'pid'");
  await bad(app, "/api/events?pid=4294967296", "'pid'");
  await bad(app, "/api/events?limit=0", "'limit'");
  await bad(app, "/api/events?limit=100000", "'limit'");
  await bad(app, "/api/events?since=yesterday", "'since'");
  await bad(app, "/api/events?until=2026-13-45T00:00:00Z", "'until'");
  await bad(
    app,
    "/api/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
    "'since'",
  );
  await bad(app, "/api/events?foo=1", "'foo'");
  await bad(app, "/api/events?type=nosuch", "'type'");
  await bad(app, "/api/events?type=connection,nosuch", "'type'");
  await bad(app, "/api/programs/connection/events?type=connection", "'type'");
  await bad(app, "/api/programs/connection/events?limit=abc", "'limit'");
  await bad(app, "/api/list-connections?since=yesterday", "'since'");
  await bad(app, "/api/programs/connection/summary?duration=0", "'duration'");
  await bad(app, "/api/programs/connection/summary?duration=999999999", "'duration'");
  await bad(app, "/api/programs/connection/summary?limit=5", "'limit'");
  await bad(app, "/api/connection-summary?duration=5&duration_seconds=6", "'duration_seconds'");
  await bad(app, "/api/connections/summary?pid=abc", "'pid'");
  const body = await bad(app, "/api/connection-summary?foo=1", "'foo'");
  assert.deepEqual(body.issues, [{ field: "foo", message: "unknown query parameter 'foo'" }]);
});

Deno.test("bad POST bodies are JSON errors", async () => {
  const { app } = setup();
  const path = "/api/connection-summary";
  // read as JSON whatever the content-type (as the original server did): a form is no JSON
  await bad(app, path, "JSON", post("pid=100", "text/plain"));
  await bad(app, path, "JSON", post("pid=100", "application/x-www-form-urlencoded"));
  await bad(app, path, "'foo'", post({ foo: 1 }));
  await bad(app, path, "'pid'", post({ pid: "abc" }));
  await bad(app, path, "'pid'", post({ pid: -1 }));
  await bad(app, path, "'duration'", post({ duration: 0 }));
  await bad(app, path, "'duration_seconds'", post({ duration: 5, duration_seconds: 6 }));
  const malformed = await get(app, path, post("{pid: 1"));
  assert.equal(malformed.status, 400);
  assert.match(malformed.body.error, /JSON/);
});

Deno.test("a malformed JSON body gets the app's lowercase message", async () => {
  const { app } = setup();
  const { status, body } = await get(app, "/api/connection-summary", post("{pid: 1"));
  assert.equal(status, 400);
  // STYLE.md: error messages start lowercase; app.ts means to say "malformed JSON body: ..."
  assert.match(body.error, /^malformed JSON body/);
});

Deno.test("unknown routes and programs are a 404 JSON error", async () => {
  const { app } = setup();
  await bad(app, "/nosuch", "/nosuch", undefined, 404);
  await bad(app, "/api/programs/nosuch/events", "/api/programs/nosuch/events", undefined, 404);
  await bad(app, "/api/programs/nosuch/start", "'nosuch'", post(""), 404);
  await bad(app, "/api/programs/nosuch/stop", "'nosuch'", post(""), 404);
  await bad(app, "/health", "/health", { method: "DELETE" }, 404);
});

Deno.test("POST /api/programs/connection/stop on a stopped program is a no-op", async () => {
  const { app } = setup();
  const body = await ok(app, "/api/programs/connection/stop", post(""));
  assert.equal(body.name, "connection");
  assert.equal(body.state, "stopped");
  assert.equal(body.stored, CONNECTS.length);
});

function documentedPath(path: string): string {
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");
}

Deno.test("GET /openapi.json documents every route of the app", async () => {
  const { app } = setup({ events: false });
  const doc = await ok(app, "/openapi.json");
  assert.match(doc.openapi, /^3\./);
  const routes = app.routes.filter((r) =>
    r.path !== "/openapi.json" && r.path !== "/docs" && !r.path.startsWith("/docs/") &&
    r.method !== "ALL"
  );
  assert.ok(routes.length >= 10, `only ${routes.length} routes`);
  for (const route of routes) {
    const path = documentedPath(route.path);
    const entry = doc.paths[path];
    assert.ok(entry, `${route.method} ${route.path} is not in /openapi.json`);
    assert.ok(
      entry[route.method.toLowerCase()],
      `${route.method} ${route.path} is in /openapi.json without its method`,
    );
  }
  // and nothing documented that does not exist
  const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${documentedPath(r.path)}`));
  for (const [path, methods] of Object.entries(doc.paths as Record<string, object>)) {
    for (const method of Object.keys(methods)) {
      assert.ok(served.has(`${method} ${path}`), `${method} ${path} is documented, not served`);
    }
  }
});

Deno.test("GET /openapi.json documents each program's events and summary", async () => {
  const { app } = setup({ events: false });
  const doc = await ok(app, "/openapi.json");
  for (const name of programs.keys()) {
    for (const what of ["events", "summary"]) {
      const get = doc.paths[`/api/programs/${name}/${what}`]?.get;
      assert.ok(get, `/api/programs/${name}/${what} is not documented`);
      assert.ok(get.responses["200"], `/api/programs/${name}/${what} has no 200 answer`);
      assert.ok(get.responses["400"], `/api/programs/${name}/${what} has no 400 answer`);
    }
  }
  const params = doc.paths["/api/events"].get.parameters.map((p: Json) => p.name).sort();
  assert.deepEqual(params, [
    "cgroup",
    "command",
    "container",
    "container_runtime",
    "destination",
    "family",
    "limit",
    "pid",
    "port",
    "protocol",
    "since",
    "source",
    "type",
    "uid",
    "unit",
    "until",
  ]);
  assert.ok(doc.components.schemas.ConnectionEvent);
  assert.ok(doc.components.schemas.ConnectionSummary);
});

Deno.test("GET /docs serves Swagger UI from the package's own files", async () => {
  const { app } = setup({ events: false });
  const page = await app.request("/docs");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  const html = await page.text();
  assert.ok(html.includes("/docs/swagger-ui-bundle.js"), html);

  const bundle = await app.request("/docs/swagger-ui-bundle.js");
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get("content-type") ?? "", /javascript/);
  const js = await bundle.text();
  assert.ok(js.length > 1000, `bundle of ${js.length} bytes`);
  assert.ok(js.includes("SwaggerUIBundle"));

  const init = await app.request("/docs/init.js");
  assert.equal(init.status, 200);
  assert.ok((await init.text()).includes("/openapi.json"));

  const css = await app.request("/docs/swagger-ui.css");
  assert.equal(css.status, 200);
  assert.match(css.headers.get("content-type") ?? "", /text\/css/);
  await css.body?.cancel();

  await bad(app, "/docs/..%2Fpackage.json", "no docs file", undefined, 404);
  await bad(app, "/docs/index.html", "no docs file", undefined, 404);
});

Deno.test("with docs off, /docs is a 404 and /openapi.json still works", async () => {
  const { app } = setup({ docs: false, events: false });
  await bad(app, "/docs", "/docs", undefined, 404);
  await bad(app, "/docs/swagger-ui-bundle.js", "/docs", undefined, 404);
  const doc = await ok(app, "/openapi.json");
  assert.ok(doc.paths["/api/events"]);
  assert.ok(!app.routes.some((r) => r.path.startsWith("/docs")));
});

// ---- the original project's shapes on the compatibility paths --------------------------------

/** What the original's README example of a connection event shows, with its JSON types. */
const ORIGINAL_EVENT_FIELDS = {
  pid: "number",
  command: "string",
  destination_ip: "string",
  destination_port: "number",
  destination: "string",
  address_family: "number",
  protocol: "string",
  socket_type: "string",
  wall_time: "string",
  return_code: "number",
  time: "string",
} as const;

Deno.test("compat lists: the original's events_by_pid, totals and numeric address_family", async () => {
  const { app } = setup();
  for (const init of [undefined, post({})]) {
    const list = await ok(app, "/api/list-connections", init);
    assert.equal(list.total_events, CONNECTS.length);
    assert.equal(list.total_pids, 4);
    assert.deepEqual(Object.keys(list.events_by_pid).sort(), ["100", "200", "300", "400"]);
    assert.deepEqual(
      list.events_by_pid["100"].map((e: Json) => e.destination),
      ["/run/app.sock", "10.1.2.3:8443", "10.1.2.3:8443"],
      "each pid's events newest first",
    );
    assert.match(list.query_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(list.message, "6 connection events of 4 processes, newest first.");
    // a script of the original: select(.address_family == 2)
    const inet = Object.values(list.events_by_pid).flat().filter((e: Json) =>
      e.address_family === 2
    );
    assert.deepEqual(inet.map((e: Json) => e.pid).sort(), [100, 100, 200, 400]);
    for (const events of Object.values(list.events_by_pid) as Json[][]) {
      for (const e of events) {
        for (const [field, type] of Object.entries(ORIGINAL_EVENT_FIELDS)) {
          assert.equal(typeof e[field], type, `${e.destination}: ${field}`);
        }
        if (e.address_family === 1) {
          assert.deepEqual([e.destination_ip, e.destination_port], ["", 0], "as the original");
        }
        assert.equal(e.return_code, e.ret);
        assert.equal(e.time, e.wall_time);
        assert.equal(
          e.address_family_name,
          { 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6" }[
            e.address_family as 1 | 2 | 10
          ],
        );
      }
    }
    // the flat list of this project is the same events
    assert.deepEqual(Object.values(list.events_by_pid).flat().length, list.connections.length);
  }
  // the native listing keeps the family's name
  const native = await ok(app, "/api/programs/connection/events?pid=300");
  assert.equal(native.events[0].address_family, "AF_INET6");
  assert.equal(native.events[0].return_code, undefined);
});

Deno.test("compat lists filter like the native ones; pid 0 and an empty command mean any", async () => {
  const { app } = setup();
  const pids = async (path: string, init?: RequestInit) =>
    (await ok(app, path, init)).connections.map((e: Json) => e.pid);
  assert.deepEqual(await pids("/api/list-connections?pid=100&limit=2"), [100, 100]);
  assert.deepEqual(await pids("/api/list-connections?command=nginx"), [200]);
  assert.deepEqual(await pids("/api/list-connections?pid=0&command="), [
    100,
    300,
    200,
    100,
    100,
    400,
  ]);
  assert.deepEqual(await pids("/api/list-connections", post({ pid: 100, limit: 2 })), [100, 100]);
  assert.deepEqual(
    await pids("/api/list-connections", post({ pid: 0, command: "" })),
    [100, 300, 200, 100, 100, 400],
  );
  const at = encodeURIComponent(new Date(tsOf(CONNECTS[3])).toISOString());
  assert.deepEqual(await pids(`/api/list-connections?since=${at}`), [100, 300, 200]);
  assert.deepEqual(
    await pids("/api/list-connections", post({ since: new Date(tsOf(CONNECTS[3])).toISOString() })),
    [100, 300, 200],
  );
  const empty = await ok(app, "/api/list-connections?command=nosuch");
  assert.deepEqual(empty.events_by_pid, {});
  assert.equal(empty.total_pids, 0);
  assert.equal(empty.message, "No connection events matched.");
  const cut = await ok(app, "/api/list-connections?limit=1");
  assert.equal(cut.truncated, true);
  assert.equal(
    cut.message,
    "1 connection event of 1 process, newest first. More matched than limit=1: raise limit or narrow the filters.",
  );
  // the native route still filters pid 0 itself
  assert.equal((await ok(app, "/api/programs/connection/events?pid=0")).count, 0);
  await bad(app, "/api/list-connections", "'limit'", post({ limit: 0 }));
  await bad(app, "/api/list-connections", "'since'", post({ since: "yesterday" }));
  await bad(app, "/api/list-connections", "'foo'", post({ foo: 1 }));
});

/** The caveat of every compat summary here: the programs never ran in these tests (no BPF). */
const NOT_WATCHED =
  " The program did not watch the whole window (it started later, or was stopped): counts are low.";

Deno.test("compat summaries: the original's count, pid, command, duration_seconds, query_time", async () => {
  const { app } = setup();
  const all = await ok(app, "/api/connection-summary");
  assert.equal(all.count, 5);
  assert.equal(all.pid, 0);
  assert.equal(all.command, "");
  assert.equal(all.duration_seconds, 60);
  assert.equal(all.duration, 60);
  assert.equal(all.query_time, new Date(NOW + 1_000_000).toISOString().replace(".000Z", "Z"));
  assert.equal(
    all.message,
    "5 connect() calls in the last 60 seconds: 3 succeeded, 1 in progress, 1 failed." + NOT_WATCHED,
  );

  // the original README's requests: duration in the body, and duration_seconds as its code read
  const readme = await ok(app, "/api/connection-summary", post({ command: "curl", duration: 300 }));
  assert.equal(readme.count, 3);
  assert.equal(readme.command, "curl");
  assert.equal(readme.duration_seconds, 300);
  assert.equal(
    readme.message,
    "3 connect() calls by curl in the last 300 seconds: 2 succeeded, 0 in progress, 1 failed." +
      NOT_WATCHED,
  );
  const code = await ok(app, "/api/connection-summary", post({ pid: 400, duration_seconds: 300 }));
  assert.equal(code.count, 1);
  assert.equal(code.pid, 400);
  assert.equal(code.duration_seconds, 300);
  assert.equal(
    code.message,
    "1 connect() call by pid 400 in the last 300 seconds: 1 succeeded, 0 in progress, 0 failed." +
      NOT_WATCHED,
  );
  // a Go client sends its zero values for the filters it does not set
  const zero = await ok(
    app,
    "/api/connection-summary",
    post({ pid: 0, command: "", duration_seconds: 60 }),
  );
  assert.equal(zero.count, 5);
  const both = await ok(app, "/api/connection-summary?pid=100&command=curl");
  assert.match(both.message, /^3 connect\(\) calls by curl \(pid 100\) in the last 60 seconds/);
  const none = await ok(app, "/api/connection-summary?command=nosuch");
  assert.equal(none.message, "0 connect() calls by nosuch in the last 60 seconds." + NOT_WATCHED);
  // POST on the alias too
  const alias = await ok(app, "/api/connections/summary", post({ duration: 300 }));
  assert.equal(alias.count, 6);
});

Deno.test("compat POST bodies are read as JSON whatever their content-type (curl -d)", async () => {
  const { app } = setup();
  // curl -d '{...}' says application/x-www-form-urlencoded
  for (const type of ["application/x-www-form-urlencoded", "text/plain"]) {
    const summary = await ok(app, "/api/connection-summary", post({ command: "curl" }, type));
    assert.equal(summary.count, 3, type);
    const list = await ok(app, "/api/list-connections", post({ pid: 200 }, type));
    assert.equal(list.total_events, 1, type);
  }
  const plain = await ok(app, "/api/connection-summary", { method: "POST", body: '{"pid":100}' });
  assert.equal(plain.count, 3); // text/plain, as fetch labels a string
  // no content-type at all (a Blob without a type)
  const noType = await ok(app, "/api/connection-summary", {
    method: "POST",
    body: new Blob(['{"pid":200}']),
  });
  assert.equal(noType.count, 1);
  const empty = await ok(app, "/api/list-connections", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  assert.equal(empty.total_events, CONNECTS.length, "an empty body: no filters");
  // read-only, yet no web page may send it: a cross-site origin is refused, as on every POST
  const site = await app.request("/api/connection-summary", {
    ...post({ pid: 100 }, "text/plain"),
    headers: { "content-type": "text/plain", origin: "http://evil.example" },
  });
  assert.equal(site.status, 403);
  // and every other POST still needs the JSON type
  const stop = await app.request("/api/programs/connection/stop", post({}, "text/plain"));
  assert.equal(stop.status, 415);
});

Deno.test("compat packet drop paths answer in the original's shapes too", async () => {
  const { app } = setup();
  const summary = await ok(app, "/api/packet-drop-summary", post({ duration: 30 }));
  assertDocumented(COMPAT_SHAPES.get("packet_drop")!.summarySchema, summary, "drop summary");
  assert.equal(summary.count, 0);
  assert.equal(
    summary.message,
    "0 packet drops in the last 30 seconds. The program did not watch the whole window (it started later, or was stopped): counts are low.",
  );
  const list = await ok(app, "/api/list-packet-drops", post({}));
  assert.deepEqual(
    [list.total_pids, list.total_events, list.events_by_pid, list.packet_drops],
    [0, 0, {}, []],
  );
  assert.equal(list.message, "No packet drops matched.");
});

Deno.test("GET / describes the service and lists every route, as the original's root did", async () => {
  const { app } = setup({ events: false });
  const root = await ok(app, "/");
  assert.equal(root.service, "ebpf-server");
  assert.equal(root.version, VERSION);
  assert.deepEqual(root.documentation, { api: "/docs/", openapi_json: "/openapi.json" });
  const doc = await ok(app, "/openapi.json");
  const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, item]) =>
    Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`)
  );
  assert.deepEqual(Object.keys(root.endpoints).sort(), documented.sort());
  assert.equal(root.endpoints["GET /health"], "Server and program health");
  const off = await ok(setup({ docs: false, events: false }).app, "/");
  assert.equal(off.documentation.api, null);
});

Deno.test("a program named twice in type= counts once (issue 13: every event came back twice)", async () => {
  const { app } = setup();
  const once = await ok(app, "/api/events?type=connection&limit=1000");
  const twice = await ok(app, "/api/events?type=connection,connection&limit=1000");
  const many = await ok(
    app,
    `/api/events?type=${Array(500).fill("connection").join(",")},packet_drop&limit=1000`,
  );
  assert.ok(once.count > 0);
  assert.deepEqual(twice, once);
  assert.deepEqual(many.events, once.events); // packet_drop has no events here
  const stream = await app.request("/api/events/stream?type=connection,connection");
  assert.equal(stream.status, 200);
  await stream.body?.cancel();
});

// ---- field filters and top-k, in process -------------------------------------------------------

Deno.test("field filters on native and compatibility lists and summaries, echoed", async () => {
  const { app } = setup();
  const refused = await ok(app, "/api/programs/connection/events?result=ECONNREFUSED");
  assert.deepEqual(refused.events.map((e: Json) => [e.pid, e.result]), [[100, "ECONNREFUSED"]]);
  assert.deepEqual(refused.filter, { result: ["ECONNREFUSED"] });
  const ten = await ok(app, "/api/programs/connection/events?destination=10.0.0.1/8,!10.9.9.9");
  assert.deepEqual(ten.filter, { destination: ["10.0.0.0/8", "!10.9.9.9"] });
  assert.ok(ten.events.length > 0);
  assert.ok(
    ten.events.every((e: Json) =>
      /^10\./.test(e.destination_ip) && e.destination_ip !== "10.9.9.9"
    ),
  );
  const compat = await ok(app, "/api/list-connections?port=8443&result=!ok");
  assert.deepEqual(compat.connections.map((e: Json) => e.destination), ["10.1.2.3:8443"]);
  const summary = await ok(app, "/api/connection-summary?family=ipv6&duration=604800");
  assert.equal(summary.total_attempts, 1);
  assert.deepEqual(summary.filter, { family: ["ipv6"] });
  await bad(app, "/api/list-connections?result=nope", "'result'");
  await bad(app, "/api/connection-summary?port=99999", "'port'");
  await bad(app, "/api/programs/connection/summary?destination=x", "'destination'");
});

Deno.test("GET /api/programs/{name}/top counts groups exactly, with failures", async () => {
  const { app } = setup();
  const top = await ok(app, "/api/programs/connection/top?by=destination&duration=604800&limit=2");
  const counts = new Map<string, { count: number; failed: number }>();
  for (const e of CONNECTS) {
    if (tsOf(e) < NOW + 1_000_000 - 604800_000) continue;
    const dest = e.unixPath ?? (e.addr!.length === 4 ? `${e.addr!.join(".")}:${e.port}` : null);
    if (dest === null) continue;
    const g = counts.get(dest) ?? { count: 0, failed: 0 };
    g.count++;
    if (e.ret !== 0 && e.ret !== -115) g.failed++;
    counts.set(dest, g);
  }
  assert.deepEqual(top.groups[0], { destination: "10.1.2.3:8443", ...counts.get("10.1.2.3:8443") });
  assert.equal(top.groups.length, 2);
  assert.equal(
    top.total,
    top.groups.reduce((n: number, g: Json) => n + g.count, 0) + top.other_count,
  );
  await bad(app, "/api/programs/connection/top?by=reason", "'by'");
  await bad(app, "/api/programs/connection/top", "'by'");
  await bad(app, "/api/programs/connection/top?by=unit&limit=0", "'limit'");
  const doc = await ok(app, "/openapi.json");
  for (const name of programs.keys()) {
    const get = doc.paths[`/api/programs/${name}/top`]?.get;
    assert.ok(get, `/api/programs/${name}/top is documented`);
    const by = get.parameters.find((p: Json) => p.name === "by");
    assert.ok(by.required && by.schema.example, `${name}: by is required, with an example`);
    for (const p of doc.paths[`/api/programs/${name}/events`].get.parameters) {
      if (!["pid", "command", "since", "until", "limit"].includes(p.name)) {
        assert.ok(
          p.example !== undefined || p.schema?.example !== undefined,
          `${name} ${p.name} has an example`,
        );
      }
    }
  }
});
