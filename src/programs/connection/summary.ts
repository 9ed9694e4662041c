/**
 * connection: the summary of the stored connect() events in a window.
 *
 * Without a pid, command or field filter, the window's whole blocks of rows (see ../blocks.ts) are
 * summed from aggregates cached per block, and only the rows at its two ends are scanned: each
 * aggregate holds its block's counts (by result, protocol, command and destination, each with
 * the sequence number of its first row, so ties still sort by first appearance) and its
 * latencies sorted, from which the quantiles are selected exactly. With a filter, every row of
 * the window is scanned (the field filters' compiled test on each).
 *
 * @module
 */

import { formatIPv4, formatIPv6, joinHostPort } from "../../net/address.ts";
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  familyName,
  protocolName,
  resultName,
} from "../../net/names.ts";
import { attributionCounts, attributionOf } from "../../cgroup/mod.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { BlockCache, quantilesOfSorted, sortNonNegative, splitWindow } from "../blocks.ts";
import { quantilesOf, type Slicer, slotRanges, type SummaryQuery, timeRange } from "../query.ts";
import type { columns } from "./mod.ts";

type Columns = typeof columns;

const EINPROGRESS = -115;

/** Where a stored connect() went: IP and port, unix path, or the family's name. */
export function destinationOf(table: EventTable<Columns>, slot: number, store: Store) {
  const c = table.cols;
  const family = c.family[slot];
  const addr = table.bytes16("addr", slot);
  let ip: string | null = null;
  if (family === AF_INET) ip = formatIPv4(addr);
  else if (family === AF_INET6) ip = formatIPv6(addr);
  const port = ip === null ? null : c.port[slot];
  const path = family === AF_UNIX ? store.strings.get(c.unix_path[slot]) : null;
  const destination = ip !== null ? joinHostPort(ip, port!) : path ?? familyName(family);
  return { ip, port, path, destination };
}

/**
 * Counts by a small integer code with the order of each code's first row, in arrays reused from
 * scan to scan: {@linkcode CodeCounts.take} hands over the codes seen and clears only those.
 */
class CodeCounts {
  readonly count: Float64Array;
  readonly first: Float64Array;
  #seen: number[] = [];
  constructor(size: number) {
    this.count = new Float64Array(size);
    this.first = new Float64Array(size);
  }
  add(code: number, order: number): void {
    if (this.count[code]++ === 0) {
      this.first[code] = order;
      this.#seen.push(code);
    }
  }
  /** The codes seen as `[key(code), count, first]` triples; the counts start again from zero. */
  take(key: (code: number) => number = (code) => code): Float64Array {
    const out = new Float64Array(3 * this.#seen.length);
    this.#seen.forEach((code, i) => {
      out[3 * i] = key(code);
      out[3 * i + 1] = this.count[code];
      out[3 * i + 2] = this.first[code];
      this.count[code] = 0;
    });
    this.#seen.length = 0;
    return out;
  }
}

const ERRNO_CODES = 4096;
const PROTO_UNKNOWN = 0, PROTO_UNIX = 1, PROTO_IP = 2, PROTO_OTHER = 2 + 65536;

/**
 * Destinations counted by (family, address, port) or unix path, in an open-addressing table of
 * typed arrays: no string per row; each distinct destination is formatted once at the end.
 */
class DestinationCounts {
  #mask = 1023;
  rep = new Int32Array(1024).fill(-1); // a row slot holding the destination
  count = new Float64Array(1024);
  failed = new Float64Array(1024);
  first = new Float64Array(1024);
  #used = 0;
  #last = -1;
  constructor(
    readonly family: Uint8Array,
    readonly port: Uint16Array,
    readonly addr: Uint32Array,
    readonly path: Uint32Array,
  ) {}

