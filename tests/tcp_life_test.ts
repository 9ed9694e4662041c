/**
 * The tcp_life program end to end: real TCP connections made by Python children whose pid is
 * known (on loopback, or inside a network namespace this file creates) come back from the HTTP
 * API with what the kernel counted: direction, bytes each way, RTT, retransmits, resets, the
 * states walked and how each connection ended; open ones show in the live snapshot. One server
 * for the whole file.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { z } from "@hono/zod-openapi";
import type { Capabilities as CapabilitiesSchema } from "../src/http/routes_capabilities.ts";
import type { TcpLifeEvent as TcpLifeEventSchema } from "../src/programs/tcp_life/schema.ts";
import {
  canRunPrivileged,
  freePort,
  privileged,
  runCommand,
  type ServerHandle,
  startServer,
  waitFor,
} from "./_server.ts";

/** The fields of a tcp_life event the tests read. */
type TcpLifeEvent = z.infer<typeof TcpLifeEventSchema>;

interface Group {
  connections: number;
  bytes_sent: number;
  bytes_received: number;
  retransmits: number;
  segments_out: number;
  retransmit_rate: number | null;
  by_outcome: Record<string, number>;
}

interface Summary extends Group {
  program: string;
  pid: number | null;
  by_remote: (Group & { remote: string })[];
  by_process: (Group & { pid: number; command: string })[];
}

const ECONNREFUSED = 111;

/**
 * The Python side. argv[1] is `{"actions": [...]}`; each action runs in order and its result is
 * reported on the last stdout line with the pid and comm. Every socket has a timeout, so a child
 * never hangs on a lost peer.
 *
 * - exchange: a server thread and a client in this process; the client sends `send` bytes, the
 *   server reads them all and replies `reply` bytes; the client closes first (with SO_LINGER 0
 *   when `linger0`: an RST instead of a FIN), then the server.
 * - refused: a blocking connect() to `port` (nothing listens there).
 * - hold: a connected pair; the client sends `send` bytes that the server reads; prints a
 *   "ready" line and keeps both open until a line arrives on stdin, then closes them normally.
 * - bulk: a server on 127.0.0.1:`port` and a client that sends `send` bytes, then half-closes.
 */
const PY_SCRIPT = `
import json, os, socket, struct, sys, threading

def family(a):
    if a.get("family") == 6:
        return socket.AF_INET6, "::1"
    return socket.AF_INET, "127.0.0.1"

def read_exactly(sock, n):
    got = 0
    while got < n:
        d = sock.recv(min(65536, n - got))
        if not d:
            break
        got += len(d)
    return got

def exchange(a):
    fam, host = family(a)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.settimeout(20)
    ls.bind((host, 0))
    ls.listen(1)
    out = {"port": ls.getsockname()[1]}
    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(20)
            out["server_got"] = read_exactly(c, a["send"])
            c.sendall(b"s" * a["reply"])
            try:
                out["server_tail"] = len(c.recv(1))  # 0: the client's FIN
            except ConnectionResetError:
                out["server_tail"] = "reset"
            c.close()
        except Exception as e:
            out["server_error"] = repr(e)
    t = threading.Thread(target=serve)
    t.start()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect((host, out["port"]))
    out["client_port"] = s.getsockname()[1]
    s.sendall(b"c" * a["send"])
    out["client_got"] = read_exactly(s, a["reply"])
    if a.get("linger0"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    t.join(30)
    ls.close()
    return out

def refused(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    err = s.connect_ex(("127.0.0.1", a["port"]))
    s.close()
    return {"errno": err}

def hold(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.settimeout(20)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    c, _ = ls.accept()
    c.settimeout(20)
    s.sendall(b"h" * a["send"])
    got = read_exactly(c, a["send"])
    out = {"port": port, "client_port": s.getsockname()[1], "server_got": got}
    print(json.dumps({"ready": True, "pid": os.getpid(), **out}), flush=True)
    sys.stdin.readline()
    s.close()
    c.recv(1)  # the client's FIN
    c.close()
    ls.close()
    return out

def bulk(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.settimeout(30)
    ls.bind(("127.0.0.1", a["port"]))
    ls.listen(1)
    out = {}
    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(30)
            n = 0
            while True:
                d = c.recv(65536)
                if not d:
                    break
                n += len(d)
            out["server_got"] = n
            c.close()
        except Exception as e:
            out["server_error"] = repr(e)
    t = threading.Thread(target=serve)
    t.start()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(("127.0.0.1", a["port"]))
    out["client_port"] = s.getsockname()[1]
    chunk = b"b" * 65536
    sent = 0
    while sent < a["send"]:
        k = min(len(chunk), a["send"] - sent)
        s.sendall(chunk[:k])
        sent += k
    s.shutdown(socket.SHUT_WR)
    t.join(40)
    s.close()
    ls.close()
    return out

spec = json.loads(sys.argv[1])
with open("/proc/self/comm") as f:
    comm = f.read().strip()
ops = {"exchange": exchange, "refused": refused, "hold": hold, "bulk": bulk}
results = [ops[a["op"]](a) for a in spec["actions"]]
print(json.dumps({"pid": os.getpid(), "comm": comm, "results": results}), flush=True)
`;

