/**
 * The server as a process: HTTP input checks and docs, stopping and starting a program at run
 * time, shutdown on SIGTERM, a busy port, running without root, and the command line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CAPABILITIES } from "../src/preflight.ts";
import { HELP, parseConfig } from "../src/config.ts";
import {
  canRunPrivileged,
  connectionProgramsOf,
  CONTROL,
  loadedPrograms,
  mainCommand,
  PERF_EVENT_PARANOID,
  privileged,
  programIdsOf,
  pythonConnects,
  runCommand,
  runMain,
  type ServerHandle,
  startServer,
  waitFor,
} from "./_server.ts";

interface ProgramStatus {
  name: string;
  state: string;
  events: number;
  ring_size_bytes: number;
}

interface ErrorBody {
  error: string;
  issues?: { field: string; message: string }[];
}

/** Non-empty lines of a text. */
function lines(text: string): string[] {
  return text.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** The connection program's status. */
async function connectionStatus(server: ServerHandle): Promise<ProgramStatus> {
  const { programs } = await server.json<{ programs: ProgramStatus[] }>("/api/programs");
  const status = programs.find((p) => p.name === "connection");
  assert.ok(status, "the connection program is listed");
  return status;
}

/** Waits until none of `ids` is loaded in the kernel any more. */
async function waitUnloaded(ids: number[], what: string): Promise<void> {
  await waitFor(`${what}: programs ${ids.join(", ")} unloaded`, async () => {
    const still = (await loadedPrograms()).filter((p) => ids.includes(p.id));
    return still.length === 0 ? true : undefined;
  });
}

/** Kernel names cut to the 15 characters BPF keeps (bpftool may show the full name from BTF). */
function kernelNames(progs: { name: string }[]): string[] {
  return progs.map((p) => p.name.slice(0, 15)).sort();
}

/** A TCP listener on 127.0.0.1 and its port; close it when done. */
function listenTcp(): { listener: Deno.Listener; port: number } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return { listener, port: (listener.addr as Deno.NetAddr).port };
}

Deno.test({
  name: privileged("http: bad input answers 400 naming the field; docs and OpenAPI are served"),
  ignore: !canRunPrivileged,
  async fn() {
    await using server = await startServer();

    const bad: [path: string, field: string, init?: RequestInit][] = [
      ["/api/list-connections?pid=abc", "pid"],
      ["/api/programs/connection/events?limit=0", "limit"],
      ["/api/events?no_such_param=1", "no_such_param"],
      ["/api/connection-summary?duration=0", "duration"],
      ["/api/connection-summary", "pid", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pid: "abc" }),
      }],
    ];
    for (const [path, field, init] of bad) {
      const res = await fetch(server.url + path, init);
      const body = await res.json() as ErrorBody;
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      assert.ok(
        body.error.includes(`'${field}'`),
        `${path}: error names '${field}': ${body.error}`,
      );
      assert.equal(body.issues?.[0]?.field, field, `${path}: first issue's field`);
    }

    const docs = await fetch(`${server.url}/docs`);
    const page = await docs.text();
    assert.equal(docs.status, 200);
    assert.match(docs.headers.get("content-type") ?? "", /^text\/html/);
    assert.ok(page.includes("swagger-ui-bundle.js"), "the page loads the bundle");

    const bundle = await fetch(`${server.url}/docs/swagger-ui-bundle.js`);
    const js = await bundle.text();
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get("content-type") ?? "", /javascript/);
    assert.ok(js.length > 1000, `the bundle has content (${js.length} characters)`);

    const doc = await server.json<{ openapi: string; paths: Record<string, unknown> }>(
      "/openapi.json",
    );
    assert.match(doc.openapi, /^3\./);
    for (const path of ["/api/events", "/api/programs/connection/summary"]) {
      assert.ok(path in doc.paths, `/openapi.json documents ${path}`);
    }
  },
});

