/**
 * A fuzzer over every operation of the real server's `/openapi.json` (issue 13: no 5xx from
 * any input): for each parameter random and boundary values of its type and beyond, unknown and
 * repeated parameters, odd percent-encoding, and for bodies random JSON, wrong types, malformed
 * JSON and wrong content types. Every answer must be below 500, and every 4xx a JSON error.
 *
 * The run is reproducible: `FUZZ_SEED=<n>` replays a seed (the failure message gives it), and
 * `FUZZ_CASES=<n>` sets the cases per operation (default 120).
 *
 * @module
 */

import assert from "node:assert/strict";
import { canRunPrivileged, CONTROL, privileged, startServer } from "./_server.ts";

interface Schema {
  type?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
}

interface Operation {
  method: string;
  path: string;
  parameters: { name: string; in: "query" | "path"; schema: Schema }[];
  body: boolean;
}

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRANGE = [
  "",
  " ",
  "%",
  "%zz",
  "%00",
  "%FF%FE",
  "\u0000",
  "\u202e",
  "💥",
  "ß",
  "../../etc/passwd",
  "<script>",
  "'; DROP TABLE x;--",
  "null",
  "undefined",
  "NaN",
  "Infinity",
  "-0",
  "true",
  "[]",
  "{}",
  "constructor",
  "__proto__",
  "toString",
  "a".repeat(65),
  "a".repeat(3000),
  "9".repeat(400),
];

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)];
}

function intText(rand: () => number, s: Schema): string {
  const min = s.minimum ?? 0, max = s.maximum ?? 2 ** 32;
  return pick(rand, [
    String(min),
    String(max),
    String(min - 1),
    String(max + 1),
    String(Math.floor(min + rand() * (max - min))),
    "0",
    "-1",
    "1.5",
    "1e3",
    "0x10",
    " 1",
    "1 ",
    "+1",
    "٣",
    "00001",
    String(2 ** 53 + 1),
    String(Number.MAX_VALUE),
    ...STRANGE,
  ]);
}

function timeText(rand: () => number): string {
  const now = Date.now();
  return pick(rand, [
    new Date(now).toISOString(),
    new Date(now - rand() * 1e9).toISOString(),
    new Date(now + 1e9).toISOString(),
    "1970-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "2026-13-45T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01T00:00:00+25:00",
    "2026-01-01T24:00:00Z",
    "2026-01-01",
    "yesterday",
    String(now),
    ...STRANGE,
  ]);
}

function stringText(rand: () => number, name: string): string {
  if (name === "type") {
    const names = ["connection", "packet_drop", "tcp_life"];
    return pick(rand, [
      pick(rand, names),
      names.join(","),
      Array(200).fill(pick(rand, names)).join(","),
      "connection,",
      ",",
      "CONNECTION",
      "nosuch",
      ...STRANGE,
    ]);
  }
  if (name === "name") {
    // start/stop: never a real program (stopping one would change what other cases see)
    return pick(rand, ["nosuch", "Connection", "connection ", "x".repeat(300), ...STRANGE]);
  }
  return pick(rand, ["curl", "python3", "a".repeat(64), "a".repeat(15), ...STRANGE]);
}

function valueFor(rand: () => number, name: string, schema: Schema): string {
  if (schema.type === "integer") return intText(rand, schema);
  if (schema.format === "date-time") return timeText(rand);
  return stringText(rand, name);
}

/** Percent-encodes, except now and then a raw, deliberately malformed value. */
function encode(rand: () => number, value: string): string {
  return rand() < 0.1 && /^[\x21-\x7e]*$/.test(value) && !/[#&?/]/.test(value)
    ? value
    : encodeURIComponent(value);
}

function randomJson(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 3 || r < 0.3) {
    return pick(rand, [
      0,
      -1,
      1.5,
      2 ** 32,
      2 ** 53 + 2,
      1e308,
      "",
      "curl",
      "x".repeat(2000),
      true,
      null,
      "2026-01-01T00:00:00Z",
    ]);
  }
  if (r < 0.5) {
    return Array.from({ length: Math.floor(rand() * 4) }, () => randomJson(rand, depth + 1));
  }
  const keys = [
    "pid",
    "command",
    "duration",
    "duration_seconds",
    "limit",
    "__proto__",
    "constructor",
    "x",
  ];
  return Object.fromEntries(
    Array.from(
      { length: Math.floor(rand() * 5) },
      () => [pick(rand, keys), randomJson(rand, depth + 1)],
    ),
  );
}