/** One action of {@linkcode PY_SCRIPT}. */
type PyAction =
  | { op: "exchange"; send: number; reply: number; family?: 4 | 6; linger0?: boolean }
  | { op: "refused"; port: number }
  | { op: "hold"; send: number }
  | { op: "bulk"; port: number; send: number };

/** What an action reports (fields depend on the action). */
interface PyActionResult {
  port?: number;
  client_port?: number;
  server_got?: number;
  client_got?: number;
  server_tail?: number | "reset";
  server_error?: string;
  errno?: number;
}

interface PyResult {
  pid: number;
  comm: string;
  results: PyActionResult[];
}

let pythonPath: string | undefined;

/** The real Python executable (not a pyenv shim), so pid and comm are Python's from the start. */
async function python(): Promise<string> {
  if (pythonPath) return pythonPath;
  const out = await runCommand("python3", ["-c", "import sys; print(sys.executable)"]);
  if (out.code !== 0) throw new Error(`python3 does not run: ${out.stderr}`);
  return pythonPath = out.stdout.trim();
}

/** The argv of a Python child running `actions` (inside network namespace `netns` if given). */
async function pythonArgv(actions: PyAction[], netns?: string): Promise<[string, string[]]> {
  const py = await python();
  const args = ["-S", "-c", PY_SCRIPT, JSON.stringify({ actions })];
  // `ip netns exec` execs the command in place: the child's pid is Python's.
  return netns ? ["ip", ["netns", "exec", netns, py, ...args]] : [py, args];
}

/** Runs a Python child to its end (killed after 60 s) and checks that it succeeded. */
async function runPython(actions: PyAction[], netns?: string): Promise<PyResult> {
  const [cmd, args] = await pythonArgv(actions, netns);
  const out = await runCommand(cmd, args, { timeoutMs: 60_000 });
  if (out.code !== 0) {
    throw new Error(`python child failed (${out.code}): ${out.stderr}\n${out.stdout}`);
  }
  const lines = out.stdout.trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]) as PyResult;
  for (const r of result.results) {
    assert.equal(r.server_error, undefined, `the child's server thread: ${r.server_error}`);
  }
  return result;
}

/** Waits until `pid` has at least `expected` tcp_life events and returns them (newest first). */
async function eventsOf(
  server: ServerHandle,
  pid: number,
  expected: number,
): Promise<TcpLifeEvent[]> {
  return await waitFor(`${expected} tcp_life event(s) of pid ${pid}`, async () => {
    const body = await server.json<{ events: TcpLifeEvent[] }>(
      `/api/programs/tcp_life/events?pid=${pid}&limit=1000`,
    );
    return body.events.length >= expected ? body.events : undefined;
  }, { timeoutMs: 15_000 });
}

/** The single event with this direction and local port. */
function only(events: TcpLifeEvent[], direction: string, localPort: number): TcpLifeEvent {
  const matching = events.filter((e) => e.direction === direction && e.local_port === localPort);
  assert.equal(
    matching.length,
    1,
    `one ${direction} event on local port ${localPort}, got ${JSON.stringify(events, null, 2)}`,
  );
  return matching[0];
}