/** `max_entries` of the BPF ring buffers (map_type 27) a process holds open, from its fdinfo. */
function ringSizesOf(pid: number): number[] {
  const sizes: number[] = [];
  for (const fd of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd.name}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!/^map_type:\s+27$/m.test(info)) continue;
    sizes.push(Number(/^max_entries:\s+(\d+)$/m.exec(info)?.[1]));
  }
  return sizes.sort((a, b) => a - b);
}

Deno.test({
  name: privileged("programs: each ring buffer has its program's size, or --ring-size's"),
  ignore: !canRunPrivileged,
  async fn() {
    const MiB = 1024 * 1024;
    const expected: Record<string, number> = {
      cgroup: MiB,
      dns: 4 * MiB,
      connection: 16 * MiB,
      tcp_life: 16 * MiB,
      packet_drop: 16 * MiB,
    };
    {
      await using server = await startServer();
      const { programs } = await server.json<{ programs: ProgramStatus[] }>("/api/programs");
      const running = programs.filter((p) => p.state === "running");
      assert.deepEqual(
        Object.fromEntries(running.map((p) => [p.name, p.ring_size_bytes])),
        expected,
        "every program runs, with its ring size",
      );
      // what the kernel made: one ring buffer per program, of that size
      assert.deepEqual(ringSizesOf(server.pid), Object.values(expected).sort((a, b) => a - b));
    }
    {
      await using server = await startServer({ args: ["--ring-size", "65536"] });
      const { programs } = await server.json<{ programs: ProgramStatus[] }>("/api/programs");
      assert.deepEqual(programs.map((p) => p.ring_size_bytes), programs.map(() => 65536));
      assert.deepEqual(ringSizesOf(server.pid), programs.map(() => 65536));
    }
  },
});

Deno.test({
  name: privileged("programs: stop detaches and unloads, start attaches again, counters go on"),
  ignore: !canRunPrivileged,
  async fn() {
    await using server = await startServer();
    const a = listenTcp(), b = listenTcp(), c = listenTcp();
    try {
      const before = await connectionProgramsOf(server.pid);
      assert.deepEqual(
        kernelNames(before),
        ["connection_ente", "connection_exit"],
        "the server holds both programs",
      );

      // Recorded while running.
      const first = await pythonConnects([{ op: "tcp", host: "127.0.0.1", port: a.port }]);
      await waitFor("the first connect", async () => {
        const l = await server.json<{ count: number }>(`/api/list-connections?pid=${first.pid}`);
        return l.count === 1 ? true : undefined;
      });
      const running = await connectionStatus(server);
      assert.ok(running.events >= 1);

      const stopped = await server.json<ProgramStatus>("/api/programs/connection/stop", CONTROL);
      assert.equal(stopped.state, "stopped");
      assert.ok(stopped.events >= running.events, "events never go back");
      await waitUnloaded(before.map((p) => p.id), "after stop");
      assert.deepEqual(await connectionProgramsOf(server.pid), [], "the server holds none");
      const health = await server.json<{ status: string }>("/health");
      assert.equal(health.status, "degraded");

      // Not recorded while stopped.
      const meanwhile = await pythonConnects([{ op: "tcp", host: "127.0.0.1", port: b.port }]);

      const started = await server.json<ProgramStatus>("/api/programs/connection/start", CONTROL);
      assert.equal(started.state, "running");
      assert.ok(started.events >= stopped.events, "events never go back");
      const after = await connectionProgramsOf(server.pid);
      assert.deepEqual(kernelNames(after), ["connection_ente", "connection_exit"]);
      const beforeIds = new Set(before.map((p) => p.id));
      assert.ok(after.every((p) => !beforeIds.has(p.id)), "freshly loaded programs");
      assert.equal((await server.json<{ status: string }>("/health")).status, "healthy");

      // Recorded again; the ring is drained in order, so a connect made while stopped would
      // show up before this one.
      const later = await pythonConnects([{ op: "tcp", host: "127.0.0.1", port: c.port }]);
      await waitFor("the connect after start", async () => {
        const l = await server.json<{ count: number }>(`/api/list-connections?pid=${later.pid}`);
        return l.count === 1 ? true : undefined;
      });
      const none = await server.json<{ count: number }>(
        `/api/list-connections?pid=${meanwhile.pid}`,
      );
      assert.equal(none.count, 0, "the connect made while stopped is not recorded");
      const all = await server.json<{ connections: { destination_port: number | null }[] }>(
        "/api/list-connections?limit=10000",
      );
      assert.ok(
        all.connections.every((e) => e.destination_port !== b.port),
        "no event to the port connected while stopped",
      );

      const end = await connectionStatus(server);
      assert.equal(end.state, "running");
      assert.ok(end.events > started.events, `events went on: ${started.events} -> ${end.events}`);
    } finally {
      a.listener.close();
      b.listener.close();
      c.listener.close();
    }
  },
});