  #hash(s: number): number {
    const f = this.family[s];
    let h: number;
    if (f === AF_INET) h = this.addr[4 * s] ^ Math.imul(this.port[s], 0x9e3779b1);
    else if (f === AF_INET6) {
      const a = 4 * s;
      h = Math.imul(this.addr[a] ^ this.port[s], 0x9e3779b1) ^ this.addr[a + 1];
      h = Math.imul(h, 0x85ebca6b) ^ this.addr[a + 2];
      h = Math.imul(h, 0xc2b2ae35) ^ this.addr[a + 3];
    } else if (f === AF_UNIX) h = this.path[s] ^ 0x5bd1e995;
    else h = f;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) & this.#mask;
  }

  #same(r: number, s: number): boolean {
    const f = this.family[s];
    if (this.family[r] !== f) return false;
    if (f === AF_INET) {
      return this.port[r] === this.port[s] && this.addr[4 * r] === this.addr[4 * s];
    }
    if (f === AF_INET6) {
      const a = 4 * r, b = 4 * s;
      return this.port[r] === this.port[s] && this.addr[a] === this.addr[b] &&
        this.addr[a + 1] === this.addr[b + 1] && this.addr[a + 2] === this.addr[b + 2] &&
        this.addr[a + 3] === this.addr[b + 3];
    }
    if (f === AF_UNIX) return this.path[r] === this.path[s];
    return true;
  }

  add(s: number, failed: boolean, order: number): void {
    // rows come in bursts to one destination: try the previous row's entry first
    let i = this.#last;
    if (i >= 0 && this.#same(this.rep[i], s)) {
      this.count[i]++;
      if (failed) this.failed[i]++;
      return;
    }
    i = this.#hash(s);
    for (;;) {
      const r = this.rep[i];
      if (r < 0) break;
      if (this.#same(r, s)) {
        this.count[i]++;
        if (failed) this.failed[i]++;
        this.#last = i;
        return;
      }
      i = (i + 1) & this.#mask;
    }
    this.#last = i;
    this.rep[i] = s;
    this.count[i] = 1;
    this.failed[i] = failed ? 1 : 0;
    this.first[i] = order;
    if (++this.#used * 2 > this.#mask) this.#grow();
  }

  #grow(): void {
    const { rep, count, failed, first } = this;
    this.#last = -1;
    const size = rep.length * 2;
    this.#mask = size - 1;
    this.rep = new Int32Array(size).fill(-1);
    this.count = new Float64Array(size);
    this.failed = new Float64Array(size);
    this.first = new Float64Array(size);
    for (let j = 0; j < rep.length; j++) {
      if (rep[j] < 0) continue;
      let i = this.#hash(rep[j]);
      while (this.rep[i] >= 0) i = (i + 1) & this.#mask;
      this.rep[i] = rep[j];
      this.count[i] = count[j];
      this.failed[i] = failed[j];
      this.first[i] = first[j];
    }
  }

  /**
   * The destinations seen as ids (several entries can share one: a family's name) with
   * `[count, failed, first]` triples; the table starts again empty.
   */
  take(id: (slot: number) => number): { ids: Int32Array; counts: Float64Array } {
    const index = new Map<number, number>();
    const counts = new Float64Array(3 * this.#used);
    for (let i = 0; i < this.rep.length; i++) {
      if (this.rep[i] < 0) continue;
      const key = id(this.rep[i]);
      let j = index.get(key);
      if (j === undefined) {
        index.set(key, j = index.size);
        counts[3 * j + 2] = this.first[i];
      } else counts[3 * j + 2] = Math.min(counts[3 * j + 2], this.first[i]);
      counts[3 * j] += this.count[i];
      counts[3 * j + 1] += this.failed[i];
    }
    this.rep.fill(-1);
    this.#used = 0;
    this.#last = -1;
    return { ids: Int32Array.from(index.keys()), counts: counts.slice(0, 3 * index.size) };
  }
}

/**
 * Destination names by id, shared by the parts of one block cache: a part keeps ids, so adding
 * parts up adds numbers in arrays indexed by id. An IPv4 destination is found by its address
 * and port without formatting it again. {@linkcode DestinationNames.compact} forgets the names
 * no part holds any more.
 */
class DestinationNames {
  names: string[] = [];
  #byName = new Map<string, number>();
  #ipv4 = new Map<number, number>(); // address word * 65536 + port -> id
  // scratch of `top`: [count, failed, first] by id
  #sums = new Float64Array(0);

  /** The id of `name`. */
  id(name: string): number {
    let id = this.#byName.get(name);
    if (id === undefined) {
      this.#byName.set(name, id = this.names.length);
      this.names.push(name);
    }
    return id;
  }

  /** The id of the destination of the row at `slot`. */
  ofSlot(table: EventTable<Columns>, slot: number, store: Store, addr: Uint32Array): number {
    const c = table.cols;
    if (c.family[slot] !== AF_INET) return this.id(destinationOf(table, slot, store).destination);
    const key = addr[4 * slot] * 65536 + c.port[slot];
    let id = this.#ipv4.get(key);
    if (id === undefined) {
      id = this.id(destinationOf(table, slot, store).destination);
      this.#ipv4.set(key, id);
    }
    return id;
  }

