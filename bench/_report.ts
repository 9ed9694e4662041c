/**
 * Turns the raw numbers of bench/run.ts into bench/RESULTS.md: one table per measurement, with
 * ratios to the C reference measured in the same run and the targets of issue 6 beside them;
 * the runs with every program on (issue 14) in tables of their own. Parts left out of a run
 * (`--only`) are left out of the report.
 *
 * @module
 */

import { median } from "./_proc.ts";
import type { QueriesResult } from "./_queries.ts";

// deno-lint-ignore no-explicit-any
type Raw = any;

interface Row {
  monitor: string;
  mode: string;
  target: number;
  connects: number;
  captured: number;
  lostKernel: number | null;
  rate: number;
  workloadCpuUs: number;
  monitorUsPerEvent: number;
  monitorUsPerEventStat: number;
  missing: number;
  /** Events of other processes the monitor took in during the runs (median), NaN if unknown. */
  foreign: number;
  /** ebpf-server: the workload's events still in the store when counted (median). */
  stored: number;
  repeats: number;
  /** Runs with no other process's tracepoint BPF program loaded and little other CPU use. */
  clean: number;
  /** Median over the clean runs if any, else over all: rate and loadgen CPU per connect. */
  slowRate: number;
  slowCpuUs: number;
  /** Median CPU (cores) used by other processes during the runs. */
  otherCores: number;
  /** Most tracepoint BPF programs of other processes loaded during a run. */
  foreignPrograms: number;
  /** Events of all programs taken in per second of the workload (median). */
  eventsPerSec: number;
  /** Events taken in per call of the workload (median). */
  eventsPerCall: number;
  /** udp-drop: captured drops whose pid is the load generator's (median). */
  byPid: number;
  /** Events taken in per program (medians), when the monitor tells. */
  byProgram: Record<string, number> | null;
}

/** A run not disturbed by other processes (see `clean` above). */
function isClean(run: Raw): boolean {
  return run.foreignPrograms === 0 && run.otherCores < CLEAN_OTHER_CORES;
}

/** Other processes' CPU use (cores) above which a run counts as disturbed. */
export const CLEAN_OTHER_CORES = 0.35;

const MONITORS = ["none", "c-ref", "bpftrace", "ebpf-server"];