function body(rand: () => number): { type: string | null; text: string } {
  const r = rand();
  if (r < 0.15) {
    return {
      type: pick(rand, [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        null,
      ]),
      text: '{"pid":1}',
    };
  }
  if (r < 0.3) {
    return {
      type: "application/json",
      text: pick(rand, ["{pid: 1", "{", "[", '"', "nul", "{}}", "\u0000", "1e999999", ...STRANGE]),
    };
  }
  const valid = { pid: 1, command: "curl", duration: 60 };
  return {
    type: pick(rand, ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]),
    text: JSON.stringify(r < 0.4 ? valid : randomJson(rand)),
  };
}

/** One request of the fuzz for `op`: its path with query, and init. */
function makeCase(rand: () => number, op: Operation): { url: string; init: RequestInit } {
  let path = op.path;
  const query: string[] = [];
  for (const p of op.parameters) {
    const value = valueFor(rand, p.name, p.schema);
    if (p.in === "path") {
      path = path.replace(`{${p.name}}`, value === "" ? "x" : encodeURIComponent(value));
    } else if (rand() < 0.6) {
      query.push(`${p.name}=${encode(rand, value)}`);
      if (rand() < 0.05) query.push(`${p.name}=${encode(rand, value)}`); // repeated
    }
  }
  if (rand() < 0.15) {
    query.push(
      `${pick(rand, ["foo", "PID", "limit[]", "", "__proto__", "a b"])}=${
        encode(rand, pick(rand, STRANGE))
      }`,
    );
  }
  if (rand() < 0.03) query.push(pick(rand, ["&", "&&", "=", "pid", "=1"]));
  const url = path + (query.length ? `?${query.join("&")}` : rand() < 0.05 ? "?" : "");
  if (op.method === "GET") return { url, init: { method: "GET" } };
  const b = op.body
    ? body(rand)
    : rand() < 0.2
    ? body(rand)
    : { type: "application/json", text: "" };
  const headers: Record<string, string> = {};
  if (b.type) headers["content-type"] = b.type;
  return { url, init: { method: op.method, headers, body: b.text } };
}

Deno.test({
  name: privileged("hostile: a fuzzer over every operation of /openapi.json gets no 5xx"),
  ignore: !canRunPrivileged,
  async fn() {
    await using server = await startServer();
    const seed = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    const cases = Number(Deno.env.get("FUZZ_CASES") ?? 120);
    const rand = prng(seed);
    const doc = await server.json<{
      paths: Record<
        string,
        Record<string, { parameters?: Operation["parameters"]; requestBody?: unknown }>
      >;
    }>("/openapi.json");
    const ops: Operation[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        ops.push({
          method: method.toUpperCase(),
          path,
          parameters: op.parameters ?? [],
          body: !!op.requestBody,
        });
      }
    }
    assert.ok(ops.length >= 20, `operations in the document: ${ops.length}`);
    // routes outside the document too
    ops.push(
      {
        method: "GET",
        path: "/docs/{name}",
        parameters: [{ name: "name", in: "path", schema: { type: "string" } }],
        body: false,
      },
      { method: "GET", path: "/openapi.json", parameters: [], body: false },
      {
        method: "GET",
        path: "/api/programs/{name}/events",
        parameters: [{ name: "name", in: "path", schema: { type: "string" } }],
        body: false,
      },
    );
    const statuses = new Map<number, number>();
    let sent = 0;
    for (const op of ops) {
      for (let i = 0; i < cases; i++) {
        const { url, init } = makeCase(rand, op);
        const where = `${init.method} ${url.slice(0, 300)} body ${
          String(init.body ?? "").slice(0, 200)
        } (FUZZ_SEED=${seed})`;
        const res = await fetch(server.url + url, init);
        sent++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const type = res.headers.get("content-type") ?? "";
        if (type.startsWith("text/event-stream")) {
          await res.body?.cancel();
        } else {
          const text = await res.text();
          assert.ok(res.status < 500, `${res.status} for ${where}: ${text.slice(0, 300)}`);
          if (res.status >= 400) {
            const parsed = JSON.parse(text);
            assert.equal(typeof parsed.error, "string", `${where}: ${text.slice(0, 200)}`);
          }
        }
        assert.ok(res.status < 500, `${res.status} for ${where}`);
      }
    }
    // the control routes with real names at the end: they work, nothing else did harm
    for (const action of ["stop", "start"]) {
      const res = await fetch(`${server.url}/api/programs/tcp_life/${action}`, CONTROL);
      assert.equal(res.status, 200, action);
      await res.body?.cancel();
    }
    const health = await server.json<{ status: string }>("/health");
    assert.equal(health.status, "healthy");
    console.log(
      `fuzz: ${sent} requests over ${ops.length} operations, seed ${seed}; statuses ${
        JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))
      }`,
    );
    assert.ok((statuses.get(200) ?? 0) > sent / 20, "some of the cases were valid requests");
    assert.ok((statuses.get(400) ?? 0) > sent / 5, "many were refused as they should");
  },
});