  /** Numbers again the names that `parts` hold when most names are held by none. */
  compact(parts: Iterable<Part>): void {
    let held = 0;
    for (const part of parts) held += part.destinations.length;
    if (this.names.length <= Math.max(65536, 4 * held)) return;
    const old = this.names;
    this.names = [];
    this.#byName.clear();
    this.#ipv4.clear();
    this.#sums = new Float64Array(0);
    for (const part of parts) {
      const ids = part.destinations;
      for (let i = 0; i < ids.length; i++) ids[i] = this.id(old[ids[i]]);
    }
  }

  /**
   * The `limit` destinations of `parts` with the most rows (ties: the first seen first), with
   * their counts and failures.
   */
  top(parts: Part[], limit: number): { destination: string; count: number; failed: number }[] {
    if (this.#sums.length < 3 * this.names.length) {
      this.#sums = new Float64Array(3 * Math.max(1024, 2 * this.names.length));
    }
    const sums = this.#sums, seen: number[] = [];
    for (const part of parts) {
      const ids = part.destinations, c = part.destinationCounts;
      for (let i = 0; i < ids.length; i++) {
        const at = 3 * ids[i];
        if (sums[at] === 0) {
          seen.push(ids[i]);
          sums[at + 2] = c[3 * i + 2];
        } else if (c[3 * i + 2] < sums[at + 2]) sums[at + 2] = c[3 * i + 2];
        sums[at] += c[3 * i];
        sums[at + 1] += c[3 * i + 1];
      }
    }
    // the best `limit` by insertion: no sort of every destination
    const better = (a: number, b: number) =>
      sums[3 * a] > sums[3 * b] ||
      (sums[3 * a] === sums[3 * b] && sums[3 * a + 2] < sums[3 * b + 2]);
    const best: number[] = [];
    for (const id of seen) {
      if (best.length === limit && !better(id, best[limit - 1])) continue;
      let j = Math.min(best.length, limit - 1);
      for (; j > 0 && better(id, best[j - 1]); j--) best[j] = best[j - 1];
      best[j] = id;
    }
    const out = best.map((id) => ({
      destination: this.names[id],
      count: sums[3 * id],
      failed: sums[3 * id + 1],
    }));
    for (const id of seen) sums[3 * id] = sums[3 * id + 1] = sums[3 * id + 2] = 0;
    return out;
  }
}

/**
 * What a run of rows adds up to. `results` (by `ret`), `protocols` (by protocol code) and
 * `commands` (by command id) are `[key, count, first]` triples, `destinations` ids (of a
 * {@linkcode DestinationNames}) with `[count, failed, first]` triples in `destinationCounts`;
 * `first` is the sequence number of the
 * first row with that key (row `i` is the `appended - length + i`-th ever appended), so merged
 * parts still order ties by first appearance. Latencies are sorted in a cached block's part.
 */
export interface Part {
  n: number;
  ok: number;
  inProgress: number;
  max: number;
  results: Float64Array;
  protocols: Float64Array;
  commands: Float64Array;
  /** by attribution id, `[id, count, first]` triples */
  attributions: Float64Array;
  destinations: Int32Array;
  destinationCounts: Float64Array;
  latencies: Float64Array;
}

/** The scratch counters of one table's scans, reused from scan to scan. */
class Scanner {
  readonly table: EventTable<Columns>;
  readonly cols: EventTable<Columns>["cols"];
  readonly store: Store;
  #errno = new CodeCounts(ERRNO_CODES); // 0: ret 0; n: -n
  #proto = new CodeCounts(PROTO_OTHER + 65536);
  #comm: CodeCounts;
  #attr: CodeCounts;
  #dests: DestinationCounts;