Deno.test({
  name: privileged("shutdown: SIGTERM exits with 0 and leaves no program loaded"),
  ignore: !canRunPrivileged,
  async fn() {
    const server = await startServer();
    let code: number;
    let ids: number[];
    try {
      const progs = await connectionProgramsOf(server.pid);
      assert.equal(progs.length, 2, "the server holds both connection programs");
      // Every program the server holds, whatever monitoring program it belongs to.
      ids = [...programIdsOf(server.pid)];
      assert.ok(progs.every((p) => ids.includes(p.id)));
    } finally {
      code = await server.stop();
    }
    assert.equal(code, 0, `exit code; stderr:\n${server.stderr()}`);
    await waitUnloaded(ids, "after SIGTERM");
  },
});

Deno.test({
  name: privileged("a second server on a busy port says so and exits; the first keeps running"),
  ignore: !canRunPrivileged,
  async fn() {
    await using first = await startServer();
    const second = await runMain(["--addr", `127.0.0.1:${first.port}`], { timeoutMs: 30_000 });
    assert.notEqual(second.code, 0);
    const errLines = lines(second.stderr);
    assert.equal(errLines.length, 1, `one line on stderr, got:\n${second.stderr}`);
    assert.ok(errLines[0].includes("already in use"), errLines[0]);

    assert.equal(first.exited(), false, "the first server still runs");
    const health = await first.json<{ status: string }>("/health");
    assert.equal(health.status, "healthy");
    assert.equal((await connectionProgramsOf(first.pid)).length, 2);
  },
});

Deno.test({
  name: privileged("without root: exits non-zero with one sentence about root"),
  ignore: !canRunPrivileged,
  async fn() {
    // A uid with no capabilities, from a copy of the tree it can read (the checkout may be in
    // a 0700 home); its Deno cache is its own and --cached-only keeps it off the network.
    const launch = await mainCommand(["--addr", "127.0.0.1:0"], {
      asUser: true,
      capabilities: [],
    });
    const out = await runCommand(launch.command, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      timeoutMs: 60_000,
    });
    assert.notEqual(out.code, 0, `exit code; stderr:\n${out.stderr}`);
    const errLines = lines(out.stderr);
    assert.equal(errLines.length, 1, `one line on stderr, got:\n${out.stderr}`);
    assert.match(errLines[0], /\broot\b/);
    assert.match(
      errLines[0],
      /it lacks CAP_BPF \(.*\), CAP_PERFMON \(.*\), CAP_DAC_READ_SEARCH \(.*\) and CAP_NET_ADMIN/,
    );
  },
});

