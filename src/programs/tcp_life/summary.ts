/**
 * The tcp_life summary: totals, outcomes and duration quantiles of the connections that closed
 * in a window, and the 20 remotes and processes with the most of them, each with the same.
 *
 * One pass over the window's rows reads the columns into plain arrays (a row's group indices,
 * duration and outcome), with no string per row: a remote is found by its address words and
 * port in an open-addressing table, a process by pid and command id, and a row like the one
 * before it (a burst to one remote from one process, the common case) costs no lookup at all.
 * The top groups are then picked from the counts, and only theirs get outcomes and quantiles,
 * from those arrays. The pass can go in slices ({@linkcode summarizeSliced}): it goes by sequence
 * number, so rows appended meanwhile after the window's end are not read, evicted ones are left
 * out, and the columns are read through the table again after each yield.
 *
 * It answers what a scan building a string per row did (the test keeps that scan as its oracle):
 * groups ordered by connections with ties in the order first seen, outcomes likewise, the same
 * nearest-rank quantiles.
 *
 * @module
 */

import { attributionCounts } from "../../cgroup/mod.ts";
import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import {
  forEachSlotRangeSliced,
  quantilesOf,
  roundMicros,
  type RowFilter,
  rowFilterOf,
  type Slicer,
  slotRanges,
  type SummaryQuery,
  timeRange,
} from "../query.ts";
import type { columns } from "./mod.ts";
import { OUTCOMES } from "./schema.ts";

type Columns = typeof columns;

/** Groups of each kind in the answer. */
const TOP = 20;
/** Rows read between two yields of {@linkcode summarizeSliced}. */
const SLICE_ROWS = 1 << 16;
const QUANTILES = [0.5, 0.9, 0.99];

/** Remotes numbered in the order first seen, by (family, address, port). */
class RemoteIndex {
  #mask = 1023;
  #slot = new Int32Array(1024).fill(-1); // hash slot -> remote index
  #n = 0;
  family = new Uint8Array(256);
  words = new Uint32Array(4 * 256); // 4 per remote
  port = new Uint16Array(256);

  get size(): number {
    return this.#n;
  }

  static #hash(w0: number, w1: number, w2: number, w3: number, port: number): number {
    let h = Math.imul(w0 ^ port, 0x9e3779b1) ^ w1;
    h = Math.imul(h, 0x85ebca6b) ^ w2;
    h = Math.imul(h, 0xc2b2ae35) ^ w3;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return h ^ (h >>> 13);
  }

  /** The index of the remote, numbered now when new. */
  of(family: number, w0: number, w1: number, w2: number, w3: number, port: number): number {
    const mask = this.#mask, slots = this.#slot, words = this.words, ports = this.port;
    let i = RemoteIndex.#hash(w0, w1, w2, w3, port) & mask;
    for (;;) {
      const r = slots[i];
      if (r < 0) break;
      const a = 4 * r;
      if (
        ports[r] === port && words[a] === w0 && words[a + 1] === w1 &&
        words[a + 2] === w2 && words[a + 3] === w3 && this.family[r] === family
      ) return r;
      i = (i + 1) & mask;
    }
    const r = this.#n++;
    if (r === this.port.length) this.#growRows();
    slots[i] = r;
    this.family[r] = family;
    const b = 4 * r;
    this.words[b] = w0, this.words[b + 1] = w1, this.words[b + 2] = w2, this.words[b + 3] = w3;
    this.port[r] = port;
    if (2 * (r + 1) > mask) this.#growSlots();
    return r;
  }

  #growRows(): void {
    const size = 2 * this.port.length;
    const family = new Uint8Array(size), words = new Uint32Array(4 * size);
    const port = new Uint16Array(size);
    family.set(this.family), words.set(this.words), port.set(this.port);
    this.family = family, this.words = words, this.port = port;
  }

  #growSlots(): void {
    const size = 2 * this.#slot.length;
    this.#mask = size - 1;
    const slots = this.#slot = new Int32Array(size).fill(-1);
    const words = this.words;
    for (let r = 0; r < this.#n; r++) {
      const a = 4 * r;
      let i = RemoteIndex.#hash(words[a], words[a + 1], words[a + 2], words[a + 3], this.port[r]) &
        this.#mask;
      while (slots[i] >= 0) i = (i + 1) & this.#mask;
      slots[i] = r;
    }
  }

  /** `ip:port` of remote `r`. */
  name(r: number): string {
    const bytes = new Uint8Array(this.words.buffer, 16 * r, 16);
    return joinHostPort(
      this.family[r] === 4 ? formatIPv4(bytes) : formatIPv6(bytes),
      this.port[r],
    );
  }
}