  constructor(table: EventTable<Columns>, store: Store) {
    this.table = table;
    this.cols = table.cols;
    this.store = store;
    this.#comm = new CodeCounts(Math.max(256, 2 * store.strings.size));
    this.#attr = new CodeCounts(Math.max(256, 2 * attributionOf(store).size));
    const c = table.cols, addr = c.addr as Uint8Array;
    this.#dests = new DestinationCounts(
      c.family as Uint8Array,
      c.port as Uint16Array,
      new Uint32Array(addr.buffer, addr.byteOffset, addr.length / 4),
      c.unix_path as Uint32Array,
    );
  }

  /** Whether it can still scan `table` of `store` (the columns and the command ids fit). */
  fits(table: EventTable<Columns>, store: Store): boolean {
    return table === this.table && table.cols === this.cols && store === this.store &&
      store.strings.size <= this.#comm.count.length &&
      attributionOf(store).size <= this.#attr.count.length;
  }

  /**
   * The part of the rows `[lo, hi)` of each of `rows` with this pid and command id (-1: any)
   * that `match` (if given) holds for, its destinations numbered by `names`.
   */
  scan(
    rows: [number, number][],
    filter: {
      pid: number;
      comm: number;
      names: DestinationNames;
      match?: ((slot: number) => boolean) | null;
    },
  ): Part {
    const { pid, comm, names } = filter;
    const match = filter.match ?? null;
    const attrs = this.cols.attr as Uint32Array, byAttr = this.#attr;
    const table = this.table, c = this.cols;
    const pids = c.pid as Uint32Array, comms = c.comm as Uint32Array, rets = c.ret as Int32Array;
    const families = c.family as Uint8Array, types = c.sock_type as Uint8Array;
    const protocols = c.protocol as Uint16Array, latency = c.latency as Float64Array;
    const byErrno = this.#errno, byProto = this.#proto, byComm = this.#comm, dests = this.#dests;
    const oddResults = new Map<number, { n: number; first: number }>(); // ret > 0 or < -4095
    const latencies = new Float64Array(
      rows.reduce((sum, [lo, hi]) => sum + Math.max(0, hi - lo), 0),
    );
    const oldest = table.appended - table.length;
    let n = 0, ok = 0, inProgress = 0, max = -Infinity;
    for (const [lo, hi] of rows) {
      let seq = oldest + lo; // the sequence number of the range's first row
      for (const [from, to] of slotRanges(table as unknown as EventTable, lo, hi)) {
        const base = seq - from; // row at slot s: sequence number base + s
        seq += to - from;
        for (let s = from; s < to; s++) {
          if ((pid >= 0 && pids[s] !== pid) || (comm >= 0 && comms[s] !== comm)) continue;
          if (match !== null && !match(s)) continue;
          const order = base + s;
          const ret = rets[s];
          let bad = true;
          if (ret === 0) ok++, bad = false;
          else if (ret === EINPROGRESS) inProgress++, bad = false;
          if (ret <= 0 && ret > -ERRNO_CODES) byErrno.add(ret === 0 ? 0 : -ret, order); // not -0: a double index is a slow path
          else {
            const e = oddResults.get(ret);
            if (e) e.n++;
            else oddResults.set(ret, { n: 1, first: order });
          }
          const family = families[s], type = types[s], protocol = protocols[s];
          byProto.add(
            type === 0
              ? PROTO_UNKNOWN
              : family === AF_UNIX
              ? PROTO_UNIX
              : family === AF_INET || family === AF_INET6
              ? PROTO_IP + protocol
              : protocol === 0
              ? PROTO_UNKNOWN
              : PROTO_OTHER + protocol,
            order,
          );
          byComm.add(comms[s], order);
          byAttr.add(attrs[s], order);
          dests.add(s, bad, order);
          const l = latency[s];
          latencies[n++] = l;
          if (l > max) max = l;
        }
      }
    }
    const errnos = byErrno.take((e) => e === 0 ? 0 : -e);
    const results = new Float64Array(errnos.length + 3 * oddResults.size);
    results.set(errnos);
    let r = errnos.length;
    for (const [ret, e] of oddResults) {
      results[r++] = ret, results[r++] = e.n, results[r++] = e.first;
    }
    const store = this.store, addr = dests.addr;
    const { ids, counts } = dests.take((slot) => names.ofSlot(table, slot, store, addr));
    return {
      n,
      ok,
      inProgress,
      max,
      results,
      protocols: byProto.take(),
      commands: byComm.take(),
      attributions: byAttr.take(),
      destinations: ids,
      destinationCounts: counts,
      latencies: n === latencies.length ? latencies : latencies.slice(0, n),
    };
  }
}

function protoName(code: number): string {
  return code === PROTO_UNKNOWN
    ? "unknown"
    : code === PROTO_UNIX
    ? "UNIX"
    : code < PROTO_OTHER
    ? protocolName(AF_INET, code - PROTO_IP, 1)!
    : protocolName(0, code - PROTO_OTHER, 1)!;
}