Deno.test({
  name: privileged("with one needed capability taken away: exits 1 naming it"),
  ignore: !canRunPrivileged,
  async fn() {
    for (const missing of ["CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"]) {
      const launch = await mainCommand(["--addr", "127.0.0.1:0"], {
        asUser: true,
        capabilities: CAPABILITIES.map((c) => c.name).filter((c) => c !== missing),
      });
      const out = await runCommand(launch.command, launch.args, {
        cwd: launch.cwd,
        env: launch.env,
        timeoutMs: 60_000,
      });
      assert.equal(out.code, 1, `without ${missing}; stderr:\n${out.stderr}`);
      const errLines = lines(out.stderr);
      assert.equal(errLines.length, 1, `one line on stderr, got:\n${out.stderr}`);
      assert.match(errLines[0], new RegExp(`^ebpf-server: it lacks ${missing} \\(to `));
    }
  },
});

Deno.test({
  name: privileged("without CAP_SYSLOG: runs, warns once, and drops have no location_symbol"),
  ignore: !canRunPrivileged,
  async fn() {
    const capabilities = ["CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"];
    if ((PERF_EVENT_PARANOID ?? 0) > 2) {
      // Debian's kernels (the matrix's): no tracepoint without CAP_SYS_ADMIN, and it says so
      const launch = await mainCommand(["--addr", "127.0.0.1:0"], { asUser: true, capabilities });
      const out = await runCommand(launch.command, launch.args, {
        cwd: launch.cwd,
        env: launch.env,
        timeoutMs: 60_000,
      });
      assert.equal(out.code, 1, out.stderr);
      const errLines = lines(out.stderr).filter((l) => !l.includes("WARN"));
      assert.equal(errLines.length, 1, out.stderr);
      assert.match(
        errLines[0],
        new RegExp(
          `^ebpf-server: kernel\\.perf_event_paranoid is ${PERF_EVENT_PARANOID} .*sysctl -w`,
        ),
      );
      return;
    }
    await using server = await startServer({ user: { capabilities } });
    const warnings = lines(server.stderr()).filter((l) => l.includes("CAP_SYSLOG"));
    assert.equal(warnings.length, 1, server.stderr());
    assert.match(warnings[0], /WARN .*location_symbol of packet drops is null/);
    // a UDP datagram to a closed loopback port: one NO_SOCKET drop
    const sent = await runCommand("python3", [
      "-c",
      'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))',
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    const drop = await waitFor("a drop event", async () => {
      const list = await server.json<{ events: Record<string, unknown>[] }>(
        "/api/programs/packet_drop/events?limit=1",
      );
      return list.events[0];
    });
    assert.equal(drop.location_symbol, null);
    assert.equal("location" in drop, false);
  },
});

Deno.test("cli: --help lists every flag", async () => {
  const out = await runMain(["--help"]);
  assert.equal(out.code, 0, out.stderr);
  const expected = [
    "--addr",
    "--store-capacity",
    "--ring-size",
    "--drain-interval",
    "--programs",
    "--log-level",
    "--no-docs",
    "--expose-kernel-addresses",
    "--web.config.file",
    "--web.max-connections",
    "--web.max-streams",
    "-h, --help",
    "-V, --version",
  ];
  for (const flag of expected) assert.ok(out.stdout.includes(flag), `--help mentions ${flag}`);
  assert.equal(out.stdout.trim(), HELP.trim(), "prints HELP");

  // Every flag the help text names is one the parser accepts.
  const documented = [...HELP.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z.-]*)(?: ([A-Z]+))?/gm)];
  assert.ok(documented.length >= expected.length, "flags found in the help text");
  for (const [, flag, metavar] of documented) {
    const args = metavar ? [flag, "1"] : [flag];
    try {
      parseConfig(args, {});
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /unknown option/i, `${flag} is accepted`);
    }
  }
});

Deno.test("cli: an unknown flag exits with 2 and names it", async () => {
  const out = await runMain(["--no-such-flag"]);
  assert.equal(out.code, 2, out.stderr);
  assert.equal(out.stdout, "");
  assert.ok(out.stderr.includes("--no-such-flag"), out.stderr);
});
