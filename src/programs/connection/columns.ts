/**
 * The connection program's store columns and its batch decoder: the shim's column writer
 * (`ffi/columns_connection.c`) decodes `struct connection_event` records from the ring straight
 * into the columns, and hands back one entry per run of records with the same command and
 * tally key; here each run's command (and an AF_UNIX record's path) is interned and counted.
 *
 * @module
 */

import { ATTRIBUTION_COLUMNS, attributionOf, unitTally } from "../../cgroup/mod.ts";
import { shim } from "../../ffi/shim.ts";
import { AF_UNIX } from "../../net/names.ts";
import type { EventTable } from "../../store/mod.ts";
import type { BatchDecoder, BatchResult, DecoderContext, RecordSource } from "../program.ts";
import { packKey } from "./tally.ts";

/** Store columns beyond ts, pid and comm. */
export const columns = {
  tid: "u32",
  uid: "u32",
  cgroup: "f64",
  ret: "i32",
  latency: "f64",
  family: "u8",
  sock_type: "u8",
  protocol: "u16",
  port: "u16",
  addr: "bytes16",
  unix_path: "str",
  sock_lo: "u32",
  sock_hi: "u32",
  ...ATTRIBUTION_COLUMNS,
} as const;

export type Columns = typeof columns;

/** The columns the writer fills, in the order of `struct ebpf_connection_columns`. */
const WRITTEN = [
  "ts",
  "pid",
  "tid",
  "uid",
  "cgroup",
  "ret",
  "latency",
  "family",
  "sock_type",
  "protocol",
  "port",
  "addr",
  "unix_path",
  "sock_lo",
  "sock_hi",
] as const;

/** `struct ebpf_connection_run`: its size and the offsets of its fields (checked in C). */
const RUN = {
  size: 148,
  row: 0,
  ret: 4,
  family: 8,
  sockType: 12,
  protocol: 16,
  pathLen: 20,
  comm: 24,
  path: 40,
};
/** Runs per call: a call stops when they are used up (a flood of interleaved commands). */
const RUNS_CAP = 4096;
/** Rows per call at most, so a batch's columns and ring bytes stay in the caches. */
const MAX_ROWS = 16384;

/** Tally keys counted between Map updates (a power of two). */
const TALLY_CACHE = 64;

const textDecoder = new TextDecoder();