/** Counts by name of `[key, count, first]` triples, largest first, ties in order of appearance. */
function byName(
  parts: Part[],
  field: "results" | "protocols" | "commands" | "attributions",
  name: (key: number) => string,
): Record<string, number> {
  const merged = new Map<string, { n: number; first: number }>();
  for (const part of parts) {
    const t = part[field];
    for (let i = 0; i < t.length; i += 3) {
      const key = name(t[i]);
      const e = merged.get(key);
      if (!e) merged.set(key, { n: t[i + 1], first: t[i + 2] });
      else {
        e.n += t[i + 1];
        e.first = Math.min(e.first, t[i + 2]);
      }
    }
  }
  return Object.fromEntries(
    [...merged].sort((a, b) => b[1].n - a[1].n || a[1].first - b[1].first).map((
      [k, v],
    ) => [k, v.n]),
  );
}

/**
 * The summary of `parts` (in any order; their destinations numbered by `names`) whose latencies
 * have the quantiles `p50, p90, p99`.
 */
function combine(
  parts: Part[],
  [p50, p90, p99]: (number | null)[],
  { store, names }: { store: Store; names: DestinationNames },
) {
  let n = 0, ok = 0, inProgress = 0, max = -Infinity;
  for (const part of parts) {
    n += part.n, ok += part.ok, inProgress += part.inProgress, max = Math.max(max, part.max);
  }
  return {
    total_attempts: n,
    successful: ok,
    in_progress: inProgress,
    failed: n - ok - inProgress,
    by_result: byName(parts, "results", resultName),
    by_protocol: byName(parts, "protocols", protoName),
    by_command: byName(parts, "commands", (id) => store.strings.get(id)),
    ...attributionCounts(store, attributionTotals(parts)),
    top_destinations: names.top(parts, 20),
    latency_ns: { p50, p90, p99, max: n ? max : null },
  };
}

/** Counts by attribution id of `parts`. */
function attributionTotals(parts: Part[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const part of parts) {
    const t = part.attributions;
    for (let i = 0; i < t.length; i += 3) out.set(t[i], (out.get(t[i]) ?? 0) + t[i + 1]);
  }
  return out;
}

const QUANTILES = [0.5, 0.9, 0.99];

/** The destination names of the parts of each block cache. */
const namesOf = new WeakMap<BlockCache<Part>, DestinationNames>();

/** The scanner and block cache of each table. */
const perTable = new WeakMap<
  EventTable<Columns>,
  { scanner: Scanner; cache: BlockCache<Part> }
>();

/** How {@linkcode summarizeWith} works. */
export interface SummaryOptions {
  /** The store of the table (command names, unix paths). */
  store: Store;
  /**
   * The per-block aggregates to use: by default the table's own (16384-row blocks); `null`
   * scans every row of the window instead (what a pid or command filter does anyway).
   */
  cache?: BlockCache<Part> | null;
}

/**
 * The connection summary of the rows of `table` inside `query`'s window, with its pid, command
 * and field filters; see the module documentation for how.
 *
 * @example
 * ```ts
 * const cache = new BlockCache<Part>(1024); // a test's own blocks
 * summarizeWith(table, { since, until }, { store, cache });
 * ```
 */
export function summarizeWith(
  table: EventTable<Columns>,
  query: SummaryQuery,
  options: SummaryOptions,
) {
  const store = options.store;
  let state = perTable.get(table);
  if (!state || !state.scanner.fits(table, store)) {
    state = { scanner: new Scanner(table, store), cache: state?.cache ?? new BlockCache() };
    perTable.set(table, state);
  }
  let comm = -1;
  if (query.command !== undefined) {
    comm = store.strings.find(query.command);
    if (comm < 0) {
      return combine([], QUANTILES.map(() => null), { store, names: new DestinationNames() });
    }
  }
  const pid = query.pid ?? -1;
  const window = timeRange(table as unknown as EventTable, query);
  const scanner = state.scanner;
  const cache = options.cache === undefined ? state.cache : options.cache;
  const match = query.match ?? null;
  if (pid >= 0 || comm >= 0 || match !== null || cache === null) {
    // a scan of its own: its names do not stay
    const names = new DestinationNames();
    const part = scanner.scan([window], { pid, comm, names, match });
    return combine([part], quantilesOf(part.latencies, part.n, QUANTILES), { store, names });
  }
  cache.sync(table as unknown as EventTable);
  let names = namesOf.get(cache);
  if (!names) namesOf.set(cache, names = new DestinationNames());
  names.compact(cache.values());
  const split = splitWindow(table.appended - table.length, window, cache);
  const every = { pid: -1, comm: -1, names };
  const ends = scanner.scan([split.head, split.tail], every);
  const [first, end] = split.blocks;
  if (first === end) {
    return combine([ends], quantilesOf(ends.latencies, ends.n, QUANTILES), { store, names });
  }
  const parts = [ends];
  for (let b = first; b < end; b++) {
    parts.push(cache.get(b, (lo, hi) => {
      const part = scanner.scan([[lo, hi]], every);
      sortNonNegative(part.latencies);
      return part;
    }));
  }
  sortNonNegative(ends.latencies);
  const latencies = parts.map((part) => part.latencies);
  return combine(parts, quantilesOfSorted(latencies, QUANTILES), { store, names });
}

