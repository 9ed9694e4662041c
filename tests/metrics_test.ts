/**
 * `GET /metrics` end to end: the text passes `promtool check metrics`, a real Prometheus scrapes
 * the server and stores what the server's own API reports, and counters never go down across a
 * program's stop and start.
 *
 * Prometheus and promtool come from Debian's `prometheus` package. When `CI` is set a missing
 * binary fails the test; locally the test is ignored and its name says why.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  canRunPrivileged,
  CONTROL,
  dropReasonKey,
  freePort,
  GiveUp,
  inCI,
  privileged,
  pythonConnects,
  runCommand,
  type ServerHandle,
  spawnCollecting,
  startServer,
  waitFor,
  which,
} from "./_server.ts";

const ECONNREFUSED = 111;

// ---------------------------------------------------------------------------------------------
// External binaries

const PROMETHEUS = which("prometheus");
const PROMTOOL = which("promtool");

/**
 * Name and ignore flag of a test that needs `binaries`: never ignored in CI (a missing binary
 * fails there), ignored locally when one is missing.
 */
function needs(
  binaries: Record<string, string | undefined>,
  name: string,
  options: { privileged?: boolean } = {},
): { name: string; ignore: boolean } {
  const missing = Object.entries(binaries).filter(([, path]) => !path).map(([b]) => b);
  const base = options.privileged ? privileged(name) : name;
  if (options.privileged && !canRunPrivileged) return { name: base, ignore: true };
  if (missing.length && !inCI) {
    return { name: `[ignored: ${missing.join(", ")} not installed] ${name}`, ignore: true };
  }
  return { name: base, ignore: false };
}

/** Throws (in CI) when a binary the test needs is missing. */
function required(binary: string, path: string | undefined): string {
  if (!path) {
    throw new Error(`${binary} is not on PATH; install Debian's 'prometheus' package`);
  }
  return path;
}

// ---------------------------------------------------------------------------------------------
// The exposition text

/** One sample of a scrape. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape: samples by series id (`name{k="v",...}` with sorted labels) and types. */
interface Scrape {
  samples: Map<string, Sample>;
  types: Map<string, string>;
}

function seriesId(name: string, labels: Record<string, string>): string {
  const inner = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `${name}{${inner.join(",")}}`;
}

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const n = Number(text);
  if (Number.isNaN(n)) throw new SyntaxError(`bad sample value '${text}'`);
  return n;
}

/** Parses the text format (what this server writes: no timestamps, no exemplars). */
function parseExposition(text: string): Scrape {
  const samples = new Map<string, Sample>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m) types.set(m[1], m[2]);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new SyntaxError(`cannot parse sample line: ${line}`);
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const inner = m[2] ?? "";
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while ((lm = labelRe.exec(inner)) !== null) {
      labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
      consumed = labelRe.lastIndex;
    }
    if (consumed !== inner.length) throw new SyntaxError(`cannot parse labels: ${line}`);
    const sample = { name: m[1], labels, value: parseValue(m[3]) };
    samples.set(seriesId(sample.name, labels), sample);
  }
  return { samples, types };
}

async function scrapeServer(server: ServerHandle): Promise<Scrape> {
  const res = await fetch(`${server.url}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics: ${text}`);
  return parseExposition(text);
}

/** Sum of a family's samples whose labels include `match`. */
function sumOf(scrape: Scrape, name: string, match: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of scrape.samples.values()) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// The server's API

interface ProgramStatus {
  name: string;
  state: string;
  events: number;
}

async function programEvents(server: ServerHandle): Promise<Map<string, number>> {
  const { programs } = await server.json<{ programs: ProgramStatus[] }>("/api/programs");
  return new Map(programs.map((p) => [p.name, p.events]));
}

