/**
 * dns: the store columns of a query that ended, and how a row's packed fields read back.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "../../net/address.ts";
import type { EventTable, Store } from "../../store/mod.ts";
import type { DnsAnswer } from "./wire.ts";

export const columns = {
  tid: "u32",
  uid: "u32",
  cgroup: "f64",
  netns: "u32",
  /** when the query was first sent, Unix ms */
  qts: "f64",
  /** ns; NaN on timeout */
  latency: "f64",
  /** the smallest TTL of the answers; NaN without answers */
  ttl: "f64",
  id: "u16",
  qtype: "u16",
  /** the answer's rcode, or NO_RCODE */
  rcode: "u16",
  ancount: "u16",
  server_port: "u16",
  client_port: "u16",
  /** index in OUTCOMES */
  outcome: "u8",
  transport: "u8",
  family: "u8",
  /** FLAG_* bits */
  flags: "u8",
  attempts: "u8",
  server: "bytes16",
  qname: "str",
  /** the answers as JSON (interned: answer sets repeat) */
  answers: "str",
} as const;

export type Columns = typeof columns;

/** `rcode` of a query without an answer. */
export const NO_RCODE = 0xffff;
/** Bits of the `flags` column. */
export const FLAG_TC = 1, FLAG_AA = 2, FLAG_INCOMPLETE = 4, FLAG_OWNER = 8;

function address(family: number, bytes: Uint8Array): string {
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** The answers of row `s`. */
export function answersOf(table: EventTable<Columns>, s: number, store: Store) {
  const id = table.cols.answers[s];
  return id === 0 ? [] : JSON.parse(store.strings.get(id)) as Omit<DnsAnswer, "ttl">[];
}

/** The server of row `s` as ip and port. */
export function serverOf(table: EventTable<Columns>, s: number): { ip: string; port: number } {
  return {
    ip: address(table.cols.family[s], table.bytes16("server", s)),
    port: table.cols.server_port[s],
  };
}
