/**
 * The packet_drop summary: drops in a window by reason, location, protocol, L4 protocol,
 * interface and owner. Without a filter the reasons and locations come from the in-kernel
 * counters (every drop, also those the ring had no room for); with one, from the stored events.
 *
 * The events are read a column at a time with no string per row: each breakdown counts by its
 * numeric key (protocol number, interface id, pid and command id, ...), and a row with the same
 * key as the row before (a flood: one sender, one reason, one place) only adds to a run, so a
 * Map is touched once per run. Names are made once per key at the end. Without a filter, the
 * window's whole blocks come from per-block aggregates (an unfiltered pass over the block, kept
 * until a row of it is evicted), and only the rows at both ends are read. The pass can go in
 * slices ({@linkcode summarizeSliced}) by sequence number, like tcp_life's. It answers what a scan
 * building strings per row did (the test keeps that scan as its oracle): counts ordered by size,
 * ties in the order first seen.
 *
 * @module
 */

import { attributionCounts } from "../../cgroup/mod.ts";
import { kernelAddress } from "../../kernel/addresses.ts";
import { kernelSymbols } from "../../kernel/kallsyms.ts";
import { etherTypeName } from "../../net/ethernet.ts";
import { AF_INET, AF_INET6, protocolName } from "../../net/names.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import { BlockCache, splitWindow } from "../blocks.ts";
import {
  bump,
  forEachSlotRangeSliced,
  type RowFilter,
  rowFilterOf,
  type Slicer,
  slotRanges,
  sortedCounts,
  type SummaryQuery,
  timeRange,
} from "../query.ts";
import type { columns } from "./mod.ts";
import { kernelDropReasons } from "./reasons.ts";

type Columns = typeof columns;

/** Counter keys in the store's counter log: `drop <reason code> <location hex>`. */
export const DROP_KEY = "drop ";
/** The `by_location` key of drops whose address has no symbol (and addresses are not exposed). */
export const UNKNOWN_LOCATION = "unknown";
/** Rows read between two yields of {@linkcode summarizeSliced}. */
const SLICE_ROWS = 1 << 16;

/** Counts by a numeric key, in the order keys were first seen, taken a run at a time. */
class RunCounts {
  readonly counts = new Map<number, number>();
  #key = NaN;
  #n = 0;

  /** Adds one row of `key`. */
  add(key: number): void {
    if (key === this.#key) {
      this.#n++;
      return;
    }
    this.flush();
    this.#key = key;
    this.#n = 1;
  }