/** Waits until the server stored `n` connection events of `pid`. */
async function waitForEventsOf(server: ServerHandle, pid: number, n: number): Promise<void> {
  await waitFor(`${n} connection events of pid ${pid}`, async () => {
    const body = await server.json<{ count: number }>(
      `/api/programs/connection/events?pid=${pid}&limit=1000`,
    );
    return body.count >= n ? true : undefined;
  });
}

// ---------------------------------------------------------------------------------------------
// Python children with a command name of their own

const PY_NAMED = `
import json, os, socket, sys
comm, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open("/proc/self/comm", "w") as f:
    f.write(comm)
errnos = []
for _ in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    errnos.append(s.connect_ex((host, port)))
    s.close()
with open("/proc/self/comm") as f:
    print(json.dumps({"pid": os.getpid(), "comm": f.read().strip(), "errnos": errnos}))
`;

let pythonPath: string | undefined;

/** The real Python executable (not a pyenv shim script), as tests/_server.ts uses it. */
async function python(): Promise<string> {
  if (pythonPath) return pythonPath;
  const out = await runCommand("python3", ["-c", "import sys; print(sys.executable)"]);
  if (out.code !== 0) throw new Error(`python3 does not run: ${out.stderr}`);
  return pythonPath = out.stdout.trim();
}

/** A Python child renamed to `comm` (at most 15 characters) makes `count` TCP connects. */
async function namedConnects(
  comm: string,
  port: number,
  count: number,
): Promise<{ pid: number; comm: string; errnos: number[] }> {
  const out = await runCommand(await python(), [
    "-S",
    "-c",
    PY_NAMED,
    comm,
    "127.0.0.1",
    String(port),
    String(count),
  ]);
  if (out.code !== 0) throw new Error(`python child failed (${out.code}): ${out.stderr}`);
  const result = JSON.parse(out.stdout) as { pid: number; comm: string; errnos: number[] };
  assert.equal(result.comm, comm, "the child renamed itself (a precondition)");
  return result;
}

