/**
 * The monitors the harness compares, each started and stopped by pid: none, the C reference
 * consumer (of connection.bpf.o, or of every object the server loads by default), bpftrace
 * printing one line per connect, and ebpf-server (`--programs connection`, or its default: all).
 *
 * @module
 */

import { cpuSample, freePort, LineChild, sleep, stopChild } from "./_proc.ts";

export const ROOT = new URL("../", import.meta.url).pathname;
export const BENCH_BUILD = `${ROOT}bench/build/`;

export type MonitorName = "none" | "c-ref" | "bpftrace" | "ebpf-server";

/** Events a monitor saw for one pid, and what the kernel says it could not hand over. */
export interface Capture {
  /**
   * The workload's events: connect modes, its pid's connection events; udp-drop, packet_drop
   * events of its datagrams (UDP, its source port), whichever task's context the drop was in.
   */
  captured: number;
  /** ebpf-server: of those, still in the store when counted (others may have been evicted). */
  stored?: number;
  /** udp-drop: the packet_drop events whose pid (the owner's if known, else the context's) is its. */
  byPid?: number;
  lost: number | null;
}

/** What a monitor needs to know of a load generator run to find its events. */
export interface WorkloadRun {
  pid: number;
  mode: string;
  elapsed_s: number;
  /** udp-drop: the source port of its datagrams. */
  sport?: number;
}

/** Events taken in so far: all programs together, and per program when the monitor tells. */
export interface Counts {
  total: number;
  programs: Record<string, number> | null;
}

export interface Monitor {
  readonly name: MonitorName;
  /** The monitor's process (null for none). */
  pid: number | null;
  start(): Promise<void>;
  /** Called right after a workload run (after the monitor settled). */
  afterRun(run: WorkloadRun): Promise<void>;
  /** Events of every process it has taken in so far (NaN when it cannot tell). */
  eventsTotal(): Promise<number>;
  /** The same, and per program (null when it cannot tell). */
  counts(): Promise<Counts>;
  stop(): Promise<void>;
  /** After stop: what it captured for each workload run. */
  capture(run: WorkloadRun): Capture;
}

/** Every child process the harness started and has not stopped yet (for cleanup on Ctrl-C). */
export const children = new Set<Deno.ChildProcess>();

