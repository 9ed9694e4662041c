/**
 * Shared by the decoder tests: a fixed clock, offsets read from a BPF object's BTF (apart from
 * the decoders' own `structLayout`), and record buffers laid out as a drained ring has them.
 *
 * @module
 */

import type { BpfObject } from "../ffi/shim.ts";
import type { Clock } from "./program.ts";

/** 2026-11-25T03:04:05Z; a boot-time stamp of t ns is this plus t/1e6 ms. */
export const BOOT_WALL_MS = Date.UTC(2026, 10, 25, 3, 4, 5);

/** A clock whose boot time is the Unix time `offsetMs`. */
export function fixedClock(offsetMs: number): Clock {
  return { offsetMs, wallMs: (lo, hi) => (hi * 2 ** 32 + lo) / 1e6 + offsetMs };
}

/** A clock whose boot time is {@linkcode BOOT_WALL_MS}. */
export const clock: Clock = fixedClock(BOOT_WALL_MS);

/** Offsets of `names` in `struct`, and its size, from the object's BTF. */
export function btfOffsets<N extends string>(
  obj: BpfObject,
  struct: string,
  names: readonly N[],
): { at: Record<N, number>; size: number } {
  const at = {} as Record<N, number>;
  for (const name of names) at[name] = obj.member(struct, name).offset;
  return { at, size: obj.structSize(struct) };
}

/**
 * Room for one record of `size` bytes at offset `r` of a buffer that itself starts inside a
 * larger ArrayBuffer, with junk (0xa5) in every byte, as a drained ring buffer would have.
 */
export function recordArea(size: number): { bytes: Uint8Array; view: DataView; r: number } {
  const backing = new ArrayBuffer(size + 64);
  const bytes = new Uint8Array(backing, 8, size + 48).fill(0xa5);
  const view = new DataView(backing, bytes.byteOffset, bytes.byteLength);
  return { bytes, view, r: 24 };
}

/** What `summarize` returned, with the fields the HTTP layer adds, for `summarySchema.parse`. */
export function withSummaryBase(program: string, part: Record<string, unknown>) {
  return {
    program,
    since: "x",
    until: "y",
    duration_seconds: 1,
    pid: null,
    command: null,
    filter: {},
    window_complete: true,
    window_incomplete_because: [],
    events_lost: 0,
    events_lost_total: 0,
    events_evicted_total: 0,
    ...part,
  };
}

/**
 * Records as `RingBuffer.drain` hands them over (what a batch decoder also reads):
 * `[u32 size][u32 0][record, padded to 8 bytes]`, with junk in the padding.
 */
export function drained(
  ...records: { bytes: Uint8Array; offset: number; size: number }[]
): Uint8Array<ArrayBuffer> {
  const pad8 = (n: number) => (n + 7) & ~7;
  const out = new Uint8Array(records.reduce((n, r) => n + 8 + pad8(r.size), 0)).fill(0xa5);
  const view = new DataView(out.buffer);
  let off = 0;
  for (const { bytes, offset, size } of records) {
    view.setUint32(off, size, true);
    view.setUint32(off + 4, 0, true);
    out.set(bytes.subarray(offset, offset + size), off + 8);
    off += 8 + pad8(size);
  }
  return out;
}

/** A small deterministic generator of numbers in [0, 1) (mulberry32), for random tables. */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