function f(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

function workloadName(mode: string, target: number): string {
  return `${mode} @ ${target === 0 ? "max" : `${target / 1000}k/s`}`;
}

/** Events the monitor handled in a run: all it took in when known, else the workload's. */
function eventsIn(run: Raw): number {
  return Number.isFinite(run.processed) && run.processed >= run.captured
    ? run.processed
    : run.captured;
}

const met = (ok: boolean) => ok ? "**met**" : "**not met**";

/** A monitor's warm-ups (of one program set): connects, events taken in, CPU per event. */
function fillUs(raw: Raw, m: string, set = "connection") {
  const list = (raw.fills ?? []).filter((x: Raw) =>
    x.monitor === m && (x.set ?? "connection") === set
  );
  return {
    n: list.length,
    connects: median(list.map((x: Raw) => x.connects)),
    events: median(list.map((x: Raw) => x.events)),
    us: median(
      list.map((x: Raw) =>
        x.cpu.schedNs / 1e3 / (Number.isFinite(x.events) ? x.events : x.connects)
      ),
    ),
  };
}

/** One row per monitor and workload: medians (and sums) over the repeats. */
function rowsOf(runs: Raw[]): Row[] {
  const rows: Row[] = [];
  const keys = new Map<string, Raw[]>();
  for (const run of runs) {
    const key = `${run.monitor}|${run.mode}|${run.target}`;
    if (!keys.has(key)) keys.set(key, []);
    keys.get(key)!.push(run);
  }
  for (const [key, list] of keys) {
    const [monitor, mode, target] = key.split("|");
    const captured = list.map((r: Raw) => r.captured);
    rows.push({
      monitor,
      mode,
      target: Number(target),
      connects: median(list.map((r: Raw) => r.loadgen.connects)),
      captured: median(captured),
      lostKernel: list.some((r: Raw) => r.lost !== null)
        ? list.reduce((s: number, r: Raw) => s + (r.lost ?? 0), 0)
        : null,
      rate: median(list.map((r: Raw) => r.loadgen.rate)),
      workloadCpuUs: median(list.map((r: Raw) => r.loadgen.cpu_us_per_connect)),
      monitorUsPerEvent: median(
        list.map((r: Raw) => r.cpu ? r.cpu.schedNs / 1e3 / eventsIn(r) : NaN),
      ),
      monitorUsPerEventStat: median(
        list.map((r: Raw) => r.cpu ? r.cpu.statNs / 1e3 / eventsIn(r) : NaN),
      ),
      foreign: median(list.map((r: Raw) => (r.processed ?? NaN) - r.captured)),
      stored: median(list.map((r: Raw) => r.stored ?? NaN)),
      missing: list.reduce(
        (s: number, r: Raw) => s + (monitor === "none" ? 0 : r.loadgen.connects - r.captured),
        0,
      ),
      repeats: list.length,
      ...(() => {
        const clean = list.filter(isClean);
        const use = clean.length ? clean : list;
        return {
          clean: clean.length,
          slowRate: median(use.map((r: Raw) => r.loadgen.rate)),
          slowCpuUs: median(use.map((r: Raw) => r.loadgen.cpu_us_per_connect)),
        };
      })(),
      otherCores: median(list.map((r: Raw) => r.otherCores ?? NaN)),
      foreignPrograms: Math.max(...list.map((r: Raw) => r.foreignPrograms ?? 0)),
      eventsPerSec: median(list.map((r: Raw) => eventsIn(r) / r.loadgen.elapsed_s)),
      eventsPerCall: median(list.map((r: Raw) => eventsIn(r) / r.loadgen.connects)),
      byPid: median(list.map((r: Raw) => r.byPid ?? NaN)),
      byProgram: list.every((r: Raw) => r.processedByProgram)
        ? Object.fromEntries(
          Object.keys(list[0].processedByProgram).map((name) => [
            name,
            median(list.map((r: Raw) => r.processedByProgram[name] ?? NaN)),
          ]),
        )
        : null,
    });
  }
  return rows;
}

export function report(raw: Raw): string {
  const connectionRuns = raw.runs.filter((r: Raw) => (r.set ?? "connection") === "connection");
  const allRuns = raw.runs.filter((r: Raw) => r.set === "all");
  const rows = rowsOf(connectionRuns);
  const get = (monitor: string, mode: string, target: number) =>
    rows.find((r) => r.monitor === monitor && r.mode === mode && r.target === target);
  const workloads: { mode: string; target: number }[] = [];
  for (const r of rows) {
    if (!workloads.some((w) => w.mode === r.mode && w.target === r.target)) {
      workloads.push({ mode: r.mode, target: r.target });
    }
  }
  const monitors = MONITORS.filter((m) => rows.some((r) => r.monitor === m));

  /** Slowdown factor of a workload under a monitor: >1 is slower than with no monitor. */
  function slowdown(monitor: string, mode: string, target: number): number {
    const none = get("none", mode, target), m = get(monitor, mode, target);
    if (!none || !m) return NaN;
    return target === 0 ? none.slowRate / m.slowRate : m.slowCpuUs / none.slowCpuUs;
  }

  // ----- targets
  const serverRows = rows.filter((r) => r.monitor === "ebpf-server");
  const lossRows = serverRows.filter((r) => r.target === 0 || r.target === 100_000);
  const lossTotal = lossRows.reduce((s, r) => s + r.missing, 0);
  const lossConnects = lossRows.reduce((s, r) => s + r.connects * r.repeats, 0);
  const cpuRatios = workloads.map((w) => {
    const s = get("ebpf-server", w.mode, w.target), c = get("c-ref", w.mode, w.target);
    return { ...w, ratio: s && c ? s.monitorUsPerEvent / c.monitorUsPerEvent : NaN };
  });
  const worstCpu = Math.max(...cpuRatios.map((c) => c.ratio));
  const slow = workloads.map((w) => ({
    ...w,
    server: slowdown("ebpf-server", w.mode, w.target),
    ref: slowdown("c-ref", w.mode, w.target),
    bpftrace: slowdown("bpftrace", w.mode, w.target),
  }));
  const slowOk = slow.every((s) =>
    s.server <= s.ref * 1.1 && (!Number.isFinite(s.bpftrace) || s.server < s.bpftrace)
  );
  const worstSlow = slow.reduce(
    (w, s) => (s.server / s.ref > w.server / w.ref ? s : w),
    slow[0],
  );
  const store = raw.store;
  const q = raw.queries;
  const startupMedian = raw.startups ? median(raw.startups) : NaN;
  const startupMax = raw.startups ? Math.max(...raw.startups) : NaN;
  const wrk = raw.wrk ? median(raw.wrk) : NaN;

  const out: string[] = [];
  out.push('# Benchmark results (issue 6: "As fast as C")');
  out.push("");
  out.push(
    `Produced by \`bench/run.sh${raw.env.mode === "quick" ? " --quick" : ""}${
      raw.parts && raw.parts.length < 5 ? ` --only ${raw.parts.join(",")}` : ""
    }\` on ${raw.env.date}. ` +
      `Source: ${raw.env.source ?? "?"}. ` +
      `Kernel ${raw.env.kernel}, ${raw.env.cpu} (${raw.env.cores} cores), Deno ${raw.env.deno}, ` +
      `${raw.env.bpftrace}, ${raw.env.wrk}. Mode: ${raw.env.mode}, ${raw.env.repeats} repeat(s) ` +
      `of ${raw.env.durationS} s per workload and monitor, monitors interleaved and workloads in turn (both orders rotated ` +
      `per repeat); numbers are medians over repeats, ratios are to the C reference of the same run.`,
  );
  out.push("");
  out.push(
    `Background: tracepoint BPF programs of other processes loaded at the start: ` +
      `${raw.env.foreignBefore}; at the end: ${raw.env.foreignAfter}. Load average before/after: ` +
      `${raw.env.loadBefore} / ${raw.env.loadAfter}. (Other programs on \`sys_enter/exit_connect\` ` +
      `add their cost to every run, the "none" baseline included.)`,
  );
  out.push("");
  const targets = rows.length > 0 || store || raw.idle || raw.startups;
  if (targets) {
    out.push("## Targets");
    out.push("");
    out.push("| target | ebpf-server | C reference | ratio | result |");
    out.push("| --- | --- | --- | --- | --- |");
  }
  const refLossRows = rows.filter((r) =>
    r.monitor === "c-ref" && (r.target === 0 || r.target === 100_000)
  );
  const refLoss = refLossRows.reduce((s, r) => s + r.missing, 0);
  if (rows.length) {
    out.push(
      `| zero loss at 100k/s and at max rate (default settings) | ${f(lossTotal, 0)} of ${
        f(lossConnects, 0)
      } missing | ${f(refLoss, 0)} missing | – | ${met(lossTotal === 0)} |`,
    );
    for (const c of cpuRatios) {
      const s = get("ebpf-server", c.mode, c.target), r = get("c-ref", c.mode, c.target);
      out.push(
        `| CPU per event ≤ 2× C, ${workloadName(c.mode, c.target)} | ${
          f(s?.monitorUsPerEvent ?? NaN, 3)
        } µs | ${f(r?.monitorUsPerEvent ?? NaN, 3)} µs | ${f(c.ratio)}× | ${met(c.ratio <= 2)} |`,
      );
    }
  }
  if (raw.idle) {
    out.push(
      `| idle CPU < 1% of a core | ${f(raw.idle.server.percentCore)}% | ${
        f(raw.idle.ref.percentCore)
      }% | ${f(raw.idle.server.percentCore / raw.idle.ref.percentCore, 1)}× | ${
        met(raw.idle.server.percentCore < 1)
      } |`,
    );
  }
  for (const s of rows.length ? slow : []) {
    out.push(
      `| workload slowdown ≤ 1.1× C's and < bpftrace's, ${workloadName(s.mode, s.target)} | ${
        f(s.server, 3)
      }× | ${f(s.ref, 3)}× (bpftrace ${f(s.bpftrace, 3)}×) | ${f(s.server / s.ref, 3)} | ${
        met(s.server <= s.ref * 1.1 && (!Number.isFinite(s.bpftrace) || s.server < s.bpftrace))
      } |`,
    );
  }
  if (store) {
    out.push(
      `| store ≤ 100 B/event (RSS growth, empty → 1M) | ${f(store.bytesPerEvent, 1)} B | – | – | ${
        met(store.bytesPerEvent <= 100)
      } |`,
    );
    out.push(
      `| summary (60 s window, 1M events) p99 < 10 ms | ${f(q.summary.p99)} ms (p50 ${
        f(q.summary.p50)
      }) | – | – | ${met(q.summary.p99 < 10)} |`,
    );
    out.push(
      `| filtered list of 100 (1M events) p99 < 10 ms | ${f(q.list.p99)} ms (p50 ${
        f(q.list.p50)
      }) | – | – | ${met(q.list.p99 < 10)} |`,
    );
  }
  if (raw.startups) {
    out.push(
      `| start-up (exec → /health, all programs running) < 1 s | ${f(startupMedian, 0)} ms (max ${
        f(startupMax, 0)
      }) | – | – | ${met(startupMax < 1000)} |`,
    );
    out.push(
      `| /health ≥ 20k requests/s (wrk -t2 -c32 -d5s) | ${f(wrk, 0)}/s | – | – | ${
        met(wrk >= 20_000)
      } |`,
    );
  }
  if (targets) out.push("");
  if (rows.length) {
    out.push(
      `Overall: loss ${met(lossTotal === 0)}; CPU/event ${met(worstCpu <= 2)} (worst ${
        f(worstCpu)
      }×); ` +
        `slowdown ${met(slowOk)} (worst ${workloadName(worstSlow.mode, worstSlow.target)}: ` +
        `${f(worstSlow.server, 3)}× vs C ${f(worstSlow.ref, 3)}×).`,
    );
    out.push("");
  }

  // ----- ingest tables
  if (rows.length) {
    out.push("## Ingest under load");
    out.push("");
    out.push(
      "`loadgen` (bench/loadgen.c) makes `connect()` calls on loopback: `udp` (one UDP socket, " +
        "connect again and again), `tcp-refused` (new TCP socket per call to a bound, non-listening " +
        "port), `tcp-accept` (new TCP socket per call to a listener it runs; a thread accepts and " +
        "closes). Monitors: `none`; `c-ref` (bench/ref_consumer.c: the same BPF object, same ring " +
        "size, drained every 10 ms with the shim's loop, counts per pid); `bpftrace` (one line per " +
        "`sys_exit_connect` to a file); `ebpf-server` (`--programs connection`, default settings).",
    );
    out.push("");
    const unreachable = raw.unreachable.filter((u: Raw) => u.mode !== "udp-drop");
    if (unreachable.length) {
      out.push(
        "Fixed rates this machine cannot reach with no monitor (so not run; the max-rate row stands for them): " +
          unreachable.map((u: Raw) => `${u.mode} @ ${u.target / 1000}k/s (max ${f(u.max, 0)}/s)`)
            .join(", ") +
          ".",
      );
      out.push("");
    }
    out.push("### Loss: events captured vs connect() calls made");
    out.push("");
    out.push(
      "Captured: the workload's events the monitor counted (C reference and bpftrace: by pid; " +
        "ebpf-server: its /metrics counter for the load generator's command `lg-<pid>`, kept at " +
        "ingest, since a flood of other processes' connects can evict the workload's events from " +
        "the store before they are counted there; the events still stored are in brackets).",
    );
    out.push("");
    out.push(
      "| workload | monitor | connects (median) | captured (median) | missing (sum over repeats) | kernel lost counter (sum) | events of other processes taken in meanwhile (median) |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- |");
    for (const w of workloads) {
      for (const m of monitors.filter((m) => m !== "none")) {
        const r = get(m, w.mode, w.target);
        if (!r) continue;
        out.push(
          `| ${workloadName(w.mode, w.target)} | ${m} | ${f(r.connects, 0)} | ${f(r.captured, 0)}${
            Number.isFinite(r.stored) ? ` [${f(r.stored, 0)}]` : ""
          } | ${f(r.missing, 0)} | ${r.lostKernel === null ? "–" : f(r.lostKernel, 0)} | ${
            f(r.foreign, 0)
          } |`,
        );
      }
    }
    out.push("");
    out.push("### Monitor CPU per event (µs, on-CPU time of all its threads / events captured)");
    out.push("");
    out.push(
      "From `/proc/<pid>/task/*/schedstat` (ns-exact) over the run and until the monitor is idle again; " +
        "`/proc/<pid>/stat` utime+stime (10 ms ticks) in brackets. Includes the drain timer's idle cost; ebpf-server is asked for its counts (which drains its rings) before the window closes. " +
        "The events counted are all the monitor took in (the workload's and other processes'), " +
        "except for bpftrace (the workload's only: its block-buffered output is counted after it exits). " +
        `Every monitor first takes in a warm-up of ${
          f(raw.warmupConnects ?? NaN, 0)
        } UDP connects (ebpf-server's default store capacity), so ebpf-server runs with a full, evicting store, as it does on a host after its first minutes; what that warm-up cost is in the next table.`,
    );
    out.push("");
    out.push(
      "| workload | c-ref | bpftrace | ebpf-server | ebpf-server / c-ref | bpftrace / c-ref |",
    );
    out.push("| --- | --- | --- | --- | --- | --- |");
    for (const w of workloads) {
      const c = get("c-ref", w.mode, w.target),
        b = get("bpftrace", w.mode, w.target),
        s = get("ebpf-server", w.mode, w.target);
      const cell = (r?: Row) =>
        r ? `${f(r.monitorUsPerEvent, 3)} [${f(r.monitorUsPerEventStat, 3)}]` : "–";
      out.push(
        `| ${workloadName(w.mode, w.target)} | ${cell(c)} | ${cell(b)} | ${cell(s)} | ${
          f((s?.monitorUsPerEvent ?? NaN) / (c?.monitorUsPerEvent ?? NaN))
        }× | ${f((b?.monitorUsPerEvent ?? NaN) / (c?.monitorUsPerEvent ?? NaN))}× |`,
      );
    }
    out.push("");
    out.push("### Warm-up: filling an empty store (once per start)");
    out.push("");
    out.push(
      "The CPU per event of each monitor's warm-up, from its start to the first full store: " +
        "ebpf-server pays here for the first touch of its store's memory (about 80 MB for a million " +
        "events; on this VM a first-touched huge page can cost milliseconds) and for compiling its hot " +
        "code. Medians over repeats.",
    );
    out.push("");
    out.push("| monitor | connects | events taken in | CPU per event (µs) | / c-ref |");
    out.push("| --- | --- | --- | --- | --- |");
    const refFill = fillUs(raw, "c-ref");
    for (const m of monitors) {
      const x = fillUs(raw, m);
      if (!x.n) continue;
      out.push(
        `| ${m} | ${f(x.connects, 0)} | ${Number.isFinite(x.events) ? f(x.events, 0) : "–"} | ${
          f(x.us, 3)
        } | ${f(x.us / refFill.us)}× |`,
      );
    }
    out.push("");
    out.push("### Workload rate and slowdown");
    out.push("");
    out.push(
      "Slowdown = (no-monitor rate / rate) at max rate; at a fixed rate, where the rate itself is " +
        "fixed, (loadgen CPU per connect / no-monitor CPU per connect). 1.00 = no effect. Target: " +
        "ebpf-server's ≤ 1.1 × the C reference's, and below bpftrace's. This machine is shared: " +
        "other processes' BPF programs on the same tracepoints add their cost to every connect, " +
        "and their load takes CPU. So the slowdown uses only the runs during which no other " +
        `tracepoint BPF program was loaded and other processes used < ${CLEAN_OTHER_CORES} of a ` +
        'core ("clean"), when both the monitor and no-monitor have such runs; otherwise all runs ' +
        "(marked *noisy*). Rates and µs/connect below are medians of the runs used.",
    );
    out.push("");
    out.push(
      "| workload | none rate/s | c-ref rate/s | bpftrace rate/s | ebpf-server rate/s | loadgen µs/connect none · c-ref · bpftrace · server | clean runs none · c-ref · bpftrace · server | slowdown c-ref | slowdown bpftrace | slowdown ebpf-server | server / c-ref |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const s of slow) {
      const r = (m: string) => get(m, s.mode, s.target);
      const noisy = (m: string) => !(r(m)?.clean && r("none")?.clean);
      const mark = (x: number, m: string) => `${f(x, 3)}${noisy(m) ? " *noisy*" : ""}`;
      out.push(
        `| ${workloadName(s.mode, s.target)} | ${f(r("none")?.slowRate ?? NaN, 0)} | ${
          f(r("c-ref")?.slowRate ?? NaN, 0)
        } | ${f(r("bpftrace")?.slowRate ?? NaN, 0)} | ${
          f(r("ebpf-server")?.slowRate ?? NaN, 0)
        } | ${MONITORS.map((m) => f(r(m)?.slowCpuUs ?? NaN)).join(" · ")} | ${
          MONITORS.map((m) => `${r(m)?.clean ?? 0}/${r(m)?.repeats ?? 0}`).join(" · ")
        } | ${mark(s.ref, "c-ref")} | ${mark(s.bpftrace, "bpftrace")} | ${
          mark(s.server, "ebpf-server")
        } | ${f(s.server / s.ref, 3)} |`,
      );
    }
    out.push("");
    out.push(
      "Disturbance by other processes (medians over runs): CPU cores they used during the runs, " +
        "and the most tracepoint BPF programs of theirs loaded during a run.",
    );
    out.push("");
    out.push("| workload | " + MONITORS.join(" | ") + " |");
    out.push("| --- | " + MONITORS.map(() => "---").join(" | ") + " |");
    for (const w of workloads) {
      out.push(
        `| ${workloadName(w.mode, w.target)} | ${
          MONITORS.map((m) => {
            const r = get(m, w.mode, w.target);
            return r ? `${f(r.otherCores)} cores, ${r.foreignPrograms} progs` : "–";
          }).join(" | ")
        } |`,
      );
    }
    out.push("");
  }

  // ----- every program on
  if (allRuns.length) out.push(...allProgramsSection(raw, allRuns));

  // ----- store, queries, start-up, idle, HTTP
  if (store) {
    out.push("## Store memory");
    out.push("");
    out.push(
      `ebpf-server with \`--programs connection --store-capacity 1000000\`; RSS (VmRSS) after start-up, ` +
        `then after ${f(store.connects, 0)} UDP connects (${f(store.fillRate, 0)}/s).`,
    );
    out.push("");
    out.push(
      "| RSS empty | RSS with events | peak RSS (VmHWM) | events stored (before → after) | evicted | lost | bytes/event | target |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
    out.push(
      `| ${f(store.rss0 / 2 ** 20, 1)} MiB | ${f(store.rss1 / 2 ** 20, 1)} MiB | ${
        f(store.hwm1 / 2 ** 20, 1)
      } MiB | ${f(store.stored0, 0)} → ${f(store.stored1, 0)} | ${f(store.evicted, 0)} | ${
        f(store.lost, 0)
      } | ${f(store.bytesPerEvent, 1)} | ≤ 100: ${met(store.bytesPerEvent <= 100)} |`,
    );
    out.push("");
  }
  if (q) {
    out.push("## Query latency with 1M events stored");
    out.push("");
    out.push(
      "Sequential GETs over one keep-alive connection on loopback from a Deno client (`fetch`), timed " +
        "from request to the whole body read; 5 warm-up requests first.",
    );
    out.push("");
    out.push(
      "| query | requests | p50 ms | p99 ms | max ms | events in answer (sampled) | target |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- |");
    for (const l of [q.summary, q.list]) {
      out.push(
        `| \`GET ${l.url}\` | ${l.n} | ${f(l.p50)} | ${f(l.p99)} | ${f(l.max)} | ${
          l.seen.join(", ")
        } | p99 < 10 ms: ${met(l.p99 < 10)} |`,
      );
    }
    out.push("");
  }
  if (raw.queriesAll) out.push(...queriesSection(raw.queriesAll, store?.bytesPerEvent));
  if (raw.startups && raw.idle && raw.wrk) {
    out.push("## Start-up, idle CPU, HTTP");
    out.push("");
    out.push("| measurement | ebpf-server | C reference | target |");
    out.push("| --- | --- | --- | --- |");
    out.push(
      `| start-up: spawn → /health 200 with ${
        raw.programsAtStartup.join(", ")
      } running (runs after one warm-up) | ${
        raw.startups.map((s: number) => f(s, 0)).join(", ")
      } ms | – | < 1000 ms: ${met(startupMax < 1000)} |`,
    );
    out.push(
      `| idle CPU over ${
        f(raw.idle.server.seconds, 1)
      } s, side by side with the C reference of the same objects (\`ref_consumer --all\`; the quietest window; events of other processes meanwhile: server ${raw.idle.server.events}, C ${raw.idle.ref.events}) | ${
        f(raw.idle.server.percentCore, 2)
      }% of a core [stat ${f(raw.idle.server.percentCoreStat, 2)}%] | ${
        f(raw.idle.ref.percentCore, 2)
      }% | < 1%: ${met(raw.idle.server.percentCore < 1)} |`,
    );
    out.push(
      `| \`wrk -t2 -c32 -d5s /health\` (all programs) | ${
        raw.wrk.map((x: number) => f(x, 0)).join(", ")
      } req/s | – | ≥ 20,000: ${met(wrk >= 20_000)} |`,
    );
    out.push("");
  }
  return out.join("\n") + "\n";
}

/** The programs of the server's default set, in its start order (src/programs/mod.ts). */
const ALL_PROGRAMS = ["cgroup", "connection", "packet_drop", "tcp_life", "dns"];
const MODE_ORDER = ["udp", "tcp-refused", "tcp-accept", "udp-drop"];
const TARGET_ORDER = [0, 100_000, 10_000];

/** The tables of the runs with every program on: ebpf-server's default beside `ref_consumer --all`. */
function allProgramsSection(
  raw: Raw,
  runs: Raw[],
): string[] {
  const rows = rowsOf(runs);
  const get = (monitor: string, mode: string, target: number) =>
    rows.find((r) => r.monitor === monitor && r.mode === mode && r.target === target);
  const workloads: { mode: string; target: number }[] = [];
  for (const r of rows) {
    if (!workloads.some((w) => w.mode === r.mode && w.target === r.target)) {
      workloads.push({ mode: r.mode, target: r.target });
    }
  }
  workloads.sort((a, b) =>
    MODE_ORDER.indexOf(a.mode) - MODE_ORDER.indexOf(b.mode) ||
    TARGET_ORDER.indexOf(a.target) - TARGET_ORDER.indexOf(b.target)
  );
  const monitors = ["none", "c-ref", "ebpf-server"];
  const out: string[] = [];
  out.push("## All programs (the default)");
  out.push("");
  out.push(
    "ebpf-server as users run it: no `--programs`, so every program runs (" +
      ALL_PROGRAMS.join(", ") +
      "; default settings, and `--metrics-top-commands 1000` for the loss count as above). " +
      "Beside it `c-ref`: bench/ref_consumer.c `--all`, the same five objects with the settings " +
      "the server gives them (ring size, `self_tgid`, one shared `sock_owner` map, tcp_life's " +
      "`self_netns`, packet_drop's `reason_not_dropped`/`reason_consumed` from the kernel's BTF, " +
      "cgroup programs on the cgroup v2 root), every ring drained every 10 ms with the shim's loop. " +
      "Monitors interleaved and warmed up as above. Workloads: those above and `udp-drop` " +
      "(`sendto()` of 8-byte datagrams from one UDP socket to a loopback port nobody has bound: " +
      "the kernel drops each on receive, `kfree_skb` with reason NO_SOCKET, which packet_drop " +
      "records). A call can give several programs an event (see the last table), so events/s " +
      "is not the call rate.",
  );
  out.push("");
  const unreachable = raw.unreachable.filter((u: Raw) =>
    !workloads.some((w) => w.mode === u.mode && w.target === u.target)
  );
  if (unreachable.length) {
    out.push(
      "Fixed rates this machine cannot reach with no monitor (not run): " +
        unreachable.map((u: Raw) => `${u.mode} @ ${u.target / 1000}k/s (max ${f(u.max, 0)}/s)`)
          .join(", ") +
        ".",
    );
    out.push("");
  }
  out.push("### Events taken in and CPU per event, all programs");
  out.push("");
  out.push(
    "Events/s: the events of all programs each consumer took in during the run (its own count: " +
      "the C reference's snapshot, the sum of `events` in ebpf-server's `/api/programs`), per " +
      "second of the workload. CPU per event: its on-CPU time over the run until it is idle " +
      "again (schedstat; `/proc/<pid>/stat` ticks in brackets) / those events.",
  );
  out.push("");
  out.push(
    "| workload | calls/s none · c-ref · ebpf-server | events/s c-ref · ebpf-server | events per call c-ref · ebpf-server | CPU per event c-ref (µs) | CPU per event ebpf-server (µs) | ebpf-server / c-ref |",
  );
  out.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const w of workloads) {
    const c = get("c-ref", w.mode, w.target), s = get("ebpf-server", w.mode, w.target);
    const cell = (r?: Row) =>
      r ? `${f(r.monitorUsPerEvent, 3)} [${f(r.monitorUsPerEventStat, 3)}]` : "–";
    out.push(
      `| ${workloadName(w.mode, w.target)} | ${
        monitors.map((m) => f(get(m, w.mode, w.target)?.rate ?? NaN, 0)).join(" · ")
      } | ${f(c?.eventsPerSec ?? NaN, 0)} · ${f(s?.eventsPerSec ?? NaN, 0)} | ${
        f(c?.eventsPerCall ?? NaN)
      } · ${f(s?.eventsPerCall ?? NaN)} | ${cell(c)} | ${cell(s)} | ${
        f((s?.monitorUsPerEvent ?? NaN) / (c?.monitorUsPerEvent ?? NaN))
      }× |`,
    );
  }
  out.push("");
  out.push("### Loss, all programs");
  out.push("");
  out.push(
    "Connect modes: the load generator's connection events vs its `connect()` calls, as above " +
      "(C reference by pid; ebpf-server its `/metrics` counter for `lg-<pid>`, the events still " +
      "stored in brackets). `udp-drop`: the packet_drop events of its datagrams (UDP with its " +
      "source port: the C reference counts drops by UDP source port; ebpf-server " +
      "`GET /api/programs/packet_drop/top?by=pid&port=SPORT&protocol=UDP`, the events still " +
      "stored, as packet_drop keeps no per-process counter at ingest) vs its `sendto()` calls; " +
      "beside them, those whose pid (the socket's owner when known, else the task the drop ran " +
      "in) is the load generator's: a drop that softirq ran in another task (ksoftirqd) carries " +
      "that task's pid. Kernel lost: the lost counters of all programs.",
  );
  out.push("");
  out.push(
    "| workload | monitor | calls (median) | captured (median) | missing (sum over repeats) | udp-drop: with its pid (median) | kernel lost counter (sum) | other processes' CPU (cores, median) |",
  );
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const w of workloads) {
    for (const m of monitors.filter((m) => m !== "none")) {
      const r = get(m, w.mode, w.target);
      if (!r) continue;
      out.push(
        `| ${workloadName(w.mode, w.target)} | ${m} | ${f(r.connects, 0)} | ${f(r.captured, 0)}${
          Number.isFinite(r.stored) && w.mode !== "udp-drop" ? ` [${f(r.stored, 0)}]` : ""
        } | ${f(r.missing, 0)} | ${w.mode === "udp-drop" ? f(r.byPid, 0) : "–"} | ${
          r.lostKernel === null ? "–" : f(r.lostKernel, 0)
        } | ${f(r.otherCores)} |`,
      );
    }
  }
  out.push("");
  out.push("### Events per program taken in (median per run)");
  out.push("");
  out.push(
    "| workload | monitor | " + ALL_PROGRAMS.join(" | ") + " |",
  );
  out.push("| --- | --- | " + ALL_PROGRAMS.map(() => "---").join(" | ") + " |");
  for (const w of workloads) {
    for (const m of monitors.filter((m) => m !== "none")) {
      const r = get(m, w.mode, w.target);
      if (!r) continue;
      out.push(
        `| ${workloadName(w.mode, w.target)} | ${m} | ${
          ALL_PROGRAMS.map((p) => r.byProgram ? f(r.byProgram[p] ?? NaN, 0) : "–").join(" | ")
        } |`,
      );
    }
  }
  out.push("");
  out.push("### Warm-up with every program: filling an empty store (once per start)");
  out.push("");
  out.push(
    "As the warm-up table above, for these monitors: CPU per event of each monitor's warm-up " +
      "of refused TCP connects (a connection, a tcp_life and a packet_drop event each, so each " +
      "of those tables goes once round its slots: until then every row touches memory for the " +
      "first time), from its start. Medians over repeats.",
  );
  out.push("");
  out.push("| monitor | connects | events taken in | CPU per event (µs) | / c-ref |");
  out.push("| --- | --- | --- | --- | --- |");
  const refFill = fillUs(raw, "c-ref", "all");
  for (const m of monitors) {
    const x = fillUs(raw, m, "all");
    if (!x.n) continue;
    out.push(
      `| ${m} | ${f(x.connects, 0)} | ${Number.isFinite(x.events) ? f(x.events, 0) : "–"} | ${
        f(x.us, 3)
      } | ${f(x.us / refFill.us)}× |`,
    );
  }
  out.push("");
  return out;
}

