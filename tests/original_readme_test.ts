/**
 * The README examples of the project this grew from (the Go `ebpf-server`, SRodi/ebpf-server on
 * GitHub: its README.md across versions, and the response types of its internal/api/handlers.go),
 * run unchanged against this server except for their addresses, which are made local: the server
 * listens on 127.0.0.1 at a free port instead of localhost:8080, httpbin.org:80 is a listener of
 * this test, www.google.com:443 is the closed port 1 and 8.8.8.8:53 is 127.0.0.1:53. The server
 * is started with the original's Go-style flag, `-addr`.
 *
 * Each answer is checked against the shape that README and that code show: the field names and
 * their JSON types a script written against the original reads.
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

// deno-lint-ignore no-explicit-any
type Json = any;

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** A field's expected JSON type, or a check of its value. */
type Expect = "number" | "string" | "object" | "rfc3339" | ((v: Json) => boolean);

function check(what: string, body: Json, fields: Record<string, Expect>): void {
  assert.equal(typeof body, "object", `${what}: an object, got ${JSON.stringify(body)}`);
  for (const [field, expect] of Object.entries(fields)) {
    const v = body[field];
    if (typeof expect === "function") {
      assert.ok(expect(v), `${what}: .${field} is ${JSON.stringify(v)}`);
    } else if (expect === "rfc3339") {
      assert.match(String(v), RFC3339, `${what}: .${field} is an RFC 3339 time`);
    } else {
      assert.equal(typeof v, expect, `${what}: .${field} is a ${expect}: ${JSON.stringify(v)}`);
    }
  }
}

/** The health answer: the code's HealthResponse and an earlier README's example. */
const HEALTH: Record<string, Expect> = {
  status: (v) => v === "healthy",
  component: "string",
  uptime: "string",
  version: "string",
  service: "string",
};

/**
 * A summary: the code's ConnectionSummaryResponse (PacketDropSummaryResponse is the same) and,
 * for connections, an earlier README's example.
 */
function summaryFields(
  expect: { command?: string; pid?: number; duration?: number },
  program: "connection" | "packet_drop" = "connection",
) {
  const fields: Record<string, Expect> = {
    count: "number",
    pid: (v) => v === (expect.pid ?? 0),
    command: (v) => v === (expect.command ?? ""),
    duration_seconds: (v) => v === (expect.duration ?? 60),
    query_time: "rfc3339",
    // the earlier README: total_attempts, duration and a message
    duration: (v) => v === (expect.duration ?? 60),
    message: "string",
  };
  if (program === "connection") fields.total_attempts = "number";
  return fields;
}

/** A list: the code's ConnectionListResponse (events grouped by pid). */
const LIST: Record<string, Expect> = {
  total_pids: "number",
  total_events: "number",
  events_by_pid: (v) =>
    typeof v === "object" && v !== null &&
    Object.entries(v).every(([pid, events]) =>
      /^\d+$/.test(pid) && Array.isArray(events) &&
      events.every((e) => e.pid === Number(pid))
    ),
  query_time: "rfc3339",
};

/** The README's "Example Protocol Detection Output" (and the code's return_code). */
const CONNECTION_EVENT: Record<string, Expect> = {
  pid: "number",
  command: "string",
  destination_ip: "string",
  destination_port: "number",
  destination: "string",
  address_family: "number",
  protocol: "string",
  socket_type: "string",
  wall_time: "rfc3339",
  return_code: "number",
  type: (v) => v === "connection",
  time: "rfc3339",
};

/** The code's packet drop event fields. */
const DROP_EVENT: Record<string, Expect> = {
  pid: "number",
  command: "string",
  drop_reason: "string",
  drop_reason_code: "number",
  skb_length: "number",
  packet_size_bytes: "number",
  type: (v) => v === "packet_drop",
  time: "rfc3339",
};

/** Runs one example as written, the server's address made local. */
async function sh(server: ServerHandle, example: string): Promise<string> {
  const command = example.replaceAll("http://localhost:8080", server.url);
  const out = await runCommand("bash", ["-o", "pipefail", "-c", command], { timeoutMs: 30_000 });
  assert.equal(out.code, 0, `${example}\n${out.stderr}`);
  return out.stdout;
}

async function shJson(server: ServerHandle, example: string): Promise<Json> {
  const text = await sh(server, example);
  try {
    return JSON.parse(text);
  } catch {
    assert.fail(`${example} printed no JSON: ${text.slice(0, 500)}`);
  }
}

function allEvents(list: Json): Json[] {
  return Object.values(list.events_by_pid).flat();
}