/** Sums of a kind of group, by group index (grown as groups are seen). */
class Sums {
  connections = new Float64Array(64);
  bytesSent = new Float64Array(64);
  bytesReceived = new Float64Array(64);
  retransmits = new Float64Array(64);
  segmentsOut = new Float64Array(64);

  /** Makes room for group `g`. */
  fit(g: number): void {
    if (g < this.connections.length) return;
    const size = Math.max(2 * this.connections.length, g + 1);
    for (const key of Sums.#KEYS) {
      const grown = new Float64Array(size);
      grown.set(this[key]);
      this[key] = grown;
    }
  }

  static #KEYS = [
    "connections",
    "bytesSent",
    "bytesReceived",
    "retransmits",
    "segmentsOut",
  ] as const;

  /** The `limit` groups of `n` with the most connections, ties in index (first seen) order. */
  top(n: number, limit: number): number[] {
    const c = this.connections, best: number[] = [];
    for (let g = 0; g < n; g++) {
      if (best.length === limit && c[g] <= c[best[limit - 1]]) continue;
      let j = Math.min(best.length, limit - 1);
      for (; j > 0 && c[g] > c[best[j - 1]]; j--) best[j] = best[j - 1];
      best[j] = g;
    }
    return best;
  }
}

/** What the pass over the window's rows keeps: per row, in row order. */
interface Rows {
  n: number;
  remote: Int32Array;
  process: Int32Array;
  /** rounded duration in ms, NaN when the start is not known */
  duration: Float64Array;
  outcome: Uint8Array;
  remotes: RemoteIndex;
  remoteSums: Sums;
  /** pid and command id of each process index */
  processes: { pid: number; comm: number }[];
  processSums: Sums;
  totals: { bytesSent: number; bytesReceived: number; retransmits: number; segmentsOut: number };
  byAttr: Map<number, number>;
}

/** The state of a pass, fed a slot range at a time. */
class Pass implements Rows {
  n = 0;
  remote: Int32Array;
  process: Int32Array;
  duration: Float64Array;
  outcome: Uint8Array;
  remotes = new RemoteIndex();
  remoteSums = new Sums();
  processes: { pid: number; comm: number }[] = [];
  processSums = new Sums();
  totals = { bytesSent: 0, bytesReceived: 0, retransmits: 0, segmentsOut: 0 };
  byAttr = new Map<number, number>();
  #processIds = new Map<number, number>(); // pid * 2^21 + comm -> process index
  #processIdsWide = new Map<string, number>(); // comm ids past 2^21
  // the previous row's keys and groups
  #pid = -1;
  #comm = -1;
  #p = -1;
  #family = -1;
  #w = [0, 0, 0, 0];
  #port = -1;
  #r = -1;
  #attr = -1;
  #attrCount = 0;

  constructor(capacity: number) {
    this.remote = new Int32Array(capacity);
    this.process = new Int32Array(capacity);
    this.duration = new Float64Array(capacity);
    this.outcome = new Uint8Array(capacity);
  }

