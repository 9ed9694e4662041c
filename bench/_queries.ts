/**
 * The "queries" part of bench/run.ts (issue 14): with every program on and the store full of a
 * mix of programs' events, each program's 60 s summary and 10,000-event list, and /health while
 * four clients run the heaviest of them; memory per stored event of each program that a load
 * generator can fill a store with on its own; and where an idle server's RSS goes.
 *
 * @module
 */

import { ServerMonitor } from "./_monitors.ts";
import { memory, percentile, sleep } from "./_proc.ts";

/** Latency of one query, as bench/run.ts's `latency` gives it. */
export interface Latency {
  url: string;
  n: number;
  p50: number;
  p99: number;
  max: number;
  seen: unknown[];
}

export interface QueriesDeps {
  loadgen(mode: string, rate: number, limit: string): Promise<{ connects: number; rate: number }>;
  latency(url: string, check: (body: Record<string, unknown>) => unknown): Promise<Latency>;
  say(text: string): void;
  quick: boolean;
}

/** Each program that one load generator mode fills a store with, and only it. */
const FILLS = [
  { program: "connection", mode: "udp", why: "one connection event per UDP connect()" },
  {
    program: "packet_drop",
    mode: "udp-drop",
    why: "one drop per datagram sent to a port nobody has bound",
  },
  { program: "tcp_life", mode: "tcp-refused", why: "one tcp_life event per refused connect()" },
] as const;

const STORE = 1_000_000;
const PROGRAMS_WITH_ROUTES = ["connection", "packet_drop", "tcp_life", "dns", "cgroup"];

/** Rss of the process's mappings by name (kB → bytes), from /proc/PID/smaps. */
function rssByMapping(pid: number): Map<string, number> {
  const by = new Map<string, number>();
  let name = "";
  for (const line of Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] || "[anonymous]";
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) by.set(name, (by.get(name) ?? 0) + Number(rss[1]) * 1024);
  }
  return by;
}

/** An idle server's RSS in parts: the BPF ring mappings, the deno executable, the rest. */
function idleParts(pid: number) {
  const by = rssByMapping(pid);
  let rings = 0, executable = 0, rest = 0;
  for (const [name, bytes] of by) {
    if (name === "anon_inode:bpf-map") rings += bytes;
    else if (name.endsWith("/deno")) executable += bytes;
    else rest += bytes;
  }
  return { rss: memory(pid).rss, rings, executable, rest };
}

async function waitStored(server: ServerMonitor, program: string, want: number) {
  let last = -1;
  for (let i = 0; i < 400; i++) {
    const s = await server.status(program);
    if (s.stored >= want || s.stored === last) return s;
    last = s.stored;
    await sleep(100);
  }
  return await server.status(program);
}

/** Memory per stored event of one program: RSS growth over rows stored, store filled once. */
async function memoryOf(deps: QueriesDeps, fill: typeof FILLS[number]) {
  const server = new ServerMonitor([
    "--programs",
    fill.program,
    "--store-capacity",
    String(STORE),
  ]);
  await server.start();
  try {
    await sleep(300);
    const mem0 = memory(server.pid!);
    const st0 = await server.status(fill.program);
    const lg = await deps.loadgen(fill.mode, 0, String(STORE));
    const st1 = await waitStored(server, fill.program, st0.stored + lg.connects);
    await sleep(1000);
    const mem1 = memory(server.pid!);
    return {
      program: fill.program,
      mode: fill.mode,
      why: fill.why,
      calls: lg.connects,
      stored: st1.stored - st0.stored,
      lost: st1.lost - st0.lost,
      rss0: mem0.rss,
      rss1: mem1.rss,
      bytesPerEvent: (mem1.rss - mem0.rss) / Math.max(1, st1.stored - st0.stored),
    };
  } finally {
    await server.stop();
  }
}

/** /health latency from one client while `clients` others loop over `urls`, for `seconds`. */
async function healthUnderLoad(base: string, urls: string[], clients: number, seconds: number) {
  let stop = false;
  let heavy = 0, failed = 0;
  const loops = Array.from({ length: clients }, async (_, i) => {
    for (let k = i; !stop; k++) {
      const res = await fetch(urls[k % urls.length]);
      await res.arrayBuffer();
      if (res.ok) heavy++;
      else failed++;
    }
  });
  const times: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    const res = await fetch(`${base}/health`);
    await res.arrayBuffer();
    times.push(performance.now() - t0);
    await sleep(20);
  }
  stop = true;
  await Promise.all(loops);
  return {
    n: times.length,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    max: Math.max(...times),
    clients,
    heavy,
    failed,
    urls: urls.map((u) => u.replace(/^http:\/\/[^/]+/, "")),
  };
}

/** The part: memory per event per program, then the queries on a full all-programs store. */
export async function queriesAllPrograms(deps: QueriesDeps) {
  const perProgram = [];
  for (const fill of FILLS) {
    deps.say(`queries: memory per event of ${fill.program} (${STORE} x ${fill.mode})`);
    perProgram.push(await memoryOf(deps, fill));
    deps.say(`queries: ${JSON.stringify(perProgram.at(-1))}`);
  }

  deps.say("queries: every program on; idle RSS, then 1M refused TCP connects into the store");
  const server = new ServerMonitor([]);
  await server.start();
  try {
    await sleep(2000);
    const idle = idleParts(server.pid!);
    const lg = await deps.loadgen("tcp-refused", 0, String(STORE));
    // every connect gives connection, tcp_life and packet_drop an event: the store is full
    let statuses = await server.statuses();
    for (let i = 0; i < 200; i++) {
      await sleep(100);
      const next = await server.statuses();
      const same = next.every((p, k) => p.events === statuses[k].events);
      statuses = next;
      if (same) break;
    }
    const full = {
      calls: lg.connects,
      rss: memory(server.pid!).rss,
      stored: Object.fromEntries(statuses.map((p) => [p.name, p.stored])),
      lost: statuses.reduce((s, p) => s + p.lost, 0),
    };
    deps.say(`queries: store ${JSON.stringify(full)}`);
    // a summary's answer is told by its size (each program's summary has fields of its own)
    const sizeOf = (b: Record<string, unknown>) =>
      `${(JSON.stringify(b).length / 1024).toFixed(1)} KiB`;
    const queries: (Latency & { program: string; kind: "summary" | "list" })[] = [];
    for (const program of PROGRAMS_WITH_ROUTES) {
      const summary = await deps.latency(
        `${server.base}/api/programs/${program}/summary?duration=60`,
        sizeOf,
      );
      queries.push({ ...summary, program, kind: "summary" });
      const list = await deps.latency(
        `${server.base}/api/programs/${program}/events?limit=10000`,
        (b) => `${b.count} events`,
      );
      queries.push({ ...list, program, kind: "list" });
      deps.say(
        `queries: ${program} summary p99 ${summary.p99.toFixed(2)} ms, list p99 ${
          list.p99.toFixed(2)
        } ms`,
      );
    }
    const heaviest = [...queries].sort((a, b) => b.p50 - a.p50).slice(0, 4)
      .map((q) => `${server.base}${q.url}`);
    const health = await healthUnderLoad(server.base, heaviest, 4, deps.quick ? 5 : 15);
    deps.say(`queries: /health under load ${JSON.stringify(health)}`);
    return { perProgram, idle, full, queries, health };
  } finally {
    await server.stop();
  }
}

export type QueriesResult = Awaited<ReturnType<typeof queriesAllPrograms>>;
