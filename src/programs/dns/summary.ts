/**
 * dns: the summary of the queries that ended in a window: counts by outcome, rcode, type and
 * transport, latency percentiles, the names asked most and the ones failing most (bounded, with
 * what is left over), servers and processes; and what did not become an event.
 *
 * @module
 */

import { attributionCounts } from "../../cgroup/mod.ts";
import { joinHostPort } from "../../net/address.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { bump, forEachRow, quantile, sortedCounts, type SummaryQuery } from "../query.ts";
import { rcodeName, typeName } from "./codes.ts";
import { type Columns, NO_RCODE, serverOf } from "./columns.ts";
import { notRecorded, pendingQueries } from "./state.ts";
import { OUTCOMES } from "./schema.ts";

/** Entries of each top list. */
const TOP = 20;
const NXDOMAIN = 3;

interface Tally {
  queries: number;
  failures: number;
}

/** Whether row `s` failed: NXDOMAIN, an error rcode, or a timeout. */
export function failed(c: EventTable<Columns>["cols"], s: number): boolean {
  return OUTCOMES[c.outcome[s]] !== "answered" || c.rcode[s] === NXDOMAIN;
}

function percentiles(values: number[]) {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

/** The `TOP` largest by `by`, and how many (and how much) are left over. */
function top<T>(entries: T[], by: (t: T) => number): { top: T[]; rest: T[] } {
  const sorted = entries.filter((e) => by(e) > 0).sort((a, b) => by(b) - by(a));
  return { top: sorted.slice(0, TOP), rest: sorted.slice(TOP) };
}

/** The summary over the rows that match `query`. */
export function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const c = table.cols;
  const byOutcome = new Map<string, number>();
  const byRcode = new Map<string, number>();
  const byType = new Map<string, number>();
  const byTransport = new Map<string, number>();
  const byName = new Map<number, Tally>();
  const byServer = new Map<string, Tally>();
  const byProcess = new Map<string, Tally & { pid: number; comm: number; latencies: number[] }>();
  const latencies: number[] = [];
  const byAttr = new Map<number, number>();
  const queries = forEachRow(table as unknown as EventTable, store, query, (s) => {
    byAttr.set(c.attr[s], (byAttr.get(c.attr[s]) ?? 0) + 1);
    const fail = failed(c, s);
    bump(byOutcome, OUTCOMES[c.outcome[s]]);
    if (c.rcode[s] !== NO_RCODE) bump(byRcode, rcodeName(c.rcode[s]));
    bump(byType, typeName(c.qtype[s]));
    bump(byTransport, c.transport[s] === 6 ? "tcp" : "udp");
    const latency = c.latency[s];
    if (!Number.isNaN(latency)) latencies.push(latency);

    const name = byName.get(c.qname[s]) ?? { queries: 0, failures: 0 };
    name.queries++;
    if (fail) name.failures++;
    byName.set(c.qname[s], name);

    const { ip, port } = serverOf(table, s);
    const serverKey = joinHostPort(ip, port);
    const server = byServer.get(serverKey) ?? { queries: 0, failures: 0 };
    server.queries++;
    if (fail) server.failures++;
    byServer.set(serverKey, server);

    const processKey = `${c.pid[s]} ${c.comm[s]}`;
    let process = byProcess.get(processKey);
    if (!process) {
      byProcess.set(
        processKey,
        process = { pid: c.pid[s], comm: c.comm[s], queries: 0, failures: 0, latencies: [] },
      );
    }
    process.queries++;
    if (fail) process.failures++;
    if (!Number.isNaN(latency)) process.latencies.push(latency);
  });

  const names = [...byName].map(([id, t]) => ({ name: store.strings.get(id), ...t }));
  const asked = top(names, (n) => n.queries);
  const failing = top(names, (n) => n.failures);
  const processes = top([...byProcess.values()], (p) => p.queries);
  const counted = notRecorded(store, query.since, query.until);
  return {
    queries,
    by_outcome: sortedCounts(byOutcome),
    by_rcode: sortedCounts(byRcode),
    by_type: sortedCounts(byType),
    by_transport: sortedCounts(byTransport),
    latency_ns: percentiles(latencies),
    top_names: asked.top,
    other_names: {
      names: asked.rest.length,
      queries: asked.rest.reduce((n, e) => n + e.queries, 0),
    },
    top_failing_names: failing.top,
    other_failing_names: {
      names: failing.rest.length,
      failures: failing.rest.reduce((n, e) => n + e.failures, 0),
    },
    by_server: top([...byServer].map(([server, t]) => ({ server, ...t })), (s) => s.queries).top,
    by_process: processes.top.map((p) => ({
      pid: p.pid,
      command: store.strings.get(p.comm),
      queries: p.queries,
      failures: p.failures,
      latency_p50_ns: quantile(Float64Array.from(p.latencies).sort(), 0.5),
    })),
    other_processes: {
      processes: processes.rest.length,
      queries: processes.rest.reduce((n, p) => n + p.queries, 0),
    },
    ...attributionCounts(store, byAttr),
    not_recorded: {
      malformed: counted.get("malformed") ?? 0,
      unmatched_answers: counted.get("unmatched_answers") ?? 0,
      answers_cut: counted.get("answers_cut") ?? 0,
      tcp_unparsed: counted.get("tcp_unparsed") ?? 0,
      pending_overflow: counted.get("pending_overflow") ?? 0,
      abandoned: counted.get("abandoned") ?? 0,
    },
    pending: pendingQueries(store),
  };
}