  #processOf(pid: number, comm: number): number {
    let p: number | undefined;
    if (comm < 2097152) {
      const key = pid * 2097152 + comm;
      p = this.#processIds.get(key);
      if (p === undefined) this.#processIds.set(key, p = this.#newProcess(pid, comm));
    } else {
      const key = `${pid} ${comm}`;
      p = this.#processIdsWide.get(key);
      if (p === undefined) this.#processIdsWide.set(key, p = this.#newProcess(pid, comm));
    }
    return p;
  }

  #newProcess(pid: number, comm: number): number {
    const p = this.processes.length;
    this.processes.push({ pid, comm });
    this.processSums.fit(p);
    return p;
  }

  /** Reads the rows at slots `[from, to)` of `table`, that `match` (if given) holds for. */
  add(
    table: EventTable<Columns>,
    from: number,
    to: number,
    filter: RowFilter,
  ): void {
    const c = table.cols;
    const pids = c.pid as Uint32Array, comms = c.comm as Uint32Array;
    const families = c.family as Uint8Array, ports = c.dport as Uint16Array;
    const daddr = c.daddr as Uint8Array;
    const words = new Uint32Array(daddr.buffer, daddr.byteOffset, daddr.length >>> 2);
    const ts = c.ts as Float64Array, start = c.start as Float64Array;
    const sent = c.bytes_sent as Float64Array, received = c.bytes_received as Float64Array;
    const retrans = c.retrans as Uint32Array, segs = c.segs_out as Uint32Array;
    const outcomes = c.outcome as Uint8Array, attrs = c.attr as Uint32Array;
    const { pid, comm, match } = filter;
    const totals = this.totals, rs = this.remoteSums, ps = this.processSums;
    const remoteOf = this.remote, processOf = this.process;
    const durations = this.duration, outcomeOf = this.outcome;
    // the previous row's keys and groups, in locals while the loop runs
    let lastPid = this.#pid, lastComm = this.#comm, p = this.#p;
    let lastFamily = this.#family, lastPort = this.#port, r = this.#r;
    let l0 = this.#w[0], l1 = this.#w[1], l2 = this.#w[2], l3 = this.#w[3];
    let lastAttr = this.#attr, attrCount = this.#attrCount;
    let n = this.n;
    let bytesSent = totals.bytesSent, bytesReceived = totals.bytesReceived;
    let retransmits = totals.retransmits, segmentsOut = totals.segmentsOut;
    let rc = rs.connections, rsent = rs.bytesSent, rrecv = rs.bytesReceived;
    let rre = rs.retransmits, rseg = rs.segmentsOut;
    let pc = ps.connections, psent = ps.bytesSent, precv = ps.bytesReceived;
    let pre = ps.retransmits, pseg = ps.segmentsOut;
    for (let s = from; s < to; s++) {
      if ((pid >= 0 && pids[s] !== pid) || (comm >= 0 && comms[s] !== comm)) continue;
      if (match !== null && !match(s)) continue;
      const i = n++;
      // the process
      const rowPid = pids[s], rowComm = comms[s];
      if (rowPid !== lastPid || rowComm !== lastComm) {
        p = this.#processOf(rowPid, rowComm);
        lastPid = rowPid, lastComm = rowComm;
        pc = ps.connections, psent = ps.bytesSent, precv = ps.bytesReceived;
        pre = ps.retransmits, pseg = ps.segmentsOut;
      }
      // the remote; an IPv4 one is its first word (what its name is made of)
      const family = families[s], port = ports[s], a = 4 * s;
      const v6 = family !== 4;
      const w0 = words[a], w1 = v6 ? words[a + 1] : 0, w2 = v6 ? words[a + 2] : 0;
      const w3 = v6 ? words[a + 3] : 0;
      if (
        port !== lastPort || w0 !== l0 || w1 !== l1 || w2 !== l2 || w3 !== l3 ||
        family !== lastFamily
      ) {
        r = this.remotes.of(family, w0, w1, w2, w3, port);
        rs.fit(r);
        lastFamily = family, lastPort = port;
        l0 = w0, l1 = w1, l2 = w2, l3 = w3;
        rc = rs.connections, rsent = rs.bytesSent, rrecv = rs.bytesReceived;
        rre = rs.retransmits, rseg = rs.segmentsOut;
      }
      remoteOf[i] = r;
      processOf[i] = p;
      durations[i] = roundMicros(ts[s] - start[s]) + 0; // + 0: never -0 (it sorts last in quantilesOf)
      outcomeOf[i] = outcomes[s];
      const bs = sent[s], br = received[s], rt = retrans[s], so = segs[s];
      bytesSent += bs, bytesReceived += br, retransmits += rt, segmentsOut += so;
      rc[r]++, rsent[r] += bs, rrecv[r] += br, rre[r] += rt, rseg[r] += so;
      pc[p]++, psent[p] += bs, precv[p] += br, pre[p] += rt, pseg[p] += so;
      const attr = attrs[s];
      if (attr === lastAttr) attrCount++;
      else {
        if (attrCount > 0) this.byAttr.set(lastAttr, (this.byAttr.get(lastAttr) ?? 0) + attrCount);
        lastAttr = attr, attrCount = 1;
      }
    }
    this.n = n;
    totals.bytesSent = bytesSent, totals.bytesReceived = bytesReceived;
    totals.retransmits = retransmits, totals.segmentsOut = segmentsOut;
    this.#pid = lastPid, this.#comm = lastComm, this.#p = p;
    this.#family = lastFamily, this.#port = lastPort, this.#r = r;
    this.#w[0] = l0, this.#w[1] = l1, this.#w[2] = l2, this.#w[3] = l3;
    this.#attr = lastAttr, this.#attrCount = attrCount;
  }

  #flushAttr(): void {
    if (this.#attrCount === 0) return;
    this.byAttr.set(this.#attr, (this.byAttr.get(this.#attr) ?? 0) + this.#attrCount);
    this.#attrCount = 0;
  }

  /** Ends the pass: what it read. */
  done(): Rows {
    this.#flushAttr();
    return this;
  }
}