/** In [lo, hi], with the value in the message. */
function assertBetween(value: number, lo: number, hi: number, what: string): void {
  assert.ok(value >= lo && value <= hi, `${what} = ${value}, expected ${lo}..${hi}`);
}

/** Fields every record of a Python child has. */
function assertFromChild(e: TcpLifeEvent, py: PyResult): void {
  assert.equal(e.type, "tcp_life");
  assert.equal(e.pid, py.pid);
  assert.equal(e.command, py.comm);
  assert.equal(e.command, "python3");
  assert.notEqual(e.start_time, null);
  assert.ok(
    e.duration_ms !== null && e.duration_ms > 0 && e.duration_ms < 60_000,
    `duration_ms ${e.duration_ms} plausible`,
  );
}

/** Starts and ends of the states walked. */
function assertStates(e: TcpLifeEvent, first: string[], last: string): void {
  assert.deepEqual(e.states.slice(0, first.length), first, `states ${e.states} start`);
  assert.equal(e.states[e.states.length - 1], last, `states ${e.states} end`);
  assert.equal(e.state, "CLOSE");
  assert.ok(e.state_changes >= e.states.length, `state_changes ${e.state_changes}`);
}

/** A network namespace with only `lo` up; deleted by `dispose`. */
async function createNetns(): Promise<{ name: string } & AsyncDisposable> {
  const name = `ebpf-tcp-life-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const add = await runCommand("ip", ["netns", "add", name]);
  if (add.code !== 0) throw new Error(`ip netns add ${name} failed: ${add.stderr}`);
  const dispose = async () => {
    const del = await runCommand("ip", ["netns", "del", name]);
    if (del.code !== 0) throw new Error(`ip netns del ${name} failed: ${del.stderr}`);
  };
  try {
    await mustRun("ip", ["-n", name, "link", "set", "lo", "up"]);
  } catch (err) {
    await dispose();
    throw err;
  }
  return { name, [Symbol.asyncDispose]: dispose };
}

async function mustRun(cmd: string, args: string[]): Promise<string> {
  const out = await runCommand(cmd, args, { timeoutMs: 30_000 });
  if (out.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${out.stderr}`);
  return out.stdout;
}

/** Reads lines from a child's stdout. */
class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line, or null at the end of the stream. */
  async line(): Promise<string | null> {
    for (let i = 0; i < 10_000; i++) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return this.#buffer ? this.#take() : null;
      this.#buffer += value;
    }
    throw new Error("no end of line in 10000 reads");
  }

  #take(): string {
    const rest = this.#buffer;
    this.#buffer = "";
    return rest;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }
}

