/**
 * Copy plans: a program says which field of its BPF record goes to which store column, and how
 * (`steps`); {@linkcode planWriter} resolves the fields' offsets and sizes from the object's BTF
 * once and hands the plan to the shim's column writer (`ffi/columns_plan.c`), which moves the
 * records from the ring straight into the columns. What needs JavaScript is done per batch or
 * per run, never per record: a string field comes back as one entry per run of rows with the
 * same bytes (interned once, its rows filled), the attribution is filled per run of one cgroup,
 * and the program's `finish` gets the batch's row range to derive what it derives over columns.
 *
 * @example
 * ```ts
 * const write = planWriter(ctx, {
 *   struct: "packet_drop_event",
 *   steps: [
 *     { column: "ts", kind: "boot_ms", field: "ts_ns" },
 *     { column: "pid", kind: "u32", field: "owner_pid", flag: "has_owner", alt: "pid" },
 *     { column: "comm", kind: "str16", field: "comm" },
 *   ],
 * });
 * ```
 *
 * @module
 */

import { attributionOf, unitTally } from "../cgroup/mod.ts";
import { shim } from "../ffi/shim.ts";
import type { ColumnSpec, EventTable } from "../store/mod.ts";
import type { BatchDecoder, BatchResult, DecoderContext, RecordSource } from "./program.ts";

/**
 * Conversions of the shim's writer (`enum ebpf_copy_kind`): the bytes each reads, and the kind of
 * column it writes (the C side writes that many bytes a row: another column kind would be
 * written past its end).
 */
const KINDS = {
  u8: { code: 1, reads: 1, writes: "u8" },
  u16: { code: 2, reads: 2, writes: "u16" },
  u32: { code: 3, reads: 4, writes: "u32" },
  u64_f64: { code: 4, reads: 8, writes: "f64" },
  boot_ms: { code: 5, reads: 8, writes: "f64" },
  bytes8: { code: 6, reads: 8, writes: "bytes8" },
  bytes16: { code: 7, reads: 16, writes: "bytes16" },
  u16_is: { code: 8, reads: 2, writes: "u8" },
  str16: { code: 9, reads: 16, writes: "str" }, // ids, written here in JavaScript
} as const;

export type CopyKind = keyof typeof KINDS;

/** One step: `column[row] = convert(record.field)`. */
export interface CopyStep {
  column: string;
  kind: CopyKind;
  /**
   * the record's field (a member of the struct) of exactly the bytes `kind` reads, or with `at`
   * a part of a wider one: the bytes from `+ at` (`at: 0` of a u32 read as u16: its low half)
   */
  field: string;
  at?: number;
  /** a u8 field: where it is zero, `alt` is read instead (or the value is zero: "zero") */
  flag?: string;
  alt?: string | "zero";
  /** a u32 field: where it is zero the value is zero (with `flag`: only where the flag is zero) */
  zeroIf?: string;
  /** u16_is: `column = field === equals ? then : otherwise` */
  is?: { equals: number; then: number; otherwise: number };
}

export interface CopyPlan<S extends ColumnSpec> {
  /** the BPF struct of the records */
  struct: string;
  steps: CopyStep[];
  /**
   * Derives what the steps cannot over the batch's rows `[from, to)` (slots; the columns are
   * written and the attribution filled), and counts them; called once per writer call.
   */
  finish?: (table: EventTable<S>, from: number, to: number) => void;
}

const NONE = 0xffffffff, ZERO = 0xfffffffe;
const STEP_BYTES = 32, RUN_BYTES = 24;
/** String runs per call: a call stops when they are used up (a flood of interleaved names). */
const RUNS_CAP = 4096;
/** Rows per call at most, so a batch's columns and ring bytes stay in the caches. */
const MAX_ROWS = 16384;

/** The offset of `field` of `struct` (+ `at`), checked to hold `reads` bytes from there. */
function offsetOf(
  obj: DecoderContext<ColumnSpec>["obj"],
  struct: string,
  field: string,
  reads: number,
  at?: number,
): number {
  const m = obj.member(struct, field);
  if (at === undefined ? m.size !== reads : at + reads > m.size) {
    throw new TypeError(
      `${struct}.${field} is ${m.size} bytes in the BPF object: the copy plan reads ${reads}` +
        (at === undefined ? "" : ` at +${at}`),
    );
  }
  return m.offset + (at ?? 0);
}