/** A command name no other process on the host has: `mt` + phase + random hex, 15 characters. */
function uniqueComm(phase: string): string {
  const hex = crypto.getRandomValues(new Uint8Array(8));
  return `mt${phase}${[...hex].map((b) => b.toString(16).padStart(2, "0")).join("")}`.slice(0, 15);
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus

interface PromVector {
  metric: Record<string, string>;
  value: [number, string];
}

interface Prometheus extends AsyncDisposable {
  url: string;
  /** An instant query's vector. */
  query(promql: string): Promise<PromVector[]>;
  /** The single value of an instant query, or undefined when the vector is empty. */
  scalar(promql: string): Promise<number | undefined>;
  stderr(): string;
}

async function startPrometheus(binary: string, target: string, dir: string): Promise<Prometheus> {
  const config = `${dir}/prometheus.yml`;
  await Deno.writeTextFile(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  scrape_timeout: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: ebpf-server-test",
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  let lastError = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = spawnCollecting(binary, {
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${dir}/data-${attempt}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
    });
    const stop = async () => {
      await proc.stop("SIGTERM", 10_000);
    };
    const query = async (promql: string): Promise<PromVector[]> => {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = await res.json();
      if (res.status !== 200 || body.status !== "success") {
        throw new Error(`prometheus query ${promql}: ${res.status} ${JSON.stringify(body)}`);
      }
      assert.equal(body.data.resultType, "vector");
      return body.data.result as PromVector[];
    };
    const prom: Prometheus = {
      url,
      query,
      async scalar(promql) {
        const v = await query(promql);
        if (v.length > 1) throw new Error(`${promql}: ${v.length} series, expected one`);
        return v.length ? Number(v[0].value[1]) : undefined;
      },
      stderr: proc.stderr,
      [Symbol.asyncDispose]: stop,
    };
    try {
      await waitFor("prometheus to be ready", async () => {
        if (proc.exit()) throw new GiveUp(`prometheus exited:\n${proc.stderr()}`);
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      return prom;
    } catch (err) {
      await stop();
      lastError = `${(err as Error).message}\n${proc.stderr()}`;
      if (lastError.includes("address already in use")) continue;
      throw new Error(lastError);
    }
  }
  throw new Error(`prometheus did not start after 3 attempts: ${lastError}`);
}

// ---------------------------------------------------------------------------------------------

Deno.test({
  ...needs({ promtool: PROMTOOL }, "metrics: /metrics passes `promtool check metrics`", {
    privileged: true,
  }),
  async fn() {
    const promtool = required("promtool", PROMTOOL);
    await using server = await startServer();
    // Have samples in the families that only appear with traffic (connects, refused SYNs).
    const closed = freePort();
    await pythonConnects([
      { op: "tcp", host: "127.0.0.1", port: closed },
      { op: "udp", host: "127.0.0.1", port: 53 },
    ]);
    const text = await waitFor("connect_calls samples in /metrics", async () => {
      const res = await fetch(`${server.url}/metrics`);
      const body = await res.text();
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return body.includes("ebpf_server_connect_calls_total{") ? body : undefined;
    });
    const out = await runCommand(promtool, ["check", "metrics"], { stdin: text });
    // promtool prints lint problems (naming, missing HELP, counters without _total, ...) and
    // exits 1; every one of them is a real problem of a metric people graph and alert on.
    const report = `promtool exit ${out.code}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}\n` +
      `--- metrics ---\n${text}`;
    assert.equal(out.code, 0, report);
    assert.equal((out.stdout + out.stderr).trim(), "", report);
    // Every family our parser finds has a TYPE, and counters end in _total.
    const scrape = parseExposition(text);
    for (const s of scrape.samples.values()) {
      // a histogram's samples are its family's name with _bucket, _sum or _count
      const base = s.name.replace(/_(bucket|sum|count)$/, "");
      const type = scrape.types.get(s.name) ??
        (scrape.types.get(base) === "histogram" ? "histogram" : undefined);
      assert.ok(type, `${s.name} has a TYPE line`);
      if (type === "counter") assert.match(s.name, /_total$/, `counter ${s.name} ends in _total`);
    }
  },
});

Deno.test({
  ...needs(
    { prometheus: PROMETHEUS },
    "metrics: a real Prometheus stores the counters the server's API reports",
    { privileged: true },
  ),
  async fn() {
    const binary = required("prometheus", PROMETHEUS);
    const N = 20;
    await using server = await startServer();
    const tmp = await Deno.makeTempDir({ prefix: "ebpf-server-prometheus-" });
    try {
      await using prom = await startPrometheus(binary, `127.0.0.1:${server.port}`, tmp);
      const job = `job="ebpf-server-test"`;
      await waitFor("prometheus to scrape the server", async () => {
        return (await prom.scalar(`up{${job}}`)) === 1 ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });

      // Baselines as Prometheus stored them before the connects (no series yet counts as 0).
      const refusedQuery = `sum(ebpf_server_connect_calls_total{${job},result="ECONNREFUSED"})`;
      const noSocketQuery = `ebpf_server_packet_drops_total{${job},reason="${
        dropReasonKey("NO_SOCKET")
      }"}`;
      const refusedBefore = (await prom.scalar(refusedQuery)) ?? 0;
      const noSocketBefore = (await prom.scalar(noSocketQuery)) ?? 0;

      const closed = freePort();
      const py = await pythonConnects(
        Array.from({ length: N }, () => ({ op: "tcp" as const, host: "127.0.0.1", port: closed })),
      );
      assert.deepEqual(py.errnos, Array(N).fill(ECONNREFUSED), "python's own connect() results");
      await waitForEventsOf(server, py.pid, N);
      const target = (await programEvents(server)).get("connection")!;

      // A scrape after the connects: Prometheus holds at least what the server counted then.
      await waitFor(`prometheus to store connection events >= ${target}`, async () => {
        const v = await prom.scalar(
          `ebpf_server_program_events_total{${job},program="connection"}`,
        );
        return v !== undefined && v >= target ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });

      const refusedAfter = (await prom.scalar(refusedQuery)) ?? 0;
      assert.ok(
        refusedAfter - refusedBefore >= N,
        `ECONNREFUSED connect calls in Prometheus grew by ${refusedAfter - refusedBefore} >= ${N}`,
      );
      const noSocketAfter = await prom.scalar(noSocketQuery);
      assert.ok(noSocketAfter !== undefined, "Prometheus has a NO_SOCKET drops series");
      assert.ok(
        noSocketAfter - noSocketBefore >= N,
        `NO_SOCKET drops (the refused SYNs) grew by ${noSocketAfter - noSocketBefore} >= ${N}`,
      );

      const storedEvents = async () =>
        new Map(
          (await prom.query(`ebpf_server_program_events_total{${job}}`)).map((v) => [
            v.metric.program,
            Number(v.value[1]),
          ]),
        );
      // While the programs run, what Prometheus stored never exceeds what the server reports
      // afterwards.
      {
        const stored = await storedEvents();
        const api = await programEvents(server);
        for (const [name, value] of stored) {
          assert.ok(value <= api.get(name)!, `${name}: stored ${value} <= ${api.get(name)} later`);
        }
      }

      // Equality needs a moment when the counters stand still. On a host where other processes
      // connect and drop packets all the time (CI runners, shared machines) that moment is made:
      // every program is stopped, which freezes its counters, and Prometheus scrapes again.
      const names = [...(await programEvents(server)).keys()];
      for (const name of names) {
        const s = await server.json<ProgramStatus>(`/api/programs/${name}/stop`, CONTROL);
        assert.equal(s.state, "stopped", `${name} stopped`);
      }
      const stoppedAt = Date.now() / 1000;
      const frozen = await programEvents(server);
      await waitFor("a scrape that began after the programs stopped", async () => {
        const t = await prom.scalar(`timestamp(up{${job}})`);
        return t !== undefined && t > stoppedAt ? true : undefined;
      }, { timeoutMs: 30_000, intervalMs: 200 });
      let last = "";
      await waitFor(
        `Prometheus and the server to agree on events of ${names.join(", ")}`,
        async () => {
          const stored = await storedEvents();
          last = names.map((n) => `${n}: api ${frozen.get(n)}, prometheus ${stored.get(n)}`)
            .join("\n");
          return names.every((n) => stored.get(n) === frozen.get(n)) ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\nlast values:\n${last}`);
      });
      const stored = await storedEvents();
      const metrics = await scrapeServer(server);
      assert.deepEqual(await programEvents(server), frozen, "the counters stood still");
      for (const name of names) {
        assert.equal(stored.get(name), frozen.get(name), `${name}: Prometheus = /api/programs`);
        assert.equal(
          sumOf(metrics, "ebpf_server_program_events_total", { program: name }),
          frozen.get(name),
          `${name}: /metrics = /api/programs`,
        );
      }
      assert.ok(frozen.get("connection")! >= target, "the compared count includes our connects");

      // Every counter of the server, series by series: Prometheus holds what /metrics says.
      const promCounters = new Map<string, number>();
      for (const v of await prom.query(`{${job},__name__=~"ebpf_server_.+_total"}`)) {
        const { __name__: name, job: _job, instance: _instance, ...labels } = v.metric;
        promCounters.set(seriesId(name, labels), Number(v.value[1]));
      }
      const serverCounters = new Map(
        [...metrics.samples].filter(([, s]) =>
          s.name.startsWith("ebpf_server_") && metrics.types.get(s.name) === "counter"
        ).map(([id, s]) => [id, s.value]),
      );
      assert.ok(serverCounters.size > 10, `counter series in /metrics: ${serverCounters.size}`);
      assert.deepEqual(promCounters, serverCounters, "every counter series, Prometheus = /metrics");
    } finally {
      await Deno.remove(tmp, { recursive: true });
      const code = await server.stop();
      assert.equal(code, 0, `server exit code; stderr:\n${server.stderr()}`);
    }
  },
});

Deno.test({
  name: privileged("metrics: counters never go down across a program's stop and start"),
  ignore: !canRunPrivileged,
  async fn() {
    // Every command gets its own label here (the cap is unit-tested in src/metrics/), so the
    // connects of this test's children are told apart from whatever else runs on the host.
    await using server = await startServer({ args: ["--metrics-top-commands", "1000"] });
    try {
      const closed = freePort();
      const beforeComm = uniqueComm("b");
      const stoppedComm = uniqueComm("s");
      const runningComm = uniqueComm("r");
      const STOPPED_N = 7;
      const RUNNING_N = 11;
      const calls = "ebpf_server_connect_calls_total";

      // Counts before the stop that are larger than what comes after, so a counter that
      // restarted from zero would show.
      const BEFORE_N = 40;
      const early = await namedConnects(beforeComm, closed, BEFORE_N);
      await waitForEventsOf(server, early.pid, BEFORE_N);
      const first = await scrapeServer(server);
      assert.equal(sumOf(first, calls, { command: beforeComm }), BEFORE_N);
      const totalBefore = sumOf(first, calls, { result: "ECONNREFUSED" });

      const stopped = await server.json<ProgramStatus>("/api/programs/connection/stop", CONTROL);
      assert.equal(stopped.state, "stopped");
      const whileStopped = await namedConnects(stoppedComm, closed, STOPPED_N);
      assert.deepEqual(whileStopped.errnos, Array(STOPPED_N).fill(ECONNREFUSED));

      const started = await server.json<ProgramStatus>("/api/programs/connection/start", CONTROL);
      assert.equal(started.state, "running");
      const whileRunning = await namedConnects(runningComm, closed, RUNNING_N);
      assert.deepEqual(whileRunning.errnos, Array(RUNNING_N).fill(ECONNREFUSED));
      await waitForEventsOf(server, whileRunning.pid, RUNNING_N);

      const second = await scrapeServer(server);
      const decreased: string[] = [];
      let counters = 0;
      for (const [id, s] of first.samples) {
        if (first.types.get(s.name) !== "counter") continue;
        counters++;
        const next = second.samples.get(id);
        if (next === undefined) decreased.push(`${id}: ${s.value} -> (gone)`);
        else if (!(next.value >= s.value)) decreased.push(`${id}: ${s.value} -> ${next.value}`);
      }
      assert.ok(counters > 10, `the first read had counter samples (${counters})`);
      assert.deepEqual(decreased, [], "no counter sample went down or disappeared");

      // Summed over every series of the command (protocol and result).
      assert.equal(sumOf(second, calls, { command: stoppedComm }), 0, "nothing while stopped");
      assert.equal(
        sumOf(second, calls, { command: runningComm, result: "ECONNREFUSED" }),
        RUNNING_N,
        "exactly the connects made while running",
      );
      assert.equal(sumOf(second, calls, { command: runningComm }), RUNNING_N);
      const totalAfter = sumOf(second, calls, { result: "ECONNREFUSED" });
      assert.ok(
        totalAfter - totalBefore >= RUNNING_N,
        `ECONNREFUSED over every command grew by ${totalAfter - totalBefore} >= ${RUNNING_N}`,
      );
      // The program's own counters went on from where they were.
      const eventsOf = (s: Scrape) =>
        sumOf(s, "ebpf_server_program_events_total", { program: "connection" });
      assert.ok(eventsOf(second) - eventsOf(first) >= RUNNING_N);
      assert.equal(sumOf(second, "ebpf_server_program_up", { program: "connection" }), 1);
    } finally {
      const code = await server.stop();
      assert.equal(code, 0, `server exit code; stderr:\n${server.stderr()}`);
    }
  },
});