Deno.test({
  name: privileged("tcp_life: TCP connections come back from the API as the kernel counted them"),
  ignore: !canRunPrivileged,
  async fn(t) {
    await using server = await startServer();
    try {
      await t.step("exact bytes both ways, direction, owner, RTT and states", async () => {
        const py = await runPython([{ op: "exchange", send: 100_000, reply: 5_000 }]);
        const r = py.results[0];
        assert.equal(r.server_got, 100_000, "the server read everything (a precondition)");
        assert.equal(r.client_got, 5_000, "the client read everything (a precondition)");
        assert.equal(r.server_tail, 0, "the server saw the client's FIN (a precondition)");
        const events = await eventsOf(server, py.pid, 2);
        assert.equal(events.length, 2, JSON.stringify(events, null, 2));

        const client = only(events, "outbound", r.client_port!);
        assertFromChild(client, py);
        assert.equal(client.address_family, "AF_INET");
        assert.equal(client.local, `127.0.0.1:${r.client_port}`);
        assert.equal(client.remote, `127.0.0.1:${r.port}`);
        assert.equal(client.remote_ip, "127.0.0.1");
        assert.equal(client.remote_port, r.port);
        // bytes_acked counts the SYN and the FIN; bytes_received the peer's FIN
        assertBetween(client.bytes_sent, 100_000, 100_002, "client bytes_sent");
        assertBetween(client.bytes_received, 5_000, 5_001, "client bytes_received");
        assert.equal(client.outcome, "closed");
        assert.equal(client.error, null);
        assert.equal(client.resets_sent, 0);
        assert.equal(client.resets_received, 0);
        assert.ok(client.srtt_us > 0, `client srtt_us ${client.srtt_us}`);
        assert.ok(client.segments_out > 0, `client segments_out ${client.segments_out}`);
        assertStates(client, ["CLOSE", "SYN_SENT", "ESTABLISHED"], "CLOSE");
        assert.ok(client.states.includes("FIN_WAIT1"), `the client closed first: ${client.states}`);
        // Python's connect() with a timeout is non-blocking: EINPROGRESS, then poll()
        assert.equal(client.connect?.result, "EINPROGRESS", JSON.stringify(client.connect));

        const inbound = only(events, "inbound", r.port!);
        assertFromChild(inbound, py);
        assert.equal(inbound.address_family, "AF_INET");
        assert.equal(inbound.local, `127.0.0.1:${r.port}`);
        assert.equal(inbound.remote, `127.0.0.1:${r.client_port}`);
        assertBetween(inbound.bytes_received, 100_000, 100_001, "server bytes_received");
        assertBetween(inbound.bytes_sent, 5_000, 5_001, "server bytes_sent");
        assert.equal(inbound.outcome, "closed");
        assert.equal(inbound.error, null);
        assert.equal(inbound.resets_sent, 0);
        assert.equal(inbound.resets_received, 0);
        assert.ok(inbound.srtt_us > 0, `server srtt_us ${inbound.srtt_us}`);
        assertStates(inbound, ["SYN_RECV", "ESTABLISHED"], "CLOSE");
        assert.ok(inbound.states.includes("LAST_ACK"), `the server closed last: ${inbound.states}`);
        assert.equal(inbound.connect, null, "an accepted connection has no connect()");
      });

      await t.step(
        "connect to a closed port: refused, ECONNREFUSED, joined with connect()",
        async () => {
          const port = freePort();
          const py = await runPython([{ op: "refused", port }]);
          assert.equal(py.results[0].errno, ECONNREFUSED, "python's connect() (a precondition)");
          const [e] = await eventsOf(server, py.pid, 1);
          assertFromChild(e, py);
          assert.equal(e.direction, "outbound");
          assert.equal(e.remote, `127.0.0.1:${port}`);
          assert.equal(e.outcome, "refused");
          assert.equal(e.error, "ECONNREFUSED");
          assertStates(e, ["CLOSE", "SYN_SENT"], "CLOSE");
          assert.ok(!e.states.includes("ESTABLISHED"), `states ${e.states}`);
          assert.ok((e.resets_received ?? 0) >= 1, `resets_received ${e.resets_received}`);
          // the connection program's event may be drained a tick later: poll for the join
          const joined = await waitFor("the join with the connect() event", async () => {
            const events = await eventsOf(server, py.pid, 1);
            return events[0].connect ?? undefined;
          }, { timeoutMs: 5_000 });
          assert.equal(joined.result, "ECONNREFUSED");
          assert.ok(joined.latency_ns > 0, `latency_ns ${joined.latency_ns}`);
        },
      );

      await t.step(
        "SO_LINGER 0 close: reset_sent on the client, reset_by_peer on the server",
        async () => {
          const py = await runPython([
            { op: "exchange", send: 100_000, reply: 5_000, linger0: true },
          ]);
          const r = py.results[0];
          assert.equal(r.server_tail, "reset", "the server's recv() saw the RST (a precondition)");
          const events = await eventsOf(server, py.pid, 2);
          assert.equal(events.length, 2, JSON.stringify(events, null, 2));

          const client = only(events, "outbound", r.client_port!);
          assertFromChild(client, py);
          assert.equal(client.outcome, "reset_sent");
          assert.ok((client.resets_sent ?? 0) >= 1, `client resets_sent ${client.resets_sent}`);
          assert.equal(client.resets_received, 0);
          assertStates(client, ["CLOSE", "SYN_SENT", "ESTABLISHED"], "CLOSE");

          const inbound = only(events, "inbound", r.port!);
          assertFromChild(inbound, py);
          assert.equal(inbound.outcome, "reset_by_peer");
          assert.equal(inbound.error, "ECONNRESET");
          assert.ok(
            (inbound.resets_received ?? 0) >= 1,
            `server resets_received ${inbound.resets_received}`,
          );
          assertBetween(inbound.bytes_received, 100_000, 100_001, "server bytes_received");
          assertBetween(inbound.bytes_sent, 5_000, 5_001, "server bytes_sent");
          assertStates(inbound, ["SYN_RECV", "ESTABLISHED"], "CLOSE");
        },
      );

      await t.step("SO_LINGER 0 close: the client's record keeps what it exchanged", async () => {
        // tcp_disconnect() (the linger-0 close) zeroes bytes_acked, bytes_received, srtt_us,
        // segs_out and total_retrans right after its change to TCP_CLOSE, before the socket
        // is destroyed: counters must be those of the connection, not of the reset socket.
        const py = await runPython([
          { op: "exchange", send: 100_000, reply: 5_000, linger0: true },
        ]);
        const r = py.results[0];
        const client = only(await eventsOf(server, py.pid, 2), "outbound", r.client_port!);
        assert.equal(client.outcome, "reset_sent");
        const counters = {
          bytes_sent: client.bytes_sent,
          bytes_received: client.bytes_received,
          srtt_us: client.srtt_us,
          segments_out: client.segments_out,
        };
        assertBetween(
          client.bytes_sent,
          100_000,
          100_001,
          `client bytes_sent ${JSON.stringify(counters)}`,
        );
        assertBetween(
          client.bytes_received,
          5_000,
          5_000,
          `client bytes_received ${JSON.stringify(counters)}`,
        );
        assert.ok(client.srtt_us > 0, `client srtt_us ${JSON.stringify(counters)}`);
        assert.ok(client.segments_out > 0, `client segments_out ${JSON.stringify(counters)}`);
      });

      await t.step("IPv6 over [::1]: AF_INET6 and [::1]:port addresses", async () => {
        const py = await runPython([{ op: "exchange", send: 1_000, reply: 100, family: 6 }]);
        const r = py.results[0];
        const events = await eventsOf(server, py.pid, 2);
        assert.equal(events.length, 2, JSON.stringify(events, null, 2));
        const client = only(events, "outbound", r.client_port!);
        const inbound = only(events, "inbound", r.port!);
        for (const e of [client, inbound]) {
          assertFromChild(e, py);
          assert.equal(e.address_family, "AF_INET6");
          assert.equal(e.local_ip, "::1");
          assert.equal(e.remote_ip, "::1");
          assert.equal(e.outcome, "closed");
        }
        assert.equal(client.local, `[::1]:${r.client_port}`);
        assert.equal(client.remote, `[::1]:${r.port}`);
        assert.equal(inbound.local, `[::1]:${r.port}`);
        assert.equal(inbound.remote, `[::1]:${r.client_port}`);
        assertBetween(client.bytes_sent, 1_000, 1_002, "client bytes_sent");
        assertBetween(inbound.bytes_received, 1_000, 1_001, "server bytes_received");
      });

      await t.step(
        "open connections: listed live with their counters, gone once closed",
        async () => {
          const [cmd, args] = await pythonArgv([{ op: "hold", send: 12_345 }]);
          const child = new Deno.Command(cmd, {
            args,
            stdin: "piped",
            stdout: "piped",
            stderr: "piped",
            env: { NO_COLOR: "1" },
          }).spawn();
          const stderr = new Response(child.stderr).text();
          const lines = new LineReader(child.stdout);
          const writer = child.stdin.getWriter();
          let exited = false;
          const status = child.status.then((s) => {
            exited = true;
            return s;
          });
          // the child waits on stdin: never let it outlive the step
          const killer = setTimeout(() => {
            if (!exited) child.kill("SIGKILL");
          }, 45_000);
          try {
            const first = await lines.line();
            // (stderr is complete only once the child exits: await it only on failure)
            if (!first) assert.fail(`no ready line from the child; stderr: ${await stderr}`);
            const ready = JSON.parse(first) as {
              pid: number;
              port: number;
              client_port: number;
              server_got: number;
            };
            assert.equal(ready.pid, child.pid);
            assert.equal(ready.server_got, 12_345, "the server read everything (a precondition)");

            type Open = { count: number; connections: TcpLifeEvent[] };
            const mine = (body: Open) => body.connections.filter((e) => e.pid === child.pid);
            // the client's bytes_acked waits for the (maybe delayed) ACK: poll
            const open = await waitFor("both ends in /open with the data counted", async () => {
              const body = await server.json<Open>("/api/programs/tcp_life/open");
              assert.equal(body.count, body.connections.length);
              const found = mine(body);
              const out = found.find((e) => e.direction === "outbound");
              return found.length === 2 && out && out.bytes_sent >= 12_345 ? found : undefined;
            });
            const client = only(open, "outbound", ready.client_port);
            const inbound = only(open, "inbound", ready.port);
            for (const e of [client, inbound]) {
              assert.equal(e.type, "tcp_life");
              assert.equal(e.pid, child.pid);
              assert.equal(e.command, "python3");
              assert.equal(e.outcome, "open");
              assert.equal(e.state, "ESTABLISHED");
              assert.equal(e.error, null);
              assert.equal(e.address_family, "AF_INET");
              assert.notEqual(e.start_time, null);
              assert.ok(
                e.duration_ms !== null && e.duration_ms > 0 && e.duration_ms < 60_000,
                `duration_ms ${e.duration_ms}`,
              );
            }
            assert.equal(client.remote, `127.0.0.1:${ready.port}`);
            assert.equal(inbound.remote, `127.0.0.1:${ready.client_port}`);
            assert.ok(
              inbound.bytes_received >= 12_345,
              `server bytes_received ${inbound.bytes_received}`,
            );
            assertBetween(client.bytes_sent, 12_345, 12_346, "client bytes_sent (with its SYN)");
            assert.deepEqual(client.states, ["CLOSE", "SYN_SENT", "ESTABLISHED"]);
            assert.deepEqual(inbound.states, ["SYN_RECV", "ESTABLISHED"]);
            const before = await server.json<{ count: number }>(
              `/api/programs/tcp_life/events?pid=${child.pid}`,
            );
            assert.equal(before.count, 0, "nothing closed yet");

            await writer.write(new TextEncoder().encode("close\n"));
            await writer.close();
            const last = await lines.line();
            const code = (await status).code;
            if (code !== 0) assert.fail(`child exit code ${code}; stderr: ${await stderr}`);
            assert.ok(last && JSON.parse(last).pid === child.pid, `the child's result: ${last}`);

            await waitFor("both ends gone from /open", async () => {
              const body = await server.json<Open>("/api/programs/tcp_life/open");
              return mine(body).length === 0 ? true : undefined;
            });
            const closed = await eventsOf(server, child.pid, 2);
            assert.equal(closed.length, 2);
            const closedClient = only(closed, "outbound", ready.client_port);
            const closedServer = only(closed, "inbound", ready.port);
            for (const e of [closedClient, closedServer]) assert.equal(e.outcome, "closed");
            assert.equal(closedClient.start_time, client.start_time, "the same life as in /open");
            assert.equal(closedServer.start_time, inbound.start_time, "the same life as in /open");
            assertBetween(closedServer.bytes_received, 12_345, 12_346, "server bytes_received");
            assertBetween(closedClient.bytes_sent, 12_345, 12_347, "client bytes_sent");
          } finally {
            clearTimeout(killer);
            if (!exited) {
              try {
                child.kill("SIGKILL");
              } catch {
                // it exited meanwhile
              }
            }
            await writer.close().catch(() => {});
            await status;
            await lines.cancel();
            await stderr.catch(() => {});
          }
        },
      );

      await t.step(
        "retransmits: packets dropped inside a network namespace are counted",
        async () => {
          await using ns = await createNetns();
          const port = 5555; // the namespace is new: nothing else listens there
          await mustRun("ip", ["netns", "exec", ns.name, "nft", "add table inet tcp_life_test"]);
          await mustRun("ip", [
            "netns",
            "exec",
            ns.name,
            "nft",
            "add chain inet tcp_life_test input { type filter hook input priority 0 ; policy accept ; }",
          ]);
          // Drop on input, after loopback "sent" the segment: the sender must retransmit. A drop
          // on output fails the sender's own transmit, which TCP retries without counting it.
          await mustRun("ip", [
            "netns",
            "exec",
            ns.name,
            "nft",
            `add rule inet tcp_life_test input tcp dport ${port} numgen random mod 4 == 0 drop`,
          ]);
          const send = 2_000_000;
          const py = await runPython([{ op: "bulk", port, send }], ns.name);
          const r = py.results[0];
          assert.equal(r.server_got, send, "everything arrived in the end (a precondition)");
          const events = await eventsOf(server, py.pid, 2);
          const client = only(events, "outbound", r.client_port!);
          assertFromChild(client, py);
          assert.equal(client.remote, `127.0.0.1:${port}`);
          assert.equal(client.outcome, "closed");
          assertBetween(client.bytes_sent, send, send + 2, "client bytes_sent");
          assert.ok(client.retransmits > 0, `client retransmits ${client.retransmits}`);
          assert.ok(
            client.segments_out > client.retransmits,
            `segments_out ${client.segments_out} > retransmits ${client.retransmits}`,
          );

          const summary = await server.json<Summary>(
            `/api/programs/tcp_life/summary?pid=${py.pid}`,
          );
          assert.equal(summary.connections, 2);
          assert.ok(
            summary.retransmits >= client.retransmits,
            `summary retransmits ${summary.retransmits}`,
          );
          assert.ok(
            summary.retransmit_rate !== null && summary.retransmit_rate > 0 &&
              summary.retransmit_rate < 1,
            `retransmit_rate ${summary.retransmit_rate}`,
          );
          const remote = summary.by_remote.find((g) => g.remote === `127.0.0.1:${port}`);
          assert.ok(
            remote && remote.retransmits === client.retransmits,
            JSON.stringify(summary.by_remote),
          );
        },
      );

      await t.step("summary counts a child's connections by outcome exactly", async () => {
        const closedPort = freePort();
        const py = await runPython([
          { op: "exchange", send: 100_000, reply: 5_000 },
          { op: "refused", port: closedPort },
          { op: "exchange", send: 100_000, reply: 5_000, linger0: true },
        ]);
        assert.equal(py.results[1].errno, ECONNREFUSED, "python's connect() (a precondition)");
        assert.equal((await eventsOf(server, py.pid, 5)).length, 5);
        const summary = await server.json<Summary>(`/api/programs/tcp_life/summary?pid=${py.pid}`);
        assert.equal(summary.program, "tcp_life");
        assert.equal(summary.pid, py.pid);
        assert.equal(summary.connections, 5);
        assert.deepEqual(summary.by_outcome, {
          closed: 2,
          refused: 1,
          reset_sent: 1,
          reset_by_peer: 1,
        });
        assert.equal(summary.by_process.length, 1);
        assert.equal(summary.by_process[0].pid, py.pid);
        assert.equal(summary.by_process[0].command, "python3");
        assert.equal(summary.by_process[0].connections, 5);
        const refused = summary.by_remote.find((g) => g.remote === `127.0.0.1:${closedPort}`);
        assert.deepEqual(refused?.by_outcome, { refused: 1 });
        // the server read 2 x 100000 bytes, whatever happens to the client's counters
        assert.ok(summary.bytes_received >= 200_000, `bytes_received ${summary.bytes_received}`);
      });

      await t.step("the server's own connections are never recorded", async () => {
        // A connection of this process to the server, kept open over one request: the server
        // has accepted it once the response arrives.
        using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        const localPort = (conn.localAddr as Deno.NetAddr).port;
        await conn.write(
          new TextEncoder().encode("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        );
        const buf = new Uint8Array(64);
        const n = await conn.read(buf);
        assert.ok(n && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 200"));

        const open = await server.json<{ connections: TcpLifeEvent[] }>(
          "/api/programs/tcp_life/open",
        );
        const mine = open.connections.filter((e) => e.local_port === localPort);
        assert.equal(mine.length, 1, `this process's end: ${JSON.stringify(mine)}`);
        assert.equal(mine[0].pid, Deno.pid);
        assert.equal(mine[0].direction, "outbound");
        assert.equal(mine[0].remote, `127.0.0.1:${server.port}`);
        assert.deepEqual(
          open.connections.filter((e) => e.remote_port === localPort),
          [],
          "the server's end of this connection (accepted while tcp_life runs) is not listed",
        );
        assert.deepEqual(
          open.connections.filter((e) => e.pid === server.pid),
          [],
          "nothing owned by the server",
        );
        const events = await server.json<{ count: number }>(
          `/api/programs/tcp_life/events?pid=${server.pid}`,
        );
        assert.equal(events.count, 0);
      });

      await t.step(
        "the server's connections accepted before tcp_life started are not listed",
        async () => {
          // startServer() polls /health while the programs load, over one keep-alive connection
          // that the server accepted before tcp_life was attached: no `lives` entry marks it as
          // the server's own, so the snapshot shows the server's end as pid 0, direction
          // "unknown" (and its close will be recorded the same way).
          await server.json("/health");
          const open = await server.json<{ connections: TcpLifeEvent[] }>(
            "/api/programs/tcp_life/open",
          );
          assert.deepEqual(
            open.connections.filter((e) => e.local_port === server.port),
            [],
            "connections whose local end is the server's HTTP port",
          );
        },
      );
    } finally {
      const code = await server.stop();
      assert.equal(code, 0, `server exit code; stderr:\n${server.stderr()}`);
    }
  },
});

type Capabilities = z.infer<typeof CapabilitiesSchema>;

Deno.test({
  name: privileged(
    "tcp_life without its tcp_send_reset hook: still running, resets_sent null, the rest counted",
  ),
  ignore: !canRunPrivileged,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // As on a kernel without the tracepoint: the manager leaves the hook out before load.
    await using server = await startServer({
      env: { EBPF_SERVER_LEAVE_OUT_HOOKS: "tcp_life_send_reset" },
    });
    const caps = await server.json<Capabilities>("/api/capabilities");
    const life = caps.programs.find((p) => p.name === "tcp_life")!;
    assert.equal(life.state, "running");
    const hook = life.hooks.find((h) => h.program === "tcp_life_send_reset");
    assert.deepEqual(hook, {
      program: "tcp_life_send_reset",
      attach: "tracepoint/tcp/tcp_send_reset",
      optional: true,
      attached: false,
      reason: "left out (EBPF_SERVER_LEAVE_OUT_HOOKS)",
      fields_unknown: ["resets_sent"],
    });
    const others = life.hooks.filter((h) => h !== hook && !h.attach.startsWith("iter/"));
    assert.ok(others.length >= 4, JSON.stringify(life.hooks));
    for (const h of others) assert.equal(h.attached, true, JSON.stringify(h));
    assert.deepEqual(life.unknown_fields, ["resets_sent"]);
    const health = await server.json<{ kernel: { hooks_left_out: string[] } }>("/health");
    assert.deepEqual(health.kernel.hooks_left_out, ["tcp_life/tcp_life_send_reset"]);

    const py = await runPython([{ op: "exchange", send: 100_000, reply: 5_000, linger0: true }]);
    const r = py.results[0];
    assert.equal(r.server_tail, "reset", "the server's recv() saw the RST (a precondition)");
    const events = await eventsOf(server, py.pid, 2);
    const client = only(events, "outbound", r.client_port!);
    assertFromChild(client, py);
    assert.equal(client.resets_sent, null, "unknown without the hook, not 0");
    assert.equal(client.resets_received, 0);
    assertBetween(client.bytes_sent, 100_000, 100_002, "client bytes_sent");
    const inbound = only(events, "inbound", r.port!);
    assert.equal(inbound.resets_sent, null);
    assert.ok((inbound.resets_received ?? 0) >= 1, `resets_received ${inbound.resets_received}`);
    assert.equal(inbound.outcome, "reset_by_peer");
  },
});
