/**
 * No answer gives away a kernel address (they reveal where KASLR put the kernel): with events of
 * every program stored (drops, connects, a closed and an open TCP connection), every operation
 * of `/openapi.json` is asked, and every JSON value, the Prometheus text and the live stream
 * are scanned for kernel pointers (`ffff8...`-style hex, or numbers of 2^48 and above). The
 * same scan of a server started with `--expose-kernel-addresses` must find the drop locations,
 * so the scan is known to see them.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canRunPrivileged,
  privileged,
  runCommand,
  type ServerHandle,
  startServer,
  waitFor,
} from "./_server.ts";

/** Kernel virtual addresses on 64-bit Linux: 16 hex digits from ffff8000 00000000 up. */
const KERNEL_HEX = /(?:0x)?ffff[89a-f][0-9a-f]{11}/i;
/** Decimal runs long enough to be a pointer (2^48 has 15 digits). */
const LONG_DECIMAL = /(?<![0-9.])[0-9]{15,}(?![0-9])/;
const POINTER_MIN = 2 ** 48;

/** Where a value in an answer looks like a kernel address: `route: path = value`. */
function findPointers(where: string, value: unknown, found: string[], path = "$"): void {
  if (typeof value === "string") {
    if (KERNEL_HEX.test(value) || LONG_DECIMAL.test(value)) {
      found.push(`${where}: ${path} = ${value}`);
    }
  } else if (typeof value === "number") {
    if (Math.abs(value) >= POINTER_MIN) found.push(`${where}: ${path} = ${value}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => findPointers(where, v, found, `${path}[${i}]`));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (KERNEL_HEX.test(k) || LONG_DECIMAL.test(k)) found.push(`${where}: key ${path}.${k}`);
      findPointers(where, v, found, `${path}.${k}`);
    }
  }
}

/** The same for text (Prometheus exposition, server-sent events): hex, and numbers. */
function findPointersInText(where: string, text: string, found: string[]): void {
  for (const line of text.split("\n")) {
    if (KERNEL_HEX.test(line) || LONG_DECIMAL.test(line)) found.push(`${where}: ${line}`);
    const value = Number(line.split(" ").at(-1));
    if (!line.startsWith("#") && Number.isFinite(value) && Math.abs(value) >= POINTER_MIN) {
      found.push(`${where}: ${line}`);
    }
  }
}

const TRAFFIC = `
import socket, sys, time
# a drop: a datagram to a closed port
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"x", ("127.0.0.1", 9))
# a refused connect
r = socket.socket()
r.connect_ex(("127.0.0.1", 1))
# a whole TCP connection with data, and one left open until stdin closes
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen()
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
c.sendall(b"y" * 1000)
a.recv(1000)
c.close()
a.close()
o = socket.create_connection(l.getsockname())
p, _ = l.accept()
print("ready", flush=True)
sys.stdin.read()
`;

/** Starts the traffic; resolves once the open connection is up. Close stdin to end it. */
async function traffic(): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("python3", {
    args: ["-c", TRAFFIC],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /ready/);
  reader.releaseLock();
  return child;
}

interface Operation {
  method: string;
  path: string;
  /** Its required query parameters with their documented examples (`by=destination`), or "". */
  required: string;
}

interface Param {
  name: string;
  in: string;
  required?: boolean;
  example?: unknown;
  schema?: { example?: unknown };
}

/** Every operation of the server's OpenAPI document, path parameters filled with each program. */
async function operations(server: ServerHandle): Promise<Operation[]> {
  const doc = await server.json<{ paths: Record<string, Record<string, unknown>> }>(
    "/openapi.json",
  );
  const names = (await server.json<{ programs: { name: string }[] }>("/api/programs")).programs
    .map((p) => p.name);
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      // a required query parameter (the top routes' by) takes its documented example
      const params = ((op as { parameters?: Param[] }).parameters ?? [])
        .filter((p) => p.in === "query" && p.required);
      const required = params.map((p) =>
        `${p.name}=${encodeURIComponent(String(p.example ?? p.schema?.example ?? ""))}`
      ).join("&");
      const paths = path.includes("{name}") ? names.map((n) => path.replace("{name}", n)) : [path];
      for (const p of paths) ops.push({ method: method.toUpperCase(), path: p, required });
    }
  }
  return ops;
}

/** Asks every operation, and the live stream, and scans every answer. */
async function scan(server: ServerHandle): Promise<string[]> {
  const found: string[] = [];
  // Program control last: each stop, then each start, so every program runs again.
  const rank = (op: Operation) =>
    op.path.endsWith("/stop") ? 1 : op.path.endsWith("/start") ? 2 : 0;
  const ops = (await operations(server)).sort((a, b) => rank(a) - rank(b));
  assert.ok(ops.length >= 20, `operations: ${ops.length}`);
  let stream = false;
  for (const { method, path, required } of ops) {
    const where = `${method} ${path}`;
    if (path === "/api/events/stream") {
      stream = true;
      continue;
    }
    const list = /\/events$|\/list-/.test(path);
    const query = "?" + [list && method === "GET" ? "limit=10000" : "", required]
      .filter(Boolean).join("&");
    const res = await fetch(server.url + path + query, {
      method,
      headers: method === "POST" ? { "content-type": "application/json" } : {},
      body: method === "POST" && !/\/(start|stop)$/.test(path)
        ? (list ? '{"limit":10000}' : "{}")
        : undefined,
    });
    const text = await res.text();
    assert.equal(res.status, 200, `${where}: ${text}`);
    if ((res.headers.get("content-type") ?? "").includes("json")) {
      findPointers(where, JSON.parse(text), found);
    } else {
      findPointersInText(where, text, found);
    }
  }
  assert.ok(stream, "the live stream is in the OpenAPI document");
  // The live stream, while a drop happens.
  const controller = new AbortController();
  const res = await fetch(`${server.url}/api/events/stream`, { signal: controller.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let text = "";
  const reading = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  })().catch(() => {});
  await waitFor("a drop on the live stream", async () => {
    await runCommand("python3", [
      "-c",
      'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))',
    ]);
    return text.includes("event: packet_drop") ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 200 });
  controller.abort();
  await reading;
  findPointersInText("GET /api/events/stream", text, found);
  return found;
}

/** Waits until every program has stored an event (and the open snapshot shows one). */
async function waitForEvents(server: ServerHandle): Promise<void> {
  for (const name of ["connection", "packet_drop", "tcp_life"]) {
    await waitFor(`events of ${name}`, async () => {
      const list = await server.json<{ count: number }>(`/api/programs/${name}/events?limit=1`);
      return list.count > 0 ? true : undefined;
    });
  }
  const open = await server.json<{ count: number }>("/api/programs/tcp_life/open");
  assert.ok(open.count > 0, "an open connection");
}

Deno.test({
  name: privileged("no answer of any operation carries a kernel address"),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  async fn() {
    await using server = await startServer();
    const child = await traffic();
    try {
      await waitForEvents(server);
      const found = await scan(server);
      assert.deepEqual(found, [], "kernel addresses in answers");
    } finally {
      await child.stdin.close();
      await child.stdout.cancel();
      await child.status;
    }
  },
});

Deno.test({
  name: privileged("with --expose-kernel-addresses the same scan finds the drop locations"),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  async fn() {
    await using server = await startServer({ args: ["--expose-kernel-addresses"] });
    const child = await traffic();
    try {
      await waitForEvents(server);
      const found = await scan(server);
      const where = new Set(found.map((f) => f.split(":")[0]));
      assert.ok(where.has("GET /api/programs/packet_drop/events"), found.join("\n"));
      assert.ok(where.has("GET /api/events/stream"), found.join("\n"));
      assert.ok(
        found.every((f) => /location|packet_drop/.test(f)),
        `only drop locations are exposed:\n${found.join("\n")}`,
      );
    } finally {
      await child.stdin.close();
      await child.stdout.cancel();
      await child.status;
    }
  },
});
