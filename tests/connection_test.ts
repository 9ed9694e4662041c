/**
 * The connection program end to end: real connect() calls on loopback and unix sockets, made by
 * this process or by Python children whose pid is known, come back from the HTTP API with what
 * the kernel reported. One server for the whole file.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canRunPrivileged,
  connectionProgramsOf,
  freePort,
  privileged,
  type PyAction,
  type PyResult,
  pythonConnects,
  rodataOf,
  type ServerHandle,
  startServer,
  waitFor,
} from "./_server.ts";

/** The fields of a connection event the tests read. */
interface ConnectionEvent {
  type: string;
  wall_time: string;
  timestamp_ms: number;
  pid: number;
  command: string;
  tid: number;
  uid: number;
  address_family: string;
  protocol: string | null;
  socket_type: string | null;
  destination_ip: string | null;
  destination_port: number | null;
  destination: string;
  unix_path: string | null;
  result: string;
  ret: number;
  latency_ns: number;
}

interface EventList {
  count: number;
  limit: number;
  truncated: boolean;
}

/**
 * A connection event of the compatibility listing: the family as its number, strings and numbers
 * where the native event has null ("" and 0), and more.
 */
type CompatEvent =
  & Omit<
    ConnectionEvent,
    "address_family" | "destination_ip" | "destination_port" | "protocol" | "socket_type"
  >
  & {
    address_family: number;
    destination_ip: string;
    destination_port: number;
    protocol: string;
    socket_type: string;
    address_family_name: string;
    return_code: number;
    time: string;
  };

const FAMILY_NUMBERS: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10 };

/**
 * The native event of a compatibility one, after checking what the compatibility listing adds:
 * the original project's numeric family, `return_code` and `time`.
 */
function nativeOf(e: CompatEvent): ConnectionEvent {
  const { address_family, address_family_name, return_code, time, ...rest } = e;
  assert.equal(address_family, FAMILY_NUMBERS[address_family_name], address_family_name);
  assert.equal(return_code, e.ret);
  assert.equal(time, e.wall_time);
  const ip = address_family_name === "AF_INET" || address_family_name === "AF_INET6";
  if (!ip) assert.deepEqual([e.destination_ip, e.destination_port], ["", 0]);
  return {
    ...rest,
    address_family: address_family_name,
    destination_ip: ip ? e.destination_ip : null,
    destination_port: ip ? e.destination_port : null,
    protocol: e.protocol || null,
    socket_type: e.socket_type || null,
  };
}

const ECONNREFUSED = 111;
const EINPROGRESS = 115;
const ENOENT = 2;

/**
 * Waits until `pid` has at least `expected` events, read from the compatibility listing or the
 * per-program one, and returns them (newest first).
 */
async function eventsOf(
  server: ServerHandle,
  pid: number,
  expected: number,
  endpoint: "list-connections" | "programs" = "list-connections",
): Promise<ConnectionEvent[]> {
  return await waitFor(`${expected} connection event(s) of pid ${pid}`, async () => {
    let events: ConnectionEvent[];
    if (endpoint === "list-connections") {
      const body = await server.json<
        EventList & { connections: CompatEvent[]; events_by_pid: Record<string, CompatEvent[]> }
      >(`/api/list-connections?pid=${pid}&limit=1000`);
      // the original's shape: the same events under their pid
      assert.deepEqual(body.events_by_pid, body.count ? { [pid]: body.connections } : {});
      events = body.connections.map(nativeOf);
    } else {
      const body = await server.json<EventList & { events: ConnectionEvent[] }>(
        `/api/programs/connection/events?pid=${pid}&limit=1000`,
      );
      events = body.events;
    }
    return events.length >= expected ? events : undefined;
  });
}

/** Runs a Python child, checks its connect() calls failed or succeeded as the test expects. */
async function connectFromPython(actions: PyAction[], errnos: number[]): Promise<PyResult> {
  const py = await pythonConnects(actions);
  assert.deepEqual(py.errnos, errnos, "python's own connect() results (a precondition)");
  return py;
}