/** Binds the column writer to a table; throws when the object's records are not the shim's. */
export function columnWriter(
  { obj, store, table, clock }: DecoderContext<Columns>,
): BatchDecoder {
  const sizes = shim().ebpf_connection_sizes();
  const ipSize = sizes >>> 16, unixSize = sizes & 0xffff;
  if (
    obj.structSize("connection_event") !== ipSize ||
    obj.structSize("connection_unix_event") !== unixSize
  ) {
    throw new TypeError(
      `struct connection_event is ${obj.structSize("connection_event")} bytes in the BPF object, ` +
        `${ipSize} in the shim: they were built from different bpf/connection.h`,
    );
  }
  // the fewest ring bytes a stored record takes: its header, the IP record padded to 8
  const minRecordBytes = 8 + ((ipSize + 7) & ~7);
  const strings = store.strings;
  const tally = store.tally("connection");
  const attrs = attributionOf(store);
  const units = unitTally(store, "connection");
  const pointers = new BigUint64Array(WRITTEN.length);
  const runs = new Uint8Array(RUNS_CAP * RUN.size);
  const rv = new DataView(runs.buffer);
  const out = new Uint32Array(4);
  // The column pointers, taken again when the table moves its columns (once, to full size).
  let bound: EventTable<Columns>["cols"] | null = null;
  let comms: Uint32Array, paths: Uint32Array;
  const bind = () => {
    const cols = table.cols;
    WRITTEN.forEach((name, i) => {
      pointers[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(cols[name])));
    });
    comms = cols.comm as Uint32Array;
    paths = cols.unix_path as Uint32Array;
    bound = cols;
  };
  // The command of the previous run (its 16 bytes as 4 words) and its id.
  let comm0 = 0, comm1 = 0, comm2 = 0, comm3 = 0, commId = -1;
  // Tally counts gather in a small cache by key and go into the Map when a key is displaced
  // and after each call: runs of interleaved commands and results cost no Map update each.
  const cacheKeys = new Float64Array(TALLY_CACHE).fill(-1);
  const cacheCounts = new Float64Array(TALLY_CACHE);
  const count = (key: number, n: number) => {
    const i = (key ^ (key >>> 12) ^ Math.floor(key / 2097152)) & (TALLY_CACHE - 1);
    if (cacheKeys[i] === key) {
      cacheCounts[i] += n;
      return;
    }
    if (cacheKeys[i] >= 0) tally.set(cacheKeys[i], (tally.get(cacheKeys[i]) ?? 0) + cacheCounts[i]);
    cacheKeys[i] = key;
    cacheCounts[i] = n;
  };
  const flushTally = () => {
    for (let i = 0; i < TALLY_CACHE; i++) {
      if (cacheKeys[i] < 0) continue;
      tally.set(cacheKeys[i], (tally.get(cacheKeys[i]) ?? 0) + cacheCounts[i]);
      cacheKeys[i] = -1;
    }
  };

  /** Interns and counts the runs of the `rows` rows written from `slot`. */
  const finishRuns = (slot: number, rows: number, nruns: number) => {
    for (let i = 0; i < nruns; i++) {
      const at = i * RUN.size;
      const start = slot + rv.getUint32(at + RUN.row, true);
      const end = i + 1 < nruns ? slot + rv.getUint32(at + RUN.size + RUN.row, true) : slot + rows;
      const c = at + RUN.comm;
      const w0 = rv.getUint32(c, true), w1 = rv.getUint32(c + 4, true);
      const w2 = rv.getUint32(c + 8, true), w3 = rv.getUint32(c + 12, true);
      if (commId < 0 || w0 !== comm0 || w1 !== comm1 || w2 !== comm2 || w3 !== comm3) {
        commId = strings.internBytes(runs, c, 16);
        comm0 = w0, comm1 = w1, comm2 = w2, comm3 = w3;
      }
      if (end - start > 16) comms.fill(commId, start, end);
      else for (let s = start; s < end; s++) comms[s] = commId;
      const family = rv.getUint32(at + RUN.family, true);
      if (family === AF_UNIX) {
        // a run of one row: the writer ends a run at every AF_UNIX record
        const p = at + RUN.path, len = rv.getUint32(at + RUN.pathLen, true);
        paths[start] = len > 0 && runs[p] === 0 // an abstract name
          ? strings.intern("@" + textDecoder.decode(runs.subarray(p + 1, p + len)))
          : strings.internBytes(runs, p, len);
      }
      count(
        packKey(
          commId,
          family,
          rv.getUint32(at + RUN.sockType, true),
          rv.getUint32(at + RUN.protocol, true),
          rv.getInt32(at + RUN.ret, true),
        ),
        end - start,
      );
    }
  };

  return (source: RecordSource): BatchResult => {
    const result: BatchResult = { events: 0, rejected: 0 };
    const fromBytes = source instanceof Uint8Array;
    const handle = fromBytes ? null : source.handle;
    if (!fromBytes && !handle) return result; // closed
    let consumed = 0;
    for (;;) {
      const pending = fromBytes ? source.length - consumed : source.pending();
      const room = store.reserve(table, Math.min(MAX_ROWS, Math.ceil(pending / minRecordBytes)));
      if (table.cols !== bound) bind();
      const slot = table.tailSlot;
      const rows = shim().ebpf_connection_decode(
        handle,
        fromBytes ? source.subarray(consumed) : null,
        fromBytes ? source.length - consumed : 0,
        pointers,
        slot,
        room,
        clock.offsetMs,
        runs,
        RUNS_CAP,
        out,
      );
      finishRuns(slot, rows, out[0]);
      attrs.fill(table.cols.cgroup, table.cols.attr as Uint32Array, {
        from: slot,
        to: slot + rows,
        tally: units,
      });
      store.commit(table as unknown as EventTable, rows);
      result.events += rows;
      if (out[1]) {
        result.rejected += out[1];
        result.error ??= `connection records shorter than ${ipSize} bytes ` +
          `(${unixSize} for AF_UNIX)`;
      }
      consumed += out[3];
      if (out[2] || (rows === 0 && out[0] === 0)) break; // the source is empty
    }
    flushTally();
    return result;
  };
}