/** The connection summary of the rows of `table` inside `query` (the program's `summarize`). */
export function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  return summarizeWith(table, query, { store });
}

/** Rows scanned between two yields of {@linkcode summarizeSliced}'s filtered scan. */
const SLICE_ROWS = 1 << 16;

/**
 * {@linkcode summarize} cut into slices that give the event loop back (issue 13: a filtered
 * summary over a million rows is tens of milliseconds in one piece, a cold one hundreds): the
 * filtered scan goes {@linkcode SLICE_ROWS} rows at a time, each slice a part of its own
 * (combined as whole blocks are), and missing block aggregates are computed one by one. Between
 * slices rows may be appended or evicted and the table may move to its full size: slices go by
 * sequence number, evicted rows are left out (they are gone, and the window says it is not
 * complete), and the scanner follows the table's columns. The same answer as
 * {@linkcode summarize} when nothing is evicted meanwhile.
 */
export async function summarizeSliced(
  table: EventTable<Columns>,
  query: SummaryQuery,
  store: Store,
  slicer: Slicer,
) {
  const fitted = () => {
    let state = perTable.get(table);
    if (!state || !state.scanner.fits(table, store)) {
      state = { scanner: new Scanner(table, store), cache: state?.cache ?? new BlockCache() };
      perTable.set(table, state);
    }
    return state;
  };
  let state = fitted();
  let comm = -1;
  if (query.command !== undefined) {
    comm = store.strings.find(query.command);
    if (comm < 0) {
      return combine([], QUANTILES.map(() => null), { store, names: new DestinationNames() });
    }
  }
  const pid = query.pid ?? -1;
  const window = timeRange(table as unknown as EventTable, query);
  const start = table.appended - table.length;
  const [seqLo, seqHi] = [start + window[0], start + window[1]];
  // field filters (compileWhere: it follows the table's columns when they move)
  const match = query.match ?? null;
  if (pid >= 0 || comm >= 0 || match !== null) {
    const names = new DestinationNames();
    const parts: Part[] = [];
    for (let from = seqLo; from < seqHi; from += SLICE_ROWS) {
      const oldest = table.appended - table.length;
      const lo = Math.max(from, oldest) - oldest;
      const hi = Math.min(from + SLICE_ROWS, seqHi) - oldest;
      if (hi > lo) {
        const part = state.scanner.scan([[lo, hi]], { pid, comm, names, match });
        sortNonNegative(part.latencies);
        parts.push(part);
      }
      if (from + SLICE_ROWS < seqHi) {
        await slicer.next();
        state = fitted();
      }
    }
    const latencies = parts.map((part) => part.latencies);
    return combine(parts, quantilesOfSorted(latencies, QUANTILES), { store, names });
  }
  const cache = state.cache;
  cache.sync(table as unknown as EventTable);
  let names = namesOf.get(cache);
  if (!names) namesOf.set(cache, names = new DestinationNames());
  names.compact(cache.values());
  const split = splitWindow(start, window, cache);
  const every = { pid: -1, comm: -1, names };
  const ends = state.scanner.scan([split.head, split.tail], every);
  sortNonNegative(ends.latencies);
  const parts = [ends];
  const [first, end] = split.blocks;
  for (let b = first; b < end; b++) {
    if (slicer.due()) {
      await slicer.next();
      state = fitted();
      cache.sync(table as unknown as EventTable);
    }
    const oldest = table.appended - table.length;
    if (b * cache.blockSize < oldest) continue; // evicted meanwhile
    const scanner = state.scanner;
    parts.push(cache.get(b, (lo, hi) => {
      const part = scanner.scan([[lo, hi]], every);
      sortNonNegative(part.latencies);
      return part;
    }));
  }
  const latencies = parts.map((part) => part.latencies);
  return combine(parts, quantilesOfSorted(latencies, QUANTILES), { store, names });
}