/** The single event of a child with the given destination. */
function only(events: ConnectionEvent[], destination: string): ConnectionEvent {
  const matching = events.filter((e) => e.destination === destination);
  assert.equal(
    matching.length,
    1,
    `one event to ${destination}, got ${JSON.stringify(events, null, 2)}`,
  );
  return matching[0];
}

/** Fields every event of a Python child has. */
function assertFromChild(event: ConnectionEvent, py: PyResult): void {
  assert.equal(event.type, "connection");
  assert.equal(event.pid, py.pid);
  assert.equal(event.tid, py.pid, "a single-threaded child connects from its main thread");
  assert.equal(event.command, py.comm);
  assert.equal(event.command, "python3");
}

/** A TCP listener on `hostname` and its port; close it when done. */
function listenTcp(hostname: string): { listener: Deno.Listener; port: number } {
  const listener = Deno.listen({ hostname, port: 0 });
  return { listener, port: (listener.addr as Deno.NetAddr).port };
}

Deno.test({
  name: privileged("connection: connect() calls come back from the API as the kernel saw them"),
  ignore: !canRunPrivileged,
  async fn(t) {
    await using server = await startServer();
    const tmp = await Deno.makeTempDir({ prefix: "ebpf-server-test-" });
    try {
      await t.step("TCP connect to a closed port: ECONNREFUSED", async () => {
        const port = freePort();
        const py = await connectFromPython(
          [{ op: "tcp", host: "127.0.0.1", port }],
          [ECONNREFUSED],
        );
        const e = only(await eventsOf(server, py.pid, 1), `127.0.0.1:${port}`);
        assertFromChild(e, py);
        assert.equal(e.address_family, "AF_INET");
        assert.equal(e.destination_ip, "127.0.0.1");
        assert.equal(e.destination_port, port);
        assert.equal(e.protocol, "TCP");
        assert.equal(e.socket_type, "STREAM");
        assert.equal(e.unix_path, null);
        assert.equal(e.result, "ECONNREFUSED");
        assert.equal(e.ret, -ECONNREFUSED);
      });

      await t.step("UDP connect to port 443: the socket's real protocol, UDP", async () => {
        const py = await connectFromPython([{ op: "udp", host: "127.0.0.1", port: 443 }], [0]);
        const e = only(await eventsOf(server, py.pid, 1, "programs"), "127.0.0.1:443");
        assertFromChild(e, py);
        assert.equal(e.address_family, "AF_INET");
        assert.equal(e.destination_ip, "127.0.0.1");
        assert.equal(e.destination_port, 443);
        assert.equal(e.protocol, "UDP");
        assert.equal(e.socket_type, "DGRAM");
        assert.equal(e.result, "ok");
        assert.equal(e.ret, 0);
      });

      await t.step("IPv6 TCP connect to [::1]: AF_INET6", async () => {
        const { listener, port } = listenTcp("::1");
        try {
          const py = await connectFromPython(
            [{ op: "tcp", host: "::1", port, family: 6 }],
            [0],
          );
          const e = only(await eventsOf(server, py.pid, 1), `[::1]:${port}`);
          assertFromChild(e, py);
          assert.equal(e.address_family, "AF_INET6");
          assert.equal(e.destination_ip, "::1");
          assert.equal(e.destination_port, port);
          assert.equal(e.destination, `[::1]:${port}`);
          assert.equal(e.protocol, "TCP");
          assert.equal(e.socket_type, "STREAM");
          assert.equal(e.result, "ok");
        } finally {
          listener.close();
        }
      });

      await t.step("unix socket connect: the path, and ENOENT for a missing one", async () => {
        const path = `${tmp}/listening.sock`;
        const missing = `${tmp}/missing.sock`;
        const listener = Deno.listen({ transport: "unix", path });
        try {
          const py = await connectFromPython(
            [{ op: "unix", path }, { op: "unix", path: missing }],
            [0, ENOENT],
          );
          const events = await eventsOf(server, py.pid, 2);
          assert.equal(events.length, 2);
          for (
            const [dest, result, ret] of [[path, "ok", 0], [missing, "ENOENT", -ENOENT]] as const
          ) {
            const e = only(events, dest);
            assertFromChild(e, py);
            assert.equal(e.address_family, "AF_UNIX");
            assert.equal(e.unix_path, dest);
            assert.equal(e.destination, dest);
            assert.equal(e.destination_ip, null);
            assert.equal(e.destination_port, null);
            assert.equal(e.protocol, "UNIX");
            assert.equal(e.socket_type, "STREAM");
            assert.equal(e.result, result);
            assert.equal(e.ret, ret);
          }
        } finally {
          listener.close();
        }
      });

      await t.step("successful TCP connect: ok, latency, uid and wall time", async () => {
        const { listener, port } = listenTcp("127.0.0.1");
        try {
          const py = await connectFromPython([{ op: "tcp", host: "127.0.0.1", port }], [0]);
          const e = only(await eventsOf(server, py.pid, 1), `127.0.0.1:${port}`);
          assertFromChild(e, py);
          assert.equal(e.protocol, "TCP");
          assert.equal(e.socket_type, "STREAM");
          assert.equal(e.result, "ok");
          assert.equal(e.ret, 0);
          assert.ok(e.latency_ns > 0, `latency_ns ${e.latency_ns} > 0`);
          assert.equal(e.uid, 0);
          const when = Date.parse(e.wall_time);
          assert.ok(
            Math.abs(Date.now() - when) < 60_000,
            `wall_time ${e.wall_time} within a minute of now (${new Date().toISOString()})`,
          );
          assert.ok(Math.abs(e.timestamp_ms - when) < 1, "timestamp_ms is wall_time");
        } finally {
          listener.close();
        }
      });

      await t.step("non-blocking TCP connect: EINPROGRESS", async () => {
        const { listener, port } = listenTcp("127.0.0.1");
        try {
          const py = await connectFromPython(
            [{ op: "tcp", host: "127.0.0.1", port, blocking: false }],
            [EINPROGRESS],
          );
          const e = only(await eventsOf(server, py.pid, 1), `127.0.0.1:${port}`);
          assertFromChild(e, py);
          assert.equal(e.protocol, "TCP");
          assert.equal(e.result, "EINPROGRESS");
          assert.equal(e.ret, -EINPROGRESS);
        } finally {
          listener.close();
        }
      });

      await t.step(
        "connects of this Deno process: its pid and the calling thread's comm",
        async () => {
          const { listener, port } = listenTcp("127.0.0.1");
          const path = `${tmp}/deno.sock`;
          const unixListener = Deno.listen({ transport: "unix", path });
          try {
            // Deno connects TCP sockets non-blocking (EINPROGRESS); unix sockets complete at once.
            (await Deno.connect({ hostname: "127.0.0.1", port })).close();
            (await Deno.connect({ transport: "unix", path })).close();
            const mine = await waitFor("this process's two connects", async () => {
              const body = await server.json<{ connections: CompatEvent[] }>(
                `/api/list-connections?pid=${Deno.pid}&limit=1000`,
              );
              const found = body.connections.map(nativeOf).filter((e) =>
                e.destination === `127.0.0.1:${port}` || e.destination === path
              );
              return found.length >= 2 ? found : undefined;
            });
            const tcp = only(mine, `127.0.0.1:${port}`);
            const unix = only(mine, path);
            for (const e of [tcp, unix]) {
              assert.equal(e.pid, Deno.pid);
              const comm = Deno.readTextFileSync(`/proc/${Deno.pid}/task/${e.tid}/comm`).trim();
              assert.equal(e.command, comm, `the comm of thread ${e.tid}`);
            }
            assert.equal(tcp.protocol, "TCP");
            assert.equal(tcp.result, "EINPROGRESS");
            assert.equal(unix.address_family, "AF_UNIX");
            assert.equal(unix.result, "ok");
          } finally {
            listener.close();
            unixListener.close();
          }
        },
      );

      await t.step("summary counts exactly a child's attempts, by result", async () => {
        const { listener, port } = listenTcp("127.0.0.1");
        const closed = freePort();
        const missing = `${tmp}/summary-missing.sock`;
        try {
          const py = await connectFromPython([
            { op: "tcp", host: "127.0.0.1", port: closed },
            { op: "tcp", host: "127.0.0.1", port: closed },
            { op: "tcp", host: "127.0.0.1", port },
            { op: "udp", host: "127.0.0.1", port: 443 },
            { op: "tcp", host: "127.0.0.1", port, blocking: false },
            { op: "unix", path: missing },
          ], [ECONNREFUSED, ECONNREFUSED, 0, 0, EINPROGRESS, ENOENT]);
          assert.equal((await eventsOf(server, py.pid, 6, "programs")).length, 6);

          type Summary = Record<string, unknown> & {
            top_destinations: { destination: string; count: number; failed: number }[];
          };
          const viaGet = await server.json<Summary>(`/api/connection-summary?pid=${py.pid}`);
          const viaProgram = await server.json<Summary>(
            `/api/programs/connection/summary?pid=${py.pid}`,
          );
          const viaPost = await server.json<Summary>("/api/connection-summary", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ pid: py.pid }),
          });
          for (const summary of [viaGet, viaProgram, viaPost]) {
            assert.equal(summary.program, "connection");
            assert.equal(summary.pid, py.pid);
            assert.equal(summary.total_attempts, 6);
            assert.equal(summary.successful, 2);
            assert.equal(summary.in_progress, 1);
            assert.equal(summary.failed, 3);
            assert.deepEqual(summary.by_result, {
              ECONNREFUSED: 2,
              ok: 2,
              EINPROGRESS: 1,
              ENOENT: 1,
            });
            assert.deepEqual(summary.by_protocol, { TCP: 4, UDP: 1, UNIX: 1 });
            assert.deepEqual(summary.by_command, { [py.comm]: 6 });
            const byDest = new Map(summary.top_destinations.map((d) => [d.destination, d]));
            assert.deepEqual(byDest.get(`127.0.0.1:${closed}`), {
              destination: `127.0.0.1:${closed}`,
              count: 2,
              failed: 2,
            });
            assert.deepEqual(byDest.get(`127.0.0.1:${port}`), {
              destination: `127.0.0.1:${port}`,
              count: 2,
              failed: 0,
            });
            assert.deepEqual(byDest.get(missing), { destination: missing, count: 1, failed: 1 });
          }
        } finally {
          listener.close();
        }
      });

      await t.step("the server's own pid never appears", async () => {
        // The kernel side filters it: the loaded programs were given the server's pid.
        const progs = await connectionProgramsOf(server.pid);
        assert.equal(progs.length, 2, "the server holds both connection programs");
        for (const prog of progs) {
          const settings = await rodataOf(prog.id);
          assert.equal(settings.self_tgid, server.pid, `self_tgid of ${prog.name}`);
        }

        // Make the server busy answering requests first; its own work must not be recorded.
        for (let i = 0; i < 5; i++) await server.json("/health");
        const list = await server.json<EventList>(`/api/list-connections?pid=${server.pid}`);
        assert.equal(list.count, 0);
        const all = await server.json<EventList>(`/api/events?pid=${server.pid}`);
        assert.equal(all.count, 0);
        const summary = await server.json<{ total_attempts: number }>(
          `/api/connection-summary?pid=${server.pid}`,
        );
        assert.equal(summary.total_attempts, 0);
      });
    } finally {
      await Deno.remove(tmp, { recursive: true });
      const code = await server.stop();
      assert.equal(code, 0, `server exit code; stderr:\n${server.stderr()}`);
    }
  },
});