Deno.test({
  name: privileged("original README: its examples get the answers its scripts read"),
  ignore: !canRunPrivileged,
  async fn(t) {
    // "sudo ./bin/ebpf-server -addr :9090": the original's Go-style flag
    await using server = await startServer({ addrFlag: "-addr" });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const httpbin = (listener.addr as Deno.NetAddr).port;
    // a stand-in for httpbin.org: accept and close
    const accepting = (async () => {
      for await (const conn of listener) conn.close();
    })().catch(() => {});
    try {
      await t.step("curl http://localhost:8080/health", async () => {
        check("health", await shJson(server, "curl http://localhost:8080/health"), HEALTH);
      });

      await t.step("the Quick Start and Testing requests", async () => {
        const test = await shJson(
          server,
          `curl -X POST http://localhost:8080/api/connection-summary \\
     -H "Content-Type: application/json" \\
     -d '{"command":"test","duration":30}'`,
        );
        check("summary of command test", test, summaryFields({ command: "test", duration: 30 }));
        const list = await shJson(server, "curl http://localhost:8080/api/list-connections");
        check("list", list, LIST);
        for (const e of allEvents(list)) check(`event ${e.destination}`, e, CONNECTION_EVENT);
        // an earlier Quick Start: GET with pid and duration (quoted here: unquoted, the shell
        // would run curl in the background at the '&')
        const byPid = await shJson(
          server,
          `curl 'http://localhost:8080/api/connections/summary?pid=1234&duration=60'`,
        );
        check("summary of pid 1234", byPid, summaryFields({ pid: 1234 }));
        assert.equal(byPid.count, 0);
        // the latest Quick Start: POST to /api/connections/summary, no content-type
        const posted = await shJson(
          server,
          `curl -X POST http://localhost:8080/api/connections/summary -d '{"duration":60}'`,
        );
        check("posted summary", posted, summaryFields({}));
      });

      await t.step("network activity, then the list and the summary for curl", async () => {
        // "curl -s http://httpbin.org/ip" and "curl -s https://www.google.com", made local: the
        // stand-in closes at once and port 1 refuses, so curl fails (|| true)
        await sh(server, `curl -s http://127.0.0.1:${httpbin}/ip > /dev/null || true`);
        await sh(server, "curl -s https://127.0.0.1:1 > /dev/null || true");
        const list = await shJson(server, "curl http://localhost:8080/api/list-connections | jq .");
        check("list", list, LIST);
        const mine = allEvents(list).filter((e) => e.destination === `127.0.0.1:${httpbin}`);
        assert.ok(mine.length >= 1, "curl's connect to the httpbin stand-in is listed");
        for (const e of mine) {
          check("curl's event", e, CONNECTION_EVENT);
          assert.equal(e.command, "curl");
          assert.equal(e.address_family, 2);
          assert.equal(e.destination_ip, "127.0.0.1");
          assert.equal(e.destination_port, httpbin);
          assert.equal(e.protocol, "TCP");
          assert.equal(e.socket_type, "STREAM");
          assert.ok(
            list.events_by_pid[String(e.pid)].some((x: Json) => x.destination === e.destination),
            "listed under its pid",
          );
        }
        const curl = await shJson(
          server,
          `curl -X POST http://localhost:8080/api/connection-summary \\
     -H "Content-Type: application/json" \\
     -d '{"command":"curl","duration":60}'`,
        );
        check("summary of curl", curl, summaryFields({ command: "curl" }));
        assert.ok(curl.count >= 2, `curl's connects are counted: ${curl.count}`);
        assert.match(curl.message, /connect\(\) calls? by curl in the last 60 seconds/);
        const pid = await shJson(
          server,
          `curl -X POST http://localhost:8080/api/connection-summary \\
     -H "Content-Type: application/json" \\
     -d '{"pid":1234,"duration":30}'`,
        );
        check("summary of pid 1234", pid, summaryFields({ pid: 1234, duration: 30 }));
        const limited = await shJson(
          server,
          `curl "http://localhost:8080/api/list-connections?pid=1234&limit=50"`,
        );
        check("list of pid 1234", limited, LIST);
        assert.equal(limited.total_events, 0);
      });

      await t.step("the Protocol Detection script and its example output", async () => {
        // its Python script, with httpbin.org:80 and 8.8.8.8:53 made local
        const script = `python3 -c "
import socket
import time

print('Testing TCP connection...')
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(('127.0.0.1', ${httpbin}))
s.close()

print('Testing UDP with connect()...')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('127.0.0.1', 53))  # This will be captured
s.close()

print('Testing UDP with sendto()...')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'test', ('127.0.0.1', 53))  # This will NOT be captured
s.close()

print('Test complete')
"`;
        assert.match(await sh(server, script), /Test complete/);
        const events = await waitFor("the script's connects", async () => {
          const list = await shJson(
            server,
            "curl http://localhost:8080/api/list-connections | jq .",
          );
          check("list", list, LIST);
          const tcp = allEvents(list).find((e) =>
            e.command === "python3" && e.destination === `127.0.0.1:${httpbin}`
          );
          // its IP connects: without HOME, Python's start-up asks the C library for the home
          // directory, and glibc tries nscd's unix socket (two more connects of that pid)
          const mine = tcp
            ? (list.events_by_pid[String(tcp.pid)] as Json[]).filter((e) => e.address_family === 2)
            : [];
          // the two connects may reach the store in different drains: wait for the UDP one too
          return mine.some((e) => e.destination === "127.0.0.1:53") ? mine : undefined;
        });
        // connect() only: the TCP and the UDP connect, not the sendto
        assert.deepEqual(
          events.map((e) => e.destination).sort(),
          [`127.0.0.1:${httpbin}`, "127.0.0.1:53"].sort(),
          `the events of the script's pid: ${JSON.stringify(events, null, 1)}`,
        );
        const udp = events.find((e) => e.destination === "127.0.0.1:53");
        // "Example Protocol Detection Output"
        check("the UDP connect", udp, CONNECTION_EVENT);
        assert.equal(udp.command, "python3");
        assert.equal(udp.destination_ip, "127.0.0.1");
        assert.equal(udp.destination_port, 53);
        assert.equal(udp.address_family, 2);
        assert.equal(udp.protocol, "UDP");
        assert.equal(udp.socket_type, "DGRAM");
        assert.equal(udp.return_code, 0);

        const python = await shJson(
          server,
          `curl -X POST http://localhost:8080/api/connection-summary \\
  -H "Content-Type: application/json" \\
  -d '{"command":"python3","duration":60}'`,
        );
        check("summary of python3", python, summaryFields({ command: "python3" }));
        assert.ok(python.count >= 2, `python3's connects are counted: ${python.count}`);
      });

      await t.step("Integration with monitoring tools: its jq pipelines", async () => {
        const attempts = await sh(
          server,
          `curl -s http://localhost:8080/api/connection-summary \\
  -d '{"command":"nginx","duration":60}' | jq '.total_attempts'`,
        );
        assert.match(attempts.trim(), /^\d+$/, "a number for .total_attempts");
        const tracking = await sh(
          server,
          `CONNECTIONS=$(curl -s http://localhost:8080/api/list-connections | jq '.total_pids')
echo "Currently tracking $CONNECTIONS processes"`,
        );
        assert.match(tracking.trim(), /^Currently tracking \d+ processes$/);
        // the examples: select(.address_family==2), int(e["address_family"])
        const inet = await sh(
          server,
          `curl -s http://localhost:8080/api/list-connections | jq '[.events_by_pid[][] | select(.address_family==2)] | length'`,
        );
        assert.ok(Number(inet) >= 1, `events with address_family 2: ${inet}`);
        const summed = await sh(
          server,
          `curl -s http://localhost:8080/api/list-connections | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(1 for es in d["events_by_pid"].values() for e in es if int(e["address_family"]) == 2))'`,
        );
        assert.ok(Number(summed) >= 1, `python counted ${summed}`);
      });

      await t.step("the other routes of the original's code: drops and the root", async () => {
        // sendto() to a closed local port: a drop to list
        await sh(
          server,
          `python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))'`,
        );
        for (
          const example of [
            "curl 'http://localhost:8080/api/packet-drop-summary?duration_seconds=60'",
            `curl -X POST http://localhost:8080/api/packet-drop-summary -d '{"duration_seconds":60}'`,
          ]
        ) {
          const s = await shJson(server, example);
          check(example, s, summaryFields({}, "packet_drop"));
        }
        const drops = await shJson(server, "curl http://localhost:8080/api/list-packet-drops");
        check("drop list", drops, LIST);
        assert.ok(drops.total_events >= 1, "the drop is listed");
        for (const e of allEvents(drops)) check(`drop ${e.reason}`, e, DROP_EVENT);
        const root = await shJson(server, "curl http://localhost:8080/");
        check("root", root, {
          service: "string",
          version: "string",
          description: "string",
          endpoints: (v) => typeof v === "object" && typeof v["GET /health"] === "string",
          documentation: "object",
        });
      });
    } finally {
      listener.close();
      await accepting;
    }
  },
});