/** Spawns a command through `sh -c 'exec ...'` so the pid is the command's own, output to files. */
export function spawnToFiles(
  argv: string[],
  stdoutPath: string,
  stderrPath: string,
  env?: Record<string, string>,
): Deno.ChildProcess {
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = new Deno.Command("sh", {
    args: ["-c", `exec ${quoted} >'${stdoutPath}' 2>'${stderrPath}'`],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  children.add(child);
  return child;
}

export class NoMonitor implements Monitor {
  readonly name = "none";
  pid = null;
  async start() {}
  async afterRun() {}
  eventsTotal() {
    return Promise.resolve(NaN);
  }
  counts(): Promise<Counts> {
    return Promise.resolve({ total: NaN, programs: null });
  }
  async stop() {}
  capture(): Capture {
    return { captured: NaN, lost: null };
  }
}

interface RefFinal {
  lost: number;
  programs: Record<string, { events: number; lost: number }>;
  /** connection events by pid */
  by_pid: Record<string, number>;
  /** packet_drop events by pid (the owner's if known, else the context's) */
  drops_by_pid: Record<string, number>;
  /** packet_drop events of UDP packets by source port */
  drops_by_udp_sport: Record<string, number>;
}

/**
 * bench/build/ref_consumer: counts events per object, connection events per pid, packet_drop
 * events per pid and per UDP source port; the final counts come on SIGTERM. Its arguments pick
 * the objects: `--object build/bpf/connection.bpf.o` by default, `--all` for the server's
 * default set.
 */
export class RefMonitor implements Monitor {
  readonly name = "c-ref";
  pid: number | null = null;
  #child: LineChild | null = null;
  #final: RefFinal | null = null;
  #args: string[];

  constructor(args: string[] = ["--object", `${ROOT}build/bpf/connection.bpf.o`]) {
    this.#args = args;
  }

  async start() {
    this.#final = null;
    this.#child = new LineChild(`${BENCH_BUILD}ref_consumer`, this.#args, { cwd: ROOT });
    children.add(this.#child.child);
    this.pid = this.#child.pid;
    await this.#child.next((l) => l.includes('"ready"'), 15_000);
  }

  async afterRun() {}

  /** A snapshot (SIGUSR1) of how many events it has counted. */
  async eventsTotal(): Promise<number> {
    return (await this.counts()).total;
  }

  async counts(): Promise<Counts> {
    const child = this.#child!;
    child.child.kill("SIGUSR1");
    const line = await child.next((l) => l.includes('"snapshot"'), 5000);
    const snap = JSON.parse(line) as {
      events: number;
      programs: Record<string, { events: number }>;
    };
    const programs: Record<string, number> = {};
    for (const [name, p] of Object.entries(snap.programs)) programs[name] = p.events;
    return { total: snap.events, programs };
  }

  async stop() {
    const child = this.#child!;
    child.child.kill("SIGTERM");
    const line = await child.next((l) => l.includes('"final"'), 15_000);
    this.#final = JSON.parse(line);
    await stopChild(child.child, "SIGTERM");
    children.delete(child.child);
    this.#child = null;
  }

  capture(run: WorkloadRun): Capture {
    const f = this.#final!;
    if (run.mode === "udp-drop") {
      return {
        captured: f.drops_by_udp_sport[String(run.sport)] ?? 0,
        byPid: f.drops_by_pid[String(run.pid)] ?? 0,
        lost: f.lost,
      };
    }
    return { captured: f.by_pid[String(run.pid)] ?? 0, lost: f.lost };
  }
}

/**
 * bpftrace printing `pid ret` for every sys_exit_connect to a file (stdout is a file, so lines are
 * counted after it exits and has flushed).
 */
export class BpftraceMonitor implements Monitor {
  readonly name = "bpftrace";
  pid: number | null = null;
  #child: Deno.ChildProcess | null = null;
  #out = `${BENCH_BUILD}bpftrace.out`;
  #counts = new Map<number, number>();
  #lost = 0;

  async start() {
    this.#counts.clear();
    this.#lost = 0;
    Deno.writeTextFileSync(this.#out, "");
    this.#child = spawnToFiles(
      [
        "bpftrace",
        "-e",
        'tracepoint:syscalls:sys_exit_connect { printf("%d %d\\n", pid, args->ret); }',
      ],
      this.#out,
      `${BENCH_BUILD}bpftrace.err`,
    );
    this.pid = this.#child.pid;
    const deadline = performance.now() + 30_000;
    while (!Deno.readTextFileSync(this.#out).includes("Attaching")) {
      if (performance.now() > deadline) throw new Error("bpftrace did not attach in 30 s");
      await sleep(50);
    }
  }

  async afterRun() {}

  /** Its output is block-buffered: lines are only counted after it exits. */
  eventsTotal() {
    return Promise.resolve(NaN);
  }

  counts(): Promise<Counts> {
    return Promise.resolve({ total: NaN, programs: null });
  }

  async stop() {
    await stopChild(this.#child!, "SIGINT", 20_000);
    children.delete(this.#child!);
    this.#child = null;
    const text = Deno.readTextFileSync(this.#out);
    for (const line of text.split("\n")) {
      const space = line.indexOf(" ");
      if (space <= 0) continue;
      const pid = Number(line.slice(0, space));
      if (Number.isInteger(pid)) this.#counts.set(pid, (this.#counts.get(pid) ?? 0) + 1);
      else {
        const lost = /Lost (\d+) events/.exec(line);
        if (lost) this.#lost += Number(lost[1]);
      }
    }
    const err = Deno.readTextFileSync(`${BENCH_BUILD}bpftrace.err`);
    for (const m of err.matchAll(/Lost (\d+) events/g)) this.#lost += Number(m[1]);
    Deno.removeSync(this.#out);
  }

  capture(run: WorkloadRun): Capture {
    return { captured: this.#counts.get(run.pid) ?? 0, lost: this.#lost };
  }
}

/** Minimal JSON GET over loopback. */
export async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

interface ProgramStatus {
  name: string;
  state: string;
  events: number;
  lost: number;
  stored: number;
  evicted: number;
}

/**
 * ebpf-server from the checkout: `deno run --allow-all src/main.ts --addr 127.0.0.1:PORT ...`;
 * with no `--programs`, every program runs (the server's default).
 */
export class ServerMonitor implements Monitor {
  readonly name = "ebpf-server";
  pid: number | null = null;
  port = 0;
  #child: Deno.ChildProcess | null = null;
  #flags: string[];
  #captures = new Map<number, Capture>();
  #lostBefore = 0;
  /** ms from spawn to /health answering with every wanted program running. */
  startupMs = NaN;
  log = "";

  constructor(flags: string[] = ["--programs", "connection"]) {
    this.#flags = flags;
  }

  /**
   * connect() calls of command `comm` from the server's /metrics counters (kept at ingest, never
   * evicted: other processes' connects can push the load generator's events out of the store
   * before they are counted there), or null when the server has no such counters.
   */
  async metricsCount(comm: string): Promise<number | null> {
    const res = await fetch(`${this.base}/metrics`);
    const text = await res.text();
    if (!res.ok || !text.includes("ebpf_server_connect_calls_total")) return null;
    let n = 0;
    for (const line of text.split("\n")) {
      if (
        line.startsWith("ebpf_server_connect_calls_total{") && line.includes(`command="${comm}"`)
      ) {
        n += Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return n;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port = freePort();
    this.log = `${BENCH_BUILD}server-${this.port}.log`;
    const t0 = performance.now();
    this.#child = spawnToFiles(
      [
        "deno",
        "run",
        "--allow-all",
        "src/main.ts",
        "--addr",
        `127.0.0.1:${this.port}`,
        ...this.#flags,
      ],
      this.log,
      this.log + ".err",
      { DENO_NO_UPDATE_CHECK: "1" },
    );
    this.pid = this.#child.pid;
    const wanted = this.#wanted();
    const deadline = t0 + 30_000;
    let exited = false;
    this.#child.status.then(() => exited = true);
    for (;;) {
      if (exited) {
        throw new Error(`ebpf-server exited during start-up; see ${this.log}.err`);
      }
      try {
        const res = await fetch(`${this.base}/health`);
        const body = await res.json();
        if (res.ok) {
          const programs = body.programs as ProgramStatus[];
          const running = programs.filter((p) => p.state === "running").map((p) => p.name);
          if (
            wanted === null ? body.status === "healthy" : wanted.every((w) => running.includes(w))
          ) {
            break;
          }
        }
      } catch {
        // not listening yet
      }
      if (performance.now() > deadline) throw new Error("ebpf-server not healthy in 30 s");
      await sleep(2);
    }
    this.startupMs = performance.now() - t0;
    this.#lostBefore = await this.#lostAll();
  }

  #wanted(): string[] | null {
    const i = this.#flags.indexOf("--programs");
    return i < 0 ? null : this.#flags[i + 1].split(",");
  }

  async status(name = "connection"): Promise<ProgramStatus> {
    return (await this.statuses()).find((p) => p.name === name)!;
  }

  async statuses(): Promise<ProgramStatus[]> {
    const body = await getJson(`${this.base}/api/programs`);
    return body.programs as ProgramStatus[];
  }

  /** The kernel lost counters of every program, summed (programs not running count 0). */
  async #lostAll(): Promise<number> {
    return (await this.statuses()).reduce((s, p) => s + p.lost, 0);
  }

  async afterRun(run: WorkloadRun) {
    const { pid } = run;
    const duration = Math.ceil(run.elapsed_s) + 60;
    let capture: Capture;
    if (run.mode === "udp-drop") {
      // one top query gives both counts: the drops of its datagrams (port filter: its source
      // port) and, grouped by pid, those whose pid is its. packet_drop keeps no per-pid
      // counter at ingest, so these are the events still stored (the run's are the newest).
      const top = await getJson(
        `${this.base}/api/programs/packet_drop/top?by=pid&port=${run.sport}&protocol=UDP&duration=${duration}&limit=1000`,
      );
      const groups = top.groups as { pid: number; count: number }[];
      const total = top.total as number;
      capture = {
        captured: total,
        stored: total,
        byPid: groups.find((g) => g.pid === pid)?.count ?? 0,
        lost: null,
      };
    } else {
      const summary = await getJson(
        `${this.base}/api/programs/connection/summary?pid=${pid}&duration=${duration}`,
      );
      const stored = summary.total_attempts as number;
      const counted = await this.metricsCount(`lg-${pid}`);
      capture = {
        captured: counted === null ? stored : Math.max(counted, stored),
        stored,
        lost: null,
      };
    }
    const lost = await this.#lostAll();
    this.#captures.set(pid, { ...capture, lost: lost - this.#lostBefore });
    this.#lostBefore = lost;
  }

  async eventsTotal(): Promise<number> {
    return (await this.counts()).total;
  }

  /** Events decoded into the store, all programs together and per running program. */
  async counts(): Promise<Counts> {
    const programs: Record<string, number> = {};
    let total = 0;
    for (const p of await this.statuses()) {
      total += p.events;
      if (p.state === "running") programs[p.name] = p.events;
    }
    return { total, programs };
  }

  async stop() {
    const status = await stopChild(this.#child!, "SIGTERM", 10_000);
    children.delete(this.#child!);
    this.#child = null;
    if (!status.success && status.signal !== "SIGTERM") {
      console.error(`ebpf-server exited with ${status.code}; see ${this.log}.err`);
    }
  }

  capture(run: WorkloadRun): Capture {
    return this.#captures.get(run.pid) ?? { captured: 0, lost: null };
  }
}

/** Waits until a process has been (nearly) idle for 50 ms; returns the CPU sample then. */
export async function settle(pid: number, maxMs = 3000) {
  let prev = cpuSample(pid);
  const deadline = performance.now() + maxMs;
  for (;;) {
    await sleep(50);
    const now = cpuSample(pid);
    if (now.schedNs - prev.schedNs < 2.5e6 || performance.now() > deadline) return now;
    prev = now;
  }
}