/** Outcome counts ordered by count, ties in the order first seen (as the row scan made them). */
function outcomeCounts(counts: Float64Array, first: Float64Array): Record<string, number> {
  const seen: number[] = [];
  for (let o = 0; o < counts.length; o++) if (counts[o] > 0) seen.push(o);
  seen.sort((a, b) => first[a] - first[b]).sort((a, b) => counts[b] - counts[a]);
  return Object.fromEntries(seen.map((o) => [OUTCOMES[o], counts[o]]));
}

/** Nearest-rank quantiles of the first `n` values (any sign). */
function quantiles(values: Float64Array, n: number): (number | null)[] {
  let negative = false;
  for (let i = 0; i < n && !negative; i++) negative = values[i] < 0;
  if (!negative) return quantilesOf(values, n, QUANTILES);
  const sorted = values.slice(0, n).sort();
  return QUANTILES.map((q) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
}

interface Group {
  connections: number;
  bytes_sent: number;
  bytes_received: number;
  retransmits: number;
  segments_out: number;
  retransmit_rate: number | null;
  duration_ms: { p50: number | null; p90: number | null; p99: number | null };
  by_outcome: Record<string, number>;
}

/** The outcomes and quantiles of the rows whose group (by `of`) is marked in `wanted`. */
function detail(rows: Rows, of: Int32Array | null, wanted: Int32Array | null, groups: number) {
  const k = OUTCOMES.length;
  const counts = new Float64Array(groups * k), first = new Float64Array(groups * k).fill(Infinity);
  const durations: Float64Array[] = [];
  const fill = new Int32Array(groups);
  const sizes = new Int32Array(groups);
  for (let i = 0; i < rows.n; i++) {
    const g = of === null ? 0 : wanted![of[i]];
    if (g < 0) continue;
    if (!Number.isNaN(rows.duration[i])) sizes[g]++;
  }
  for (let g = 0; g < groups; g++) durations.push(new Float64Array(sizes[g]));
  for (let i = 0; i < rows.n; i++) {
    const g = of === null ? 0 : wanted![of[i]];
    if (g < 0) continue;
    const at = g * k + rows.outcome[i];
    if (counts[at]++ === 0) first[at] = i;
    const d = rows.duration[i];
    if (!Number.isNaN(d)) durations[g][fill[g]++] = d;
  }
  return Array.from({ length: groups }, (_, g) => {
    const [p50, p90, p99] = quantiles(durations[g], durations[g].length);
    return {
      duration_ms: { p50, p90, p99 },
      by_outcome: outcomeCounts(
        counts.subarray(g * k, g * k + k),
        first.subarray(g * k, g * k + k),
      ),
    };
  });
}

function group(
  sums: {
    connections: number;
    bytesSent: number;
    bytesReceived: number;
    retransmits: number;
    segmentsOut: number;
  },
  more: { duration_ms: Group["duration_ms"]; by_outcome: Group["by_outcome"] },
): Group {
  return {
    connections: sums.connections,
    bytes_sent: sums.bytesSent,
    bytes_received: sums.bytesReceived,
    retransmits: sums.retransmits,
    segments_out: sums.segmentsOut,
    retransmit_rate: sums.segmentsOut ? sums.retransmits / sums.segmentsOut : null,
    duration_ms: more.duration_ms,
    by_outcome: more.by_outcome,
  };
}

function sumsOf(s: Sums, g: number) {
  return {
    connections: s.connections[g],
    bytesSent: s.bytesSent[g],
    bytesReceived: s.bytesReceived[g],
    retransmits: s.retransmits[g],
    segmentsOut: s.segmentsOut[g],
  };
}

/** The top groups of one kind, in order, with their details. */
function topGroups(rows: Rows, of: Int32Array, sums: Sums, n: number) {
  const top = sums.top(n, TOP);
  const wanted = new Int32Array(n).fill(-1);
  top.forEach((g, j) => wanted[g] = j);
  const details = detail(rows, of, wanted, top.length);
  return top.map((g, j) => ({ g, group: group(sumsOf(sums, g), details[j]) }));
}

function answer(rows: Rows, store: Store) {
  const [all] = detail(rows, null, null, 1);
  return {
    ...group({ connections: rows.n, ...rows.totals }, all),
    by_remote: topGroups(rows, rows.remote, rows.remoteSums, rows.remotes.size).map((
      { g, group },
    ) => ({ remote: rows.remotes.name(g), ...group })),
    by_process: topGroups(rows, rows.process, rows.processSums, rows.processes.length).map((
      { g, group },
    ) => ({
      pid: rows.processes[g].pid,
      command: store.strings.get(rows.processes[g].comm),
      ...group,
    })),
    ...attributionCounts(store, rows.byAttr),
  };
}

/** The tcp_life summary of the rows of `table` inside `query` (the program's `summarize`). */
export function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  const t = table as unknown as EventTable;
  const [lo, hi] = timeRange(t, query);
  const pass = new Pass(hi - lo);
  const filter = rowFilterOf(query, store);
  if (filter) { for (const [from, to] of slotRanges(t, lo, hi)) pass.add(table, from, to, filter); }
  return answer(pass.done(), store);
}

/**
 * {@linkcode summarize} in slices of {@linkcode SLICE_ROWS} rows that give the event loop back;
 * the same answer when nothing is evicted meanwhile (rows evicted are left out: the window then
 * says it is not complete).
 */
export async function summarizeSliced(
  table: EventTable<Columns>,
  query: SummaryQuery,
  store: Store,
  slicer: Slicer,
) {
  const t = table as unknown as EventTable;
  const [lo, hi] = timeRange(t, query);
  const pass = new Pass(hi - lo);
  const filter = rowFilterOf(query, store);
  if (filter) {
    await forEachSlotRangeSliced(
      t,
      query,
      (from, to) => pass.add(table, from, to, filter),
      slicer,
      SLICE_ROWS,
    );
  }
  return answer(pass.done(), store);
}
