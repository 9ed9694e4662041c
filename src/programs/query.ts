/**
 * Filters shared by every program's events: time window (binary search), pid and command.
 *
 * @module
 */

import type { EventTable, Store } from "../store/mod.ts";

/** Which events a query wants; absent fields match everything. */
export interface EventFilter {
  pid?: number;
  command?: string;
  /** Unix ms, inclusive. */
  since?: number;
  /** Unix ms, inclusive. */
  until?: number;
}

/** A summary's window: always bounded. */
export interface SummaryQuery extends EventFilter {
  since: number;
  until: number;
}

/** A row matcher bound to a table; `null` when nothing can match (an unknown command). */
function matcher(
  table: EventTable,
  store: Store,
  filter: EventFilter,
): ((slot: number) => boolean) | null {
  const pids = table.cols.pid;
  const comms = table.cols.comm;
  const pid = filter.pid;
  let comm = -1;
  if (filter.command !== undefined) {
    comm = store.strings.find(filter.command);
    if (comm < 0) return null;
  }
  if (pid !== undefined && comm >= 0) return (s) => pids[s] === pid && comms[s] === comm;
  if (pid !== undefined) return (s) => pids[s] === pid;
  if (comm >= 0) return (s) => comms[s] === comm;
  return () => true;
}

/** The rows `[lo, hi)` inside the filter's time window. */
export function timeRange(table: EventTable, filter: EventFilter): [number, number] {
  const lo = filter.since === undefined ? 0 : table.lowerBound(filter.since);
  const hi = filter.until === undefined ? table.length : table.upperBound(filter.until);
  return [lo, Math.max(lo, hi)];
}

/** Slots of up to `limit` matching rows, newest first. */
export function newestRows(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  limit: number,
): number[] {
  const match = matcher(table, store, filter);
  const out: number[] = [];
  if (!match) return out;
  const [lo, hi] = timeRange(table, filter);
  for (let i = hi - 1; i >= lo && out.length < limit; i--) {
    const slot = table.slot(i);
    if (match(slot)) out.push(slot);
  }
  return out;
}

/** Calls `fn` with the slot of every matching row, oldest first. Returns how many matched. */
export function forEachRow(
  table: EventTable,
  store: Store,
  filter: EventFilter,
  fn: (slot: number) => void,
): number {
  const match = matcher(table, store, filter);
  if (!match) return 0;
  const [lo, hi] = timeRange(table, filter);
  let n = 0;
  for (let i = lo; i < hi; i++) {
    const slot = table.slot(i);
    if (match(slot)) {
      fn(slot);
      n++;
    }
  }
  return n;
}

/** Counts of values as a plain object, largest first. */
export function sortedCounts(counts: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** Adds `n` (default one) to `key` in `counts`. */
export function bump(counts: Map<string, number>, key: string, n = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** The value at quantile `q` (0..1) of sorted `values`, or null when empty. */
export function quantile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

/** ISO 8601 with microseconds from Unix ms. */
export function isoMicros(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.round((ms - whole) * 1000);
  const iso = new Date(whole).toISOString(); // ...T12:34:56.789Z
  return `${iso.slice(0, -1)}${String(Math.min(micros, 999)).padStart(3, "0")}Z`;
}