/** The batch decoder of a copy plan, bound to a table. */
export function planWriter<S extends ColumnSpec>(
  ctx: DecoderContext<S>,
  plan: CopyPlan<S>,
): BatchDecoder {
  const { obj, store, table, clock } = ctx;
  const struct = plan.struct;
  const recordSize = obj.structSize(struct);
  const steps = new Uint8Array(plan.steps.length * STEP_BYTES);
  const sv = new DataView(steps.buffer);
  const columnsOf = plan.steps.map((step) => step.column);
  for (const [i, step] of plan.steps.entries()) {
    const kind = KINDS[step.kind];
    const at = i * STEP_BYTES;
    const column = (table.spec as Record<string, string>)[step.column];
    if (column !== kind.writes) {
      throw new TypeError(
        `copy plan of ${struct}: ${step.kind} writes a ${kind.writes} column, ` +
          (column === undefined
            ? `and there is no column ${step.column}`
            : `${step.column} is ${column}`),
      );
    }
    sv.setUint32(at, kind.code, true);
    sv.setUint32(at + 4, offsetOf(obj, struct, step.field, kind.reads, step.at), true);
    sv.setUint32(
      at + 8,
      step.alt === undefined
        ? NONE
        : step.alt === "zero"
        ? ZERO
        : offsetOf(obj, struct, step.alt, kind.reads, step.at),
      true,
    );
    sv.setUint32(
      at + 12,
      step.flag === undefined ? NONE : offsetOf(obj, struct, step.flag, 1),
      true,
    );
    sv.setUint32(
      at + 16,
      step.zeroIf === undefined ? NONE : offsetOf(obj, struct, step.zeroIf, 4),
      true,
    );
    const is = step.is;
    sv.setUint32(
      at + 20,
      is
        ? ((is.equals & 0xffff) | ((is.then & 0xff) << 16) | ((is.otherwise & 0xff) << 24)) >>> 0
        : 0,
      true,
    );
  }
  const strings = store.strings;
  const attrs = attributionOf(store);
  const units = unitTally(store, table.name);
  const runs = new Uint8Array(RUNS_CAP * RUN_BYTES);
  const rv = new DataView(runs.buffer);
  const out = new Uint32Array(4);
  const minRecordBytes = 8 + ((recordSize + 7) & ~7);
  // the string steps' columns, and per step its open run (start row, id)
  const stringSteps = plan.steps.flatMap((step, i) => step.kind === "str16" ? [i] : []);
  const runStart = new Int32Array(plan.steps.length), runId = new Int32Array(plan.steps.length);
  // The column pointers, taken again when the table moves its columns (once, to full size).
  let bound: EventTable<S>["cols"] | null = null;
  const bind = () => {
    const cols = table.cols as Record<string, ArrayBufferView>;
    for (const [i, name] of columnsOf.entries()) {
      sv.setBigUint64(
        i * STEP_BYTES + 24,
        BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(cols[name] as Uint8Array))),
        true,
      );
    }
    bound = table.cols;
  };

  /** Interns each run's string and fills its rows, for the `rows` rows written from `slot`. */
  const fillStrings = (slot: number, rows: number, nruns: number) => {
    const cols = table.cols as Record<string, Uint32Array>;
    for (const i of stringSteps) runStart[i] = -1;
    const close = (i: number, end: number) => {
      const start = runStart[i];
      if (start < 0) return;
      const col = cols[columnsOf[i]];
      if (end - start > 16) col.fill(runId[i], slot + start, slot + end);
      else for (let r = start; r < end; r++) col[slot + r] = runId[i];
    };
    for (let k = 0; k < nruns; k++) {
      const at = k * RUN_BYTES;
      const row = rv.getUint32(at, true), i = rv.getUint32(at + 4, true);
      close(i, row);
      runStart[i] = row;
      runId[i] = strings.internBytes(runs, at + 8, 16);
    }
    for (const i of stringSteps) close(i, rows);
  };

  return (source: RecordSource): BatchResult => {
    const result: BatchResult = { events: 0, rejected: 0 };
    const fromBytes = source instanceof Uint8Array;
    const handle = fromBytes ? null : source.handle;
    if (!fromBytes && !handle) return result; // closed
    let consumed = 0;
    for (;;) {
      const pending = fromBytes ? source.length - consumed : source.pending();
      const room = store.reserve(
        table as unknown as EventTable,
        Math.min(MAX_ROWS, Math.ceil(pending / minRecordBytes)),
      );
      if (table.cols !== bound) bind();
      const slot = table.tailSlot;
      const rows = shim().ebpf_plan_decode(
        handle,
        fromBytes ? source.subarray(consumed) : null,
        fromBytes ? source.length - consumed : 0,
        steps,
        plan.steps.length,
        recordSize,
        slot,
        room,
        clock.offsetMs,
        runs,
        RUNS_CAP,
        out,
      );
      if (rows < 0) throw new RangeError(`copy plan of ${struct}: the shim refused it (${rows})`);
      fillStrings(slot, rows, out[0]);
      const cols = table.cols as Record<string, ArrayLike<number>>;
      attrs.fill(cols.cgroup, cols.attr as Uint32Array, {
        from: slot,
        to: slot + rows,
        tally: units,
      });
      plan.finish?.(table, slot, slot + rows);
      store.commit(table as unknown as EventTable, rows);
      result.events += rows;
      if (out[1]) {
        result.rejected += out[1];
        result.error ??= `${struct} records shorter than ${recordSize} bytes`;
      }
      consumed += out[3];
      if (out[2] || (rows === 0 && out[0] === 0)) break; // the source is empty
    }
    return result;
  };
}