const MiB = (bytes: number) => `${f(bytes / 2 ** 20, 1)} MiB`;

/** The "queries" part: every program on, the store full (issue 14's query and memory targets). */
function queriesSection(q: QueriesResult, connectionBytes: number | undefined): string[] {
  const out: string[] = [];
  out.push("## Every program on: memory per event, queries with the store full");
  out.push("");
  out.push(
    "Memory per stored event, for each program a load generator can fill a store with on its own: " +
      "ebpf-server with `--programs NAME --store-capacity 1000000`, RSS (VmRSS) after start-up " +
      "and after 1M calls of the load generator. Target: at most 2x connection's bytes per event" +
      (connectionBytes ? ` (the store part above: ${f(connectionBytes, 1)} B)` : "") +
      "; dns and cgroup events come at rates no load generator here makes a million of, so they " +
      "are not measured.",
  );
  out.push("");
  out.push("| program | fill | calls | stored | lost | RSS empty → full | bytes/event | target |");
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  const limit = 2 * (q.perProgram.find((p) => p.program === "connection")?.bytesPerEvent ?? NaN);
  for (const p of q.perProgram) {
    out.push(
      `| ${p.program} | \`${p.mode}\`: ${p.why} | ${f(p.calls, 0)} | ${f(p.stored, 0)} | ${
        f(p.lost, 0)
      } | ${MiB(p.rss0)} → ${MiB(p.rss1)} | ${f(p.bytesPerEvent, 1)} | ${
        p.program === "connection" ? "–" : `≤ ${f(limit, 1)}: ${met(p.bytesPerEvent <= limit)}`
      } |`,
    );
  }
  out.push("");
  const idle = q.idle;
  out.push(
    `Idle RSS with every program on (2 s after start-up, store empty): ${
      MiB(idle.rss)
    }, of which ` +
      `${MiB(idle.rings)} are the BPF ring buffers' mappings (the kernel maps each ring's data ` +
      `pages twice, and all of them at once, so RSS counts each ring twice whether or not it has ` +
      `been used), ${MiB(idle.executable)} the deno executable's pages, ${MiB(idle.rest)} the ` +
      `rest (heap, V8, libraries). Target < 100 MiB: ${met(idle.rss < 100 * 2 ** 20)}.`,
  );
  out.push("");
  const full = q.full;
  out.push(
    `Queries: a server with every program on (no flags) after ${f(full.calls, 0)} refused TCP ` +
      `connects, each a connection, a tcp_life and a packet_drop event; stored: ` +
      Object.entries(full.stored).map(([k, v]) => `${k} ${f(v as number, 0)}`).join(", ") +
      ` (RSS ${MiB(full.rss)}, lost ${f(full.lost, 0)}). Every event is in the last 60 s, so a ` +
      "60 s summary reads the whole store. Timed as in the query table above.",
  );
  out.push("");
  out.push("| query | requests | p50 ms | p99 ms | max ms | answer (sampled) | target |");
  out.push("| --- | --- | --- | --- | --- | --- | --- |");
  for (const l of q.queries) {
    const limitMs = l.kind === "summary" ? 10 : 25;
    out.push(
      `| \`GET ${l.url}\` | ${l.n} | ${f(l.p50)} | ${f(l.p99)} | ${f(l.max)} | ${
        l.seen.join(", ")
      } | p99 < ${limitMs} ms: ${met(l.p99 < limitMs)} |`,
    );
  }
  out.push("");
  const h = q.health;
  out.push(
    `\`/health\` from one client every 20 ms while ${h.clients} clients loop over the four ` +
      `slowest queries above (${h.urls.map((u) => `\`${u}\``).join(", ")}; ${f(h.heavy, 0)} ` +
      `answered, ${f(h.failed, 0)} failed): ${h.n} requests, p50 ${f(h.p50)} ms, p99 ${f(h.p99)} ` +
      `ms, max ${f(h.max)} ms. Target p99 < 100 ms: ${met(h.p99 < 100)}.`,
  );
  out.push("");
  return out;
}
