/**
 * dns: what the program keeps per store across its restarts (the queries waiting for their
 * answer, the names answered for the join), and the counts of what did not become an event.
 *
 * @module
 */

import type { Store } from "../../store/mod.ts";
import { type Asker, NameIndex } from "./name_index.ts";
import type { Pairing } from "./pairing.ts";

/** Counter log of what did not become an event. */
export const NOT_RECORDED = "dns/not_recorded";

/** What the program keeps per store across its restarts. */
export interface State {
  pairing: Pairing | null;
  /** Names by their interned id (compared as numbers per answer). */
  names: NameIndex<number>;
}

const states = new WeakMap<Store, State>();

export function stateOf(store: Store): State {
  let state = states.get(store);
  if (!state) states.set(store, state = { pairing: null, names: new NameIndex<number>() });
  return state;
}

/** Queries of a store waiting for their answer now. */
export function pendingQueries(store: Store): number {
  return states.get(store)?.pairing?.pending ?? 0;
}

/** The counts of what did not become an event, between two Unix ms. */
export function notRecorded(store: Store, since: number, until: number): Map<string, number> {
  return store.counters(NOT_RECORDED).sumBetween(since, until);
}

/**
 * The name a process looked up to reach `ip`: a DNS answer holding it, to the same process (or
 * one of its cgroup) shortly before `asker.tsMs`; null when the dns program saw none.
 *
 * @example destinationName(store, "93.184.215.14", { pid: 4242, cgroupId: 1, tsMs: Date.now() })
 */
export function destinationName(store: Store, ip: string | null, asker: Asker): string | null {
  if (ip === null) return null;
  const id = states.get(store)?.names.nameOf(ip, asker) ?? null;
  return id === null ? null : store.strings.get(id);
}