  /** Puts the open run into the counts. */
  flush(): void {
    if (this.#n === 0) return;
    this.counts.set(this.#key, (this.counts.get(this.#key) ?? 0) + this.#n);
    this.#n = 0;
  }

  /** Adds the counts of `later` (of rows after these): keys new here go last, in its order. */
  merge(later: RunCounts): void {
    this.flush();
    later.flush();
    for (const [key, n] of later.counts) this.counts.set(key, (this.counts.get(key) ?? 0) + n);
  }

  /** The counts by name (keys sharing a name add up), ordered as `sortedCounts` orders. */
  named(name: (key: number) => string): Record<string, number> {
    this.flush();
    const byName = new Map<string, number>();
    for (const [key, n] of this.counts) bump(byName, name(key), n);
    return sortedCounts(byName);
  }
}

/**
 * The state of a pass over the window's rows, fed a slot range at a time; an unfiltered one
 * over a whole block is that block's aggregate.
 */
export class Pass {
  events = 0;
  unattributed = 0;
  readonly reason = new RunCounts();
  /** by reason, then location: a reason code and a location's two words in one Map key */
  readonly location = new Map<string, number>();
  #locKey = "";
  #locLo = -1;
  #locHi = -1;
  #locN = 0;
  readonly protocol = new RunCounts();
  readonly l4 = new RunCounts(); // ipver * 256 + l4 protocol
  readonly iface = new RunCounts(); // interface name id
  readonly owner = new RunCounts(); // pid * 2^21 + command id
  readonly ownerWide = new Map<string, number>(); // command ids past 2^21
  readonly attr = new RunCounts();
  readonly filtered: boolean;

  constructor(filtered: boolean) {
    this.filtered = filtered;
  }

  #flushLocation(): void {
    if (this.#locN === 0) return;
    this.location.set(this.#locKey, (this.location.get(this.#locKey) ?? 0) + this.#locN);
    this.#locN = 0;
  }

  add(
    table: EventTable<Columns>,
    from: number,
    to: number,
    filter: RowFilter,
  ): void {
    const c = table.cols;
    const pids = c.pid as Uint32Array, comms = c.comm as Uint32Array;
    const reasons = c.reason as Uint32Array, locLo = c.loc_lo as Uint32Array;
    const locHi = c.loc_hi as Uint32Array, protocols = c.protocol as Uint16Array;
    const ipver = c.ipver as Uint8Array, l4 = c.l4 as Uint8Array;
    const ifnames = c.ifname as Uint32Array, owned = c.has_owner as Uint8Array;
    const attrs = c.attr as Uint32Array;
    const { pid, comm, match } = filter;
    const filtered = this.filtered;
    for (let s = from; s < to; s++) {
      if ((pid >= 0 && pids[s] !== pid) || (comm >= 0 && comms[s] !== comm)) continue;
      if (match !== null && !match(s)) continue;
      this.events++;
      this.attr.add(attrs[s]);
      if (filtered) {
        this.reason.add(reasons[s]);
        const lo = locLo[s], hi = locHi[s];
        if (lo !== this.#locLo || hi !== this.#locHi) {
          this.#flushLocation();
          this.#locLo = lo, this.#locHi = hi;
          this.#locKey = `${hi} ${lo}`;
        }
        this.#locN++;
      }
      this.protocol.add(protocols[s]);
      if (ipver[s]) this.l4.add(ipver[s] * 256 + l4[s]);
      this.iface.add(ifnames[s]);
      if (!owned[s]) {
        this.unattributed++;
        continue;
      }
      if (comms[s] < 2097152) this.owner.add(pids[s] * 2097152 + comms[s]);
      else {
        this.owner.flush();
        const key = `${pids[s]} ${comms[s]}`;
        this.ownerWide.set(key, (this.ownerWide.get(key) ?? 0) + 1);
      }
    }
  }

  /**
   * Adds an unfiltered pass over rows after these (a block's aggregate): every count as if its
   * rows had been read here, keys first seen there ordered after those seen here.
   */
  merge(later: Pass): void {
    this.events += later.events;
    this.unattributed += later.unattributed;
    this.protocol.merge(later.protocol);
    this.l4.merge(later.l4);
    this.iface.merge(later.iface);
    this.owner.merge(later.owner);
    for (const [key, n] of later.ownerWide) {
      this.ownerWide.set(key, (this.ownerWide.get(key) ?? 0) + n);
    }
    this.attr.merge(later.attr);
  }

  /** The location counts by name, ordered as `sortedCounts` orders. */
  locations(): Map<string, number> {
    this.#flushLocation();
    const symbols = kernelSymbols();
    const byName = new Map<string, number>();
    for (const [key, n] of this.location) {
      const [hi, lo] = key.split(" ").map(Number);
      const loc = (BigInt(hi) << 32n) | BigInt(lo);
      bump(byName, symbols.resolve(loc) ?? kernelAddress(loc) ?? UNKNOWN_LOCATION, n);
    }
    return byName;
  }
}

function answer(pass: Pass, query: SummaryQuery, store: Store) {
  const reasons = kernelDropReasons();
  const symbols = kernelSymbols();
  let byReason: Record<string, number>;
  let byLocation: Map<string, number>;
  let total = pass.events;
  if (pass.filtered) {
    byReason = pass.reason.named((code) => reasons.label(code));
    byLocation = pass.locations();
  } else {
    total = 0;
    const reasonCounts = new Map<string, number>();
    byLocation = new Map();
    const counted = store.counters("packet_drop").sumBetween(query.since, query.until, DROP_KEY);
    for (const [key, n] of counted) {
      const [, reason, loc] = key.split(" ");
      const addr = BigInt("0x" + loc);
      bump(reasonCounts, reasons.label(Number(reason)), n);
      bump(byLocation, symbols.resolve(addr) ?? kernelAddress(addr) ?? UNKNOWN_LOCATION, n);
      total += n;
    }
    byReason = sortedCounts(reasonCounts);
  }
  pass.owner.flush();
  const owners: { pid: number; command: string; count: number; first: number }[] = [];
  for (const [key, count] of pass.owner.counts) {
    const pid = Math.floor(key / 2097152), comm = key % 2097152;
    owners.push({ pid, command: store.strings.get(comm), count, first: owners.length });
  }
  for (const [key, count] of pass.ownerWide) {
    const [pid, comm] = key.split(" ").map(Number);
    owners.push({ pid, command: store.strings.get(comm), count, first: owners.length });
  }
  pass.attr.flush();
  return {
    total_drops: total,
    counts_source: pass.filtered ? "events" as const : "kernel" as const,
    events_in_window: pass.events,
    by_reason: byReason,
    by_location: sortedCounts(byLocation),
    by_protocol: pass.protocol.named((code) => etherTypeName(code)),
    by_l4_protocol: pass.l4.named((key) =>
      protocolName((key >> 8) === 4 ? AF_INET : AF_INET6, key & 255, 1) ?? "?"
    ),
    by_interface: pass.iface.named((id) => store.strings.get(id) || "none"),
    by_owner: owners.sort((a, b) => b.count - a.count || a.first - b.first).slice(0, 50)
      .map(({ pid, command, count }) => ({ pid, command, count })),
    unattributed: pass.unattributed,
    ...attributionCounts(store, pass.attr.counts),
  };
}

function isFiltered(query: SummaryQuery): boolean {
  return query.pid !== undefined || query.command !== undefined || (query.match ?? null) !== null;
}

/** The per-block aggregates of each table: unfiltered passes over its whole blocks. */
const blocksOf = new WeakMap<EventTable<Columns>, BlockCache<Pass>>();

/** How {@linkcode summarizeWith} works. */
export interface SummaryOptions {
  /**
   * The per-block aggregates to use: by default the table's own (16384-row blocks); `null`
   * reads every row of the window instead (what a pid, command or field filter does anyway).
   */
  cache?: BlockCache<Pass> | null;
}

function cacheOf(table: EventTable<Columns>, options: SummaryOptions): BlockCache<Pass> | null {
  if (options.cache !== undefined) return options.cache;
  let cache = blocksOf.get(table);
  if (!cache) blocksOf.set(table, cache = new BlockCache());
  return cache;
}

/** The unfiltered pass over rows `[lo, hi)` (0 = oldest) of `table`, its runs put in the counts. */
function passOver(table: EventTable<Columns>, [lo, hi]: [number, number], into: Pass): Pass {
  const every = { pid: -1, comm: -1, match: null };
  for (const [from, to] of slotRanges(table as unknown as EventTable, lo, hi)) {
    into.add(table, from, to, every);
  }
  return into;
}

function blockPass(table: EventTable<Columns>): (lo: number, hi: number) => Pass {
  return (lo, hi) => {
    const part = passOver(table, [lo, hi], new Pass(false));
    part.reason.flush(), part.protocol.flush(), part.l4.flush(), part.iface.flush();
    part.owner.flush(), part.attr.flush();
    return part;
  };
}

/**
 * The packet_drop summary of the rows of `table` inside `query`, with its pid, command and field
 * filters. Without a filter, the window's whole blocks of rows (see ../blocks.ts) are added up
 * from an unfiltered pass cached per block, and only the rows at its two ends are read: the
 * same counts in the same order, since a block's counts keep the order their keys were first
 * seen in and the parts are added in row order.
 *
 * @example
 * ```ts
 * summarizeWith(table, { since, until }, store, { cache: new BlockCache<Pass>(1024) });
 * ```
 */
export function summarizeWith(
  table: EventTable<Columns>,
  query: SummaryQuery,
  store: Store,
  options: SummaryOptions = {},
) {
  const t = table as unknown as EventTable;
  const filtered = isFiltered(query);
  const filter = rowFilterOf(query, store);
  const cache = cacheOf(table, options);
  if (!filter || filtered || cache === null) {
    const pass = new Pass(filtered);
    if (filter) {
      const [lo, hi] = timeRange(t, query);
      for (const [from, to] of slotRanges(t, lo, hi)) pass.add(table, from, to, filter);
    }
    return answer(pass, query, store);
  }
  cache.sync(t);
  const split = splitWindow(table.appended - table.length, timeRange(t, query), cache);
  const pass = passOver(table, split.head, new Pass(false));
  const compute = blockPass(table);
  for (let b = split.blocks[0]; b < split.blocks[1]; b++) pass.merge(cache.get(b, compute));
  return answer(passOver(table, split.tail, pass), query, store);
}

/** The packet_drop summary of the rows of `table` inside `query` (the program's `summarize`). */
export function summarize(table: EventTable<Columns>, query: SummaryQuery, store: Store) {
  return summarizeWith(table, query, store);
}

/**
 * {@linkcode summarizeWith} in slices that give the event loop back: a filtered pass reads
 * {@linkcode SLICE_ROWS} rows at a time, an unfiltered one computes missing block aggregates one
 * by one. The same answer when nothing is evicted meanwhile (rows evicted are left out: the
 * window then says it is not complete).
 */
export async function summarizeSliced(
  table: EventTable<Columns>,
  query: SummaryQuery,
  store: Store,
  slicer: Slicer,
  options: SummaryOptions = {},
) {
  const t = table as unknown as EventTable;
  const filtered = isFiltered(query);
  const filter = rowFilterOf(query, store);
  const cache = cacheOf(table, options);
  if (!filter || filtered || cache === null) {
    const pass = new Pass(filtered);
    if (filter) {
      await forEachSlotRangeSliced(
        t,
        query,
        (from, to) => pass.add(table, from, to, filter),
        slicer,
        SLICE_ROWS,
      );
    }
    return answer(pass, query, store);
  }
  cache.sync(t);
  const start = table.appended - table.length;
  const split = splitWindow(start, timeRange(t, query), cache);
  // both ends now (the tail is read before any yield, so what follows it is not counted)
  const pass = passOver(table, split.head, new Pass(false));
  const tail = passOver(table, split.tail, new Pass(false));
  for (let b = split.blocks[0]; b < split.blocks[1]; b++) {
    if (slicer.due()) {
      await slicer.next();
      cache.sync(t);
    }
    if (b * cache.blockSize < table.appended - table.length) continue; // evicted meanwhile
    pass.merge(cache.get(b, blockPass(table)));
  }
  pass.merge(tail);
  return answer(pass, query, store);
}
