/**
 * dns: the store columns of a query that ended, and how a row's packed fields read back.
 *
 * @module
 */

import { ATTRIBUTION_COLUMNS } from "../../cgroup/mod.ts";
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
  /** the answers as `encodeAnswers` writes them (interned: answer sets repeat) */
  answers: "str",
  ...ATTRIBUTION_COLUMNS,
} as const;

export type Columns = typeof columns;

/** `rcode` of a query without an answer. */
export const NO_RCODE = 0xffff;
/** Bits of the `flags` column. */
export const FLAG_TC = 1, FLAG_AA = 2, FLAG_INCOMPLETE = 4, FLAG_OWNER = 8;

function address(family: number, bytes: Uint8Array): string {
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/**
 * Answers as one string to intern: `name\ttype\tdata` lines (cheaper than JSON on ingest; names
 * and data hold no tab or newline: the parser escapes control bytes, TXT strings are quoted).
 */
export function encodeAnswers(answers: readonly DnsAnswer[]): string {
  let text = "";
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    text += (i ? "\n" : "") + a.name + "\t" + a.type + "\t" + a.data;
  }
  return text;
}

/** The answers of row `s`. */
export function answersOf(
  table: EventTable<Columns>,
  s: number,
  store: Store,
): Omit<DnsAnswer, "ttl">[] {
  const id = table.cols.answers[s];
  if (id === 0) return [];
  return store.strings.get(id).split("\n").map((line) => {
    const [name, type, data] = line.split("\t");
    return { name, type, data };
  });
}

/** The server of row `s` as ip and port. */
export function serverOf(table: EventTable<Columns>, s: number): { ip: string; port: number } {
  return {
    ip: address(table.cols.family[s], table.bytes16("server", s)),
    port: table.cols.server_port[s],
  };
}
